/** The one interface through which the flow engine runs steps: orchesjob's start, status, abort, logs. */
import type { ExecutorKind, Job, StartResult } from "../domain/mod.ts";
import { keepAll, keepLast, type OutputSink } from "../shared/mod.ts";

export interface StartOptions {
  strict: boolean;
  /** orchesjob's `--start-timeout` (seconds to wait for the command to be running); default 10. */
  startTimeoutSec?: number;
  /** Variables added to the command's environment (it inherits the rest). */
  env?: Record<string, string>;
  /**
   * The whole environment the command starts from, instead of this process's (`env` is added on
   * top): a run's steps get the environment of the run's first `start`, whoever drives it.
   */
  baseEnv?: Record<string, string>;
  /** The command's working directory, instead of this process's. */
  cwd?: string;
  /**
   * Return once the job is recorded, without waiting for it to be RUNNING, where the executor can
   * report that later (the built-in runner). An external orchesjob's `start` always waits.
   */
  noWait?: boolean;
}

/** An unlock's reason (orchesjob records it as the new job's rerun_reason) and how long it lasts. */
export interface UnlockOptions {
  reason: string;
  ttlSec: number;
}

export interface AbortOptions {
  graceSeconds: number;
  reason?: string;
}

/** Part of a job's output: from byte `from` on, or the last `last` bytes. */
export type LogRange = { from: number; max?: number } | { last: number };

/**
 * A sink for a job's output read from its start that keeps only what `range` selects: a program's
 * `logs` prints everything, and the driver wants only the last few KiB of it. What it keeps beyond
 * that is limited to `limit` bytes (more overflows it).
 */
export function logWindow(range: LogRange | undefined, limit: number): OutputSink {
  if (range !== undefined && "last" in range) return keepLast(range.last);
  const from = range?.from ?? 0;
  const max = range?.max ?? Infinity;
  const kept = keepAll(limit);
  let [seen, size] = [0, 0];
  return {
    push(chunk) {
      let piece = chunk.subarray(Math.min(chunk.length, Math.max(0, from - seen)));
      seen += chunk.length;
      // Past `max` the rest is read and dropped: the range asks for no more.
      if (size + piece.length > max) piece = piece.subarray(0, max - size);
      size += piece.length;
      return kept.push(piece);
    },
    bytes: () => kept.bytes(),
  };
}

/** A job named by its run key (the key's current job) or by its id. */
export type JobRef = { runKey: string } | { jobId: string };

export interface Executor {
  readonly kind: ExecutorKind;
  /** How many starts a caller may have in flight at once (none: the caller's own default). */
  readonly startConcurrency?: number;
  /**
   * Whether a `start` call may outlive its caller and reach the executor later: an external orchesjob's
   * calls run in their own process group, so a driver killed during one leaves it running. A key whose
   * start was never answered may then still get a job after anyone looked (see cancel.ts).
   */
  readonly startsOutliveCaller?: boolean;
  /** Starts `command` under `runKey`, or returns the job already there (idempotent by run key). */
  start(runKey: string, command: readonly string[], options: StartOptions): Promise<StartResult>;
  /**
   * orchesjob's `unlock`: the next `start` with `strict` of the run key, whose job has ended, makes a
   * new job (once: the start that makes it uses the unlock up; a repeat unlock replaces it). False,
   * not an error, when the key's job is active or the key is unknown: a start then needs no unlock.
   */
  unlock(runKey: string, options: UnlockOptions): Promise<boolean>;
  /** The run key's current job; null when nothing was ever started under it. */
  status(runKey: string): Promise<Job | null>;
  /** Every active (STARTING or RUNNING) job, after dead supervisors are turned LOST. */
  running(): Promise<Job[]>;
  /**
   * Aborts the run key's job if it is active and returns the job as it is afterwards (possibly already
   * finished: a job that ends as the abort arrives is not an error). Null when nothing was started.
   */
  abort(runKey: string, options: AbortOptions): Promise<Job | null>;
  /**
   * The bytes the job wrote so far to `stream`; null when there is no such job or file. With `range`,
   * only those from byte `from` on, or only the last `last` bytes (the built-in runner then reads no
   * more of the file than that).
   */
  logs(ref: JobRef, stream: "stdout" | "stderr", range?: LogRange): Promise<Uint8Array | null>;
  /**
   * Calls `onChange` soon after something that may have ended a job: a hint, which may come late, twice
   * or never, so the caller keeps polling. It names the run keys of the jobs concerned when it can
   * tell (any others may have changed too only if it names none). Null (or no method) when this
   * executor cannot tell at all.
   */
  watch?(onChange: (runKeys?: readonly string[]) => void): Disposable | null;
}

/**
 * Why a call to an external orchesjob failed: missing binary, non-zero exit, an answer that is not
 * JSON or not of the contract's shape, timeout, death by a signal; or (`unreadable`) why the built-in
 * runner could not read a job's output file that may well exist.
 */
export class ExecutorError extends Error {
  override name = "ExecutorError";
  constructor(
    message: string,
    readonly kind: "missing" | "exit" | "output" | "timeout" | "signal" | "unreadable" | "stopped",
    readonly exitCode: number | null = null,
    readonly stderrTail = "",
  ) {
    super(message);
  }
}

/**
 * A job operation orchesjob refuses, with orchesjob's reason (its exit code is the CLI's business):
 * invalid arguments, no such job, or a job in the wrong state (e.g. aborting a finished one).
 */
export class JobError extends Error {
  override name = "JobError";
  constructor(message: string, readonly reason: "usage" | "notFound" | "invalidState" | "damaged") {
    super(message);
  }
}

/** No executor can be used as asked (e.g. `--executor orchesjob` with no orchesjob anywhere). */
export class ExecutorChoiceError extends Error {
  override name = "ExecutorChoiceError";
}
