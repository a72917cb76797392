/**
 * The external orchesjob, driven through its CLI (`orchesjob start|status|abort`). No shell: argv is
 * passed as is. Each call has a time limit; failures become {@link ExecutorError}s carrying the exit
 * code and the end of stderr. The real program costs ~170 ms a call, so callers batch (`running()`).
 */
import { type Finished, keepAll, keepLast, type OutputSink, runToEnd, SpawnError } from "../shared/mod.ts";
import {
  type AbortOptions,
  type Executor,
  ExecutorError,
  type JobRef,
  type LogRange,
  logWindow,
  type StartOptions,
  type UnlockOptions,
} from "./executor.ts";
import { type Job, JobExit, type StartResult } from "../domain/mod.ts";
import { jobProblem } from "./job_shape.ts";
import { watchDirectory } from "./watch.ts";
import { envSupportsChdir, wrapCommand } from "./wrap.ts";

/** The most read of one JSON answer: a job is about 1 KiB, so this is thousands of running jobs. */
const JSON_LIMIT = 4 << 20;
/**
 * The most kept of one `logs` answer beyond the range asked for (orchesjob prints the whole file at
 * every call): what `orchesjob-flow logs` prints of a job run through orchesjob.
 */
export const LOGS_LIMIT = 256 << 20;
/** What is kept of a call's stderr: only its end is ever shown. */
const STDERR_KEPT = 64 << 10;

/** How orchesjob itself is started: its environment (added to ours, or instead of it) and directory. */
type Launch = { env?: Record<string, string>; clearEnv?: boolean; cwd?: string };

export class ExternalExecutor implements Executor {
  readonly kind = "orchesjob";
  readonly startsOutliveCaller = true;

  /**
   * `home`: orchesjob's state directory ($ORCHESJOB_HOME), watched for hints that a job ended.
   * `runEnv`: the environment of the run's first start (see {@link ExternalExecutor.launch}).
   * `stop`: once it aborts, calls under way are killed and new ones refused, as ExecutorErrors of
   * kind "stopped" (the caller was interrupted, or its own time ran out).
   */
  constructor(
    readonly bin: string,
    readonly callTimeoutSec = 60,
    readonly home = "/var/lib/orchesjob",
    readonly runEnv?: Record<string, string>,
    readonly stop?: AbortSignal,
  ) {}

  /**
   * How orchesjob is started for a call: with the run's stored environment in place of this process's,
   * for every call alike. `start` alone used to get it: a `cancel`, `resume` or `wait --advance` from a
   * shell with another ORCHESJOB_HOME then asked another orchesjob, which knew none of the run's jobs
   * (an attempt taken for cleaned and started again beside the first; an abort that reached nothing).
   */
  private launch(baseEnv = this.runEnv): Launch {
    return baseEnv === undefined ? {} : { env: baseEnv, clearEnv: true };
  }

  /**
   * A job's end closes its output files (`logs/<job>.stdout`, `.stderr`) in orchesjob's state
   * directory, just before orchesjob records the result; the built-in runner behind the
   * `orchesjob-flow job` wrapper also renames a `<job>.exit` in. Both are hints that a poll is worth
   * it. orchesjob's database files are ignored: our own status calls write to them.
   */
  watch(onChange: (runKeys?: readonly string[]) => void): Disposable | null {
    const ended = (kind: Deno.FsEvent["kind"], path: string) =>
      kind === "access" ? /\.std(out|err)$/.test(path) : path.endsWith(".exit");
    return watchDirectory(this.home, ended, () => onChange(), { recursive: true });
  }

  async start(runKey: string, command: readonly string[], options: StartOptions): Promise<StartResult> {
    const args = ["start", "--run-key", runKey];
    if (options.strict) args.push("--strict");
    if (options.startTimeoutSec !== undefined) args.push("--start-timeout", String(options.startTimeoutSec));
    // orchesjob takes no env or directory option and its job inherits orchesjob's environment: the
    // run's environment is set on the call, while the command's own variables and directory travel
    // inside the command (see wrap.ts), which also keeps them in orchesjob's durable record of the job.
    const wrapped = options.env || options.cwd
      ? wrapCommand(command, options.env ?? {}, options.cwd ?? null, options.cwd ? envSupportsChdir() : false)
      : command;
    const { json } = await this.call([...args, "--", ...wrapped], [], this.launch(options.baseEnv));
    return this.checked("start", json, runKey) as StartResult;
  }

  async unlock(runKey: string, options: UnlockOptions): Promise<boolean> {
    const args = ["unlock", "--run-key", runKey, "--reason", options.reason, "--ttl", String(options.ttlSec)];
    // Exit 3 (no such key) and 4 (its job is active): nothing to unlock, and a start needs none.
    const result = await this.call(args, [JobExit.notFound, JobExit.invalidState]);
    return result.code === 0;
  }

  async status(runKey: string): Promise<Job | null> {
    const result = await this.call(["status", "--run-key", runKey], [JobExit.notFound]);
    return result.code === JobExit.notFound ? null : this.checked("status", result.json, runKey);
  }

