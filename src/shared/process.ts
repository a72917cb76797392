/**
 * Starting other programs, in one place: to completion with collected output (the external orchesjob,
 * `ps` probes), or detached in a new session that outlives this process (job supervisors, the
 * background driver). Children never read our stdin.
 */

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
  /** Variables added to the child's environment (it inherits the rest). */
  env?: Record<string, string>;
  /** Killed after this long, and reported as a SpawnError of kind "timeout". */
  timeoutSec?: number;
}

function command(argv: readonly string[], options: RunOptions): Deno.Command {
  return new Deno.Command(argv[0], {
    args: argv.slice(1),
    env: options.env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    ...(options.timeoutSec === undefined ? {} : { signal: AbortSignal.timeout(options.timeoutSec * 1000) }),
  });
}

function spawnError(error: unknown, argv: readonly string[], options: RunOptions): unknown {
  if (error instanceof Deno.errors.NotFound) return new SpawnError(`not found: ${argv[0]}`, "missing");
  if (error instanceof Deno.errors.PermissionDenied) return new SpawnError(`not executable: ${argv[0]}`, "denied");
  if (error instanceof DOMException && (error.name === "TimeoutError" || error.name === "AbortError")) {
    return new SpawnError(`${argv[0]} did not finish within ${options.timeoutSec} s`, "timeout");
  }
  return error;
}

/** Runs `argv` to its end and returns its exit and output. */
export async function runToEnd(argv: readonly string[], options: RunOptions = {}): Promise<Finished> {
  try {
    const { code, signal, stdout, stderr } = await command(argv, options).output();
    return { code, signal, stdout, stderr };
  } catch (error) {
    throw spawnError(error, argv, options);
  }
}

/** {@link runToEnd}, blocking; for quick probes such as `ps`. */
export function runToEndSync(argv: readonly string[], options: RunOptions = {}): Finished {
  try {
    const { code, signal, stdout, stderr } = command(argv, options).outputSync();
    return { code, signal, stdout, stderr };
  } catch (error) {
    throw spawnError(error, argv, options);
  }
}

/**
 * Starts `argv` in a new session (so it survives the terminal or SSH session that started us) with
 * stdin, stdout and stderr on /dev/null, and returns its PID. It is reaped if it ends while we live,
 * and does not keep this process alive.
 */
export function spawnDetached(argv: readonly string[], options: { env?: Record<string, string> } = {}): number {
  const child = new Deno.Command(argv[0], {
    args: argv.slice(1),
    env: options.env,
    stdin: "null",
    stdout: "null",
    stderr: "null",
    detached: true,
  }).spawn();
  child.status.catch(() => {});
  child.unref();
  return child.pid;
}
