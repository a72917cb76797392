/**
 * Starting other programs, in one place: to completion with collected output (the external orchesjob,
 * `ps` probes), or detached in a new session that outlives this process (job supervisors, the
 * background driver). Children never read our stdin.
 */
import { timerDelay, within } from "./sleep.ts";
import { concatBytes } from "./bytes.ts";

/** Why a program could not be run to completion. */
export class SpawnError extends Error {
  override name = "SpawnError";
  constructor(message: string, readonly kind: "missing" | "denied" | "timeout" | "overflow" | "stopped") {
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
  /**
   * Killed when this aborts (the caller was interrupted, or ran out of its own time), and reported as
   * a SpawnError of kind "stopped": a hung program then holds nobody until its time limit.
   */
  signal?: AbortSignal;
  /**
   * What is kept of stdout (default: all of it). A sink that refuses more stops the run: the program
   * is killed and a SpawnError of kind "overflow" names the stream.
   */
  stdout?: OutputSink;
  /** What is kept of stderr (default: all of it), as for `stdout`. */
  stderr?: OutputSink;
}

/** Where a program's output goes as it is read, and how much of it is kept. */
export interface OutputSink {
  /** Takes the next piece; false when it is more than this sink keeps (reading then stops). */
  push(chunk: Uint8Array): boolean;
  /** What was kept. */
  bytes(): Uint8Array;
}

/** A sink that keeps everything, up to `limit` bytes; more overflows it. */
export function keepAll(limit = Infinity): OutputSink {
  const chunks: Uint8Array[] = [];
  let size = 0;
  return {
    push(chunk) {
      if (size + chunk.length > limit) return false;
      chunks.push(chunk);
      size += chunk.length;
      return true;
    },
    bytes: () => concatBytes(chunks),
  };
}

/** A sink that keeps only the last `limit` bytes (the end of a long stderr is the part worth reading). */
export function keepLast(limit: number): OutputSink {
  const chunks: Uint8Array[] = [];
  let size = 0;
  return {
    push(chunk) {
      chunks.push(chunk);
      size += chunk.length;
      while (size - chunks[0].length >= limit) size -= chunks.shift()!.length;
      return true;
    },
    bytes: () => {
      const all = concatBytes(chunks);
      return all.subarray(Math.max(0, all.length - limit));
    },
  };
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
 * How long a program's pipes are still read once it has exited. What it wrote is in the pipe by
 * then (a writer cannot exit with more unread than the pipe holds), so this only bounds the wait
 * for a descendant that keeps the pipes open (`setsid daemon &`), which would otherwise hold the
 * caller until that descendant ends.
 */
const PIPE_GRACE_SEC = 1;

/**
 * Runs `argv` to its end and returns its exit and output. With a time limit it runs in its own
 * process group, and the whole group is killed when the limit passes: a hung program's children
 * (a `sleep` under a shell script) are not left behind. Its pipes are read until they close, until
 * {@link PIPE_GRACE_SEC} after it exited, or until the limit, whichever comes first: a process in
 * another session, out of the group's reach, cannot keep the call going past its limit.
 */
export async function runToEnd(argv: readonly string[], options: RunOptions = {}): Promise<Finished> {
  const limited = options.timeoutSec !== undefined;
  const stopped = () => new SpawnError(`${argv[0]} was stopped before it finished`, "stopped");
  if (options.signal?.aborted) throw stopped();
  let child: Deno.ChildProcess;
  try {
    child = command(argv, options, limited).spawn();
  } catch (error) {
    throw spawnError(error, argv);
  }
  const pipes = new Pipes(child, options.stdout ?? keepAll(), options.stderr ?? keepAll());
  let exited = false;
  const status = child.status.then((status) => {
    exited = true;
    pipes.closeAfter(PIPE_GRACE_SEC);
    return status;
  });
  let timedOut = false;
  const timer = limited
    ? setTimeout(() => {
      pipes.close();
      // A program that exited has answered; only a descendant in another session held its pipes.
      if (exited) return;
      timedOut = true;
      killGroup(child.pid);
    }, timerDelay(options.timeoutSec!))
    : undefined;
  const timeout = () => new SpawnError(`${argv[0]} did not finish within ${options.timeoutSec} s`, "timeout");
  // Stopped as at its time limit: the pipes closed, the program (its group, when limited) killed.
  let stop = false;
  const onStop = () => {
    pipes.close();
    if (exited) return;
    stop = timedOut = true;
    if (limited) killGroup(child.pid);
    else child.kill("SIGKILL");
  };
  options.signal?.addEventListener("abort", onStop, { once: true });
  try {
    const [stdout, stderr] = await pipes.read();
    if (stop) throw stopped();
    if (timedOut) throw timeout();
    if (pipes.overflowed !== null) {
      // It would block on the full pipe until the limit: stopped now, as it would be then.
      if (limited && !exited) killGroup(child.pid);
      else if (!exited) child.kill("SIGKILL");
      await settled(status, child);
      throw new SpawnError(`${argv[0]} wrote more to ${pipes.overflowed} than is read of it`, "overflow");
    }
    const { code, signal } = await status;
    if (stop) throw stopped();
    if (timedOut) throw timeout();
    return { code, signal, stdout, stderr };
  } finally {
    options.signal?.removeEventListener("abort", onStop);
    clearTimeout(timer);
    pipes.dispose();
    if (timedOut) await settled(status, child);
  }
}

/** SIGKILL to the process group `pgid`. */
function killGroup(pgid: number): void {
  try {
    Deno.kill(-pgid, "SIGKILL");
  } catch { /* already gone */ }
}

/**
 * Waits a moment for a child just killed to be reaped, so that its status is not left pending; one
 * that is not (stuck in the kernel) no longer keeps this process alive.
 */
async function settled(status: Promise<unknown>, child: Deno.ChildProcess): Promise<void> {
  if ((await within(status.catch(() => {}), 1, "late")) === "late") child.unref();
}

/**
 * A child's stdout and stderr, read together into their sinks, each until it closes, until they are
 * let go, or until a sink refuses more.
 */
class Pipes {
  readonly #readers: ReadableStreamDefaultReader<Uint8Array>[];
  readonly #sinks: OutputSink[];
  #grace: ReturnType<typeof setTimeout> | undefined;
  #disposed = false;
  /** The stream whose sink refused more, if one did. */
  overflowed: "stdout" | "stderr" | null = null;

  constructor(child: Deno.ChildProcess, stdout: OutputSink, stderr: OutputSink) {
    this.#readers = [child.stdout.getReader(), child.stderr.getReader()];
    this.#sinks = [stdout, stderr];
  }

  /** What the sinks kept of stdout and of stderr, once both have closed or were let go. */
  async read(): Promise<[Uint8Array, Uint8Array]> {
    await Promise.all([this.#drain(0, "stdout"), this.#drain(1, "stderr")]);
    return [this.#sinks[0].bytes(), this.#sinks[1].bytes()];
  }

  async #drain(which: number, name: "stdout" | "stderr"): Promise<void> {
    for (;;) {
      const { done, value } = await this.#readers[which].read();
      if (done) return;
      if (!this.#sinks[which].push(value)) {
        this.overflowed ??= name;
        return this.close();
      }
    }
  }

  /** Stops reading: a read in progress ends with what it has, and the pipes are closed. */
  close(): void {
    for (const reader of this.#readers) reader.cancel().catch(() => {});
  }

  /** {@link close} in `seconds`, unless disposed first. */
  closeAfter(seconds: number): void {
    if (this.#disposed) return;
    this.#grace = setTimeout(() => this.close(), timerDelay(seconds));
  }

  dispose(): void {
    this.#disposed = true;
    clearTimeout(this.#grace);
    this.close();
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

/**
 * Shell code (sh or bash) that closes every descriptor above 2 that the shell inherited. Deno closes
 * its own descriptors in a child (they are close-on-exec), but not those this process inherited from
 * its caller: a lock (`exec 9>lock; flock 9`), a pipe that a CI runner or `( … ) | cat` waits on to
 * end. A detached driver and every job would hold them for as long as they run, so `start -d`'s caller
 * or its lock would wait for the whole run. Only bash can close a descriptor above 9 (`exec 12>&-` is a
 * command named 12 to dash, which then exits): under sh those stay open. Where there is no /dev/fd the
 * glob stays a word and nothing is closed.
 */
export const CLOSE_INHERITED_FDS = [
  "for fd in /dev/fd/*; do",
  "  fd=${fd##*/}",
  "  case $fd in",
  "    [0-2] | *[!0-9]*) ;;",
  '    [3-9]) eval "exec $fd>&-" ;;',
  '    *) [ -z "${BASH_VERSION-}" ] || eval "exec $fd>&-" ;;',
  "  esac",
  "done",
].join("\n");

export type DetachedOptions = Pick<RunOptions, "env" | "clearEnv" | "cwd">;

/**
 * Whether a spawn failed for want of something this process or the system runs short of (file
 * descriptors, processes, memory), which a later spawn may well have: not a fault of what was spawned.
 */
export function isShortage(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === "EMFILE" || code === "ENFILE" || code === "EAGAIN" || code === "ENOMEM";
}

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
 * {@link spawnDetached} with its stdin a pipe from us: returns its PID, the pipe's writer and how it
 * ended (settles only if it ends while we live). Closing the pipe (or our exit, or death) ends its
 * input. It does not keep this process alive.
 */
export function spawnDetachedWithInput(
  argv: readonly string[],
  options: DetachedOptions = {},
): { pid: number; input: WritableStreamDefaultWriter<Uint8Array>; status: Promise<Deno.CommandStatus> } {
  const child = detachedChild(argv, options, "piped");
  return { pid: child.pid, input: child.stdin.getWriter(), status: child.status };
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