  async running(): Promise<Job[]> {
    const { json } = await this.call(["status", "--running"]);
    if (!Array.isArray(json)) throw new ExecutorError(`${this.bin} status --running: expected a JSON array`, "output");
    // One malformed entry spoils the list: the caller then asks about each of its jobs by key.
    return json.map((entry) => this.checked("status --running", entry));
  }

  async abort(runKey: string, options: AbortOptions): Promise<Job | null> {
    const args = ["abort", "--run-key", runKey, "--grace-seconds", String(options.graceSeconds)];
    if (options.reason !== undefined) args.push("--reason", options.reason);
    const result = await this.call(args, [JobExit.notFound, JobExit.invalidState]);
    if (result.code === JobExit.notFound) return null;
    // Exit 4: it is no longer running (it just finished); its final status is the answer.
    if (result.code === JobExit.invalidState) return await this.status(runKey);
    return this.checked("abort", result.json, runKey);
  }

  async logs(ref: JobRef, stream: "stdout" | "stderr", range?: LogRange): Promise<Uint8Array | null> {
    const which = "jobId" in ref ? ["--job-id", ref.jobId] : ["--run-key", ref.runKey];
    const result = await this.call(["logs", ...which, "--stream", stream], [JobExit.notFound], this.launch(), {
      sink: logWindow(range, LOGS_LIMIT),
      limit: LOGS_LIMIT,
    });
    return result.code === JobExit.notFound ? null : result.bytes;
  }

  /**
   * `json` as a job of orchesjob's contract (of `runKey`, when given); anything else is an answer that
   * cannot be read, a fault that passes like output that is not JSON, never a verdict on the job.
   */
  private checked(command: string, json: unknown, runKey?: string): Job {
    const problem = jobProblem(json, runKey);
    if (problem === null) return json as Job;
    const printed = JSON.stringify(json).slice(0, 200);
    throw new ExecutorError(
      `${this.bin} ${command} printed no job of orchesjob's shape (${problem}): ${printed}`,
      "output",
      0,
    );
  }

  /**
   * Runs the binary; exit codes in `expected` (besides 0) are returned rather than thrown. `env` is
   * added to orchesjob's environment, which the job inherits. `raw` keeps stdout in its sink instead
   * of parsing it as JSON (logs).
   */
  private async call(
    args: string[],
    expected: number[] = [],
    launch: Launch = this.launch(),
    raw?: { sink: OutputSink; limit: number },
  ): Promise<{ code: number; json: unknown; bytes: Uint8Array }> {
    const what = `${this.bin} ${args[0]}`;
    const output = await this.run(what, args, launch, raw ?? { sink: keepAll(JSON_LIMIT), limit: JSON_LIMIT });
    const stderr = new TextDecoder().decode(output.stderr);
    const tail = stderr.trim().slice(-500);
    // Our own limit is a SpawnError of kind "timeout": a signal here came from elsewhere (a crash, the OOM killer).
    if (output.signal !== null) {
      throw new ExecutorError(`${what} was killed by signal ${output.signal}`, "signal", null, tail);
    }
    if (output.code !== 0 && !expected.includes(output.code)) {
      throw new ExecutorError(
        `${what} exited ${output.code}: ${tail.split("\n").at(-1) ?? ""}`,
        "exit",
        output.code,
        tail,
      );
    }
    if (output.code !== 0 || raw !== undefined) return { code: output.code, json: null, bytes: output.stdout };
    const stdout = new TextDecoder().decode(output.stdout);
    try {
      return { code: 0, json: JSON.parse(stdout), bytes: output.stdout };
    } catch {
      throw new ExecutorError(`${what} printed no JSON: ${stdout.trim().slice(0, 200)}`, "output", 0, tail);
    }
  }

  /** Runs one call to its end; a call that could not be run, or not to its end, is an ExecutorError. */
  private async run(
    what: string,
    args: string[],
    launch: Launch,
    stdout: { sink: OutputSink; limit: number },
  ): Promise<Finished> {
    try {
      return await runToEnd([this.bin, ...args], {
        ...launch,
        timeoutSec: this.callTimeoutSec,
        signal: this.stop,
        stdout: stdout.sink,
        stderr: keepLast(STDERR_KEPT),
      });
    } catch (error) {
      if (!(error instanceof SpawnError)) throw error;
      if (error.kind === "missing") throw new ExecutorError(`orchesjob not found: ${this.bin}`, "missing");
      if (error.kind === "denied") throw new ExecutorError(`orchesjob is not executable: ${this.bin}`, "missing");
      if (error.kind === "stopped") throw new ExecutorError(`${what} was stopped (interrupted)`, "stopped");
      if (error.kind === "overflow") {
        // Killed before the end: more than any answer the engine reads, not a verdict on the job.
        throw new ExecutorError(`${what} printed more than ${stdout.limit >> 20} MiB on stdout (the limit)`, "output");
      }
      throw new ExecutorError(`${what} did not answer within ${this.callTimeoutSec} s`, "timeout");
    }
  }
}
