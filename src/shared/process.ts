/**
 * Starting other programs, in one place: to completion with collected output (the external orchesjob,
 * `ps` probes), or detached in a new session that outlives this process (job supervisors, the
 * background driver). Children never read our stdin.
 */
import { timerDelay } from "./sleep.ts";

/** Why a program could not be run to completion. */
export class SpawnError extends Error {
  override name = "SpawnError";
  constructor(message: string, readonly kind: "missing" | "denied" | "timeout") {
    super(message);
  }
}

export interface Finished {
  code: number;
  /** The signal that ended it, if one did. */
  signal: Deno.Signal | null;
  stdout: Uint8Array;
  stderr: Uint8Array;
}

export interface RunOptions {
  /** Variables added to the child's environment (it inherits the rest, unless `clearEnv`). */
  env?: Record<string, string>;
  /** The child gets only `env`, nothing of ours. */
  clearEnv?: boolean;
  /** The child's working directory. */
  cwd?: string;
  /** Killed after this long, and reported as a SpawnError of kind "timeout". */
  timeoutSec?: number;
}

function command(argv: readonly string[], options: RunOptions, detached = false): Deno.Command {
  return new Deno.Command(argv[0], {
    args: argv.slice(1),
    env: options.env,
    clearEnv: options.clearEnv,
    cwd: options.cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    detached,
  });
}

function spawnError(error: unknown, argv: readonly string[]): unknown {
  if (error instanceof Deno.errors.NotFound) return new SpawnError(`not found: ${argv[0]}`, "missing");
  if (error instanceof Deno.errors.PermissionDenied) return new SpawnError(`not executable: ${argv[0]}`, "denied");
  return error;
}

/**
 * Runs `argv` to its end and returns its exit and output. With a time limit it runs in its own
 * process group, and the whole group is killed when the limit passes: a hung program's children
 * (a `sleep` under a shell script) are not left behind holding our pipes open.
 */
export async function runToEnd(argv: readonly string[], options: RunOptions = {}): Promise<Finished> {
  const limited = options.timeoutSec !== undefined;
  let child: Deno.ChildProcess;
  try {
    child = command(argv, options, limited).spawn();
  } catch (error) {
    throw spawnError(error, argv);
  }
  let timedOut = false;
  const timer = limited
    ? setTimeout(() => {
      timedOut = true;
      try {
        Deno.kill(-child.pid, "SIGKILL");
      } catch { /* already gone */ }
    }, timerDelay(options.timeoutSec!))
    : undefined;
  try {
    const { code, signal, stdout, stderr } = await child.output();
    if (timedOut) throw new SpawnError(`${argv[0]} did not finish within ${options.timeoutSec} s`, "timeout");
    return { code, signal, stdout, stderr };
  } finally {
    clearTimeout(timer);
  }
}

/** {@link runToEnd}, blocking; for quick probes such as `ps`. */
export function runToEndSync(argv: readonly string[], options: Pick<RunOptions, "env"> = {}): Finished {
  try {
    const { code, signal, stdout, stderr } = command(argv, options).outputSync();
    return { code, signal, stdout, stderr };
  } catch (error) {
    throw spawnError(error, argv);
  }
}

export type DetachedOptions = Pick<RunOptions, "env" | "clearEnv" | "cwd">;

/**
 * Starts `argv` in a new session (so it survives the terminal or SSH session that started us) with
 * stdin, stdout and stderr on /dev/null, and returns its PID. It is reaped if it ends while we live,
 * and does not keep this process alive.
 */
export function spawnDetached(argv: readonly string[], options: DetachedOptions = {}): number {
  return spawnDetachedChild(argv, options).pid;
}

/** {@link spawnDetached}, also giving how it ended (a promise that settles only if it ends while we live). */
export function spawnDetachedChild(
  argv: readonly string[],
  options: DetachedOptions = {},
): { pid: number; status: Promise<Deno.CommandStatus> } {
  const child = detachedChild(argv, options, "null");
  return { pid: child.pid, status: child.status };
}

/**
 * {@link spawnDetached} with its stdin a pipe from us: returns its PID and the pipe's writer. Closing
 * the pipe (or our exit, or death) ends its input. It does not keep this process alive.
 */
export function spawnDetachedWithInput(
  argv: readonly string[],
  options: DetachedOptions = {},
): { pid: number; input: WritableStreamDefaultWriter<Uint8Array> } {
  const child = detachedChild(argv, options, "piped");
  return { pid: child.pid, input: child.stdin.getWriter() };
}

function detachedChild(argv: readonly string[], options: DetachedOptions, stdin: "null" | "piped"): Deno.ChildProcess {
  // `detached` makes Deno fork this whole process to call setsid() in the child: 40-70 ms per spawn
  // from a driver of a few hundred MiB, and system time that grows with it. A plain spawn is a
  // cheap vfork-style spawn; setsid(1) then makes the new session itself (it is not a group leader,
  // so it calls setsid() and execs without forking, and the PID stays the one we return).
  const setsid = setsidPath();
  const child = new Deno.Command(setsid ?? argv[0], {
    args: setsid ? [...argv] : argv.slice(1),
    env: options.env,
    clearEnv: options.clearEnv,
    cwd: options.cwd,
    stdin,
    stdout: "null",
    stderr: "null",
    detached: setsid === null,
  }).spawn();
  child.status.catch(() => {});
  child.unref();
  return child;
}

let setsidCache: string | null | undefined;

/** setsid(1) (util-linux, busybox), or null where there is none (macOS): then Deno's `detached` is used. */
function setsidPath(): string | null {
  if (setsidCache === undefined) {
    setsidCache = ["/usr/bin/setsid", "/bin/setsid"].find((path) => {
      try {
        return Deno.statSync(path).isFile;
      } catch {
        return false;
      }
    }) ?? null;
  }
  return setsidCache;
}
