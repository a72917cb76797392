/**
 * The external orchesjob, driven through its CLI (`orchesjob start|status|abort`). No shell: argv is
 * passed as is. Each call has a time limit; failures become {@link ExecutorError}s carrying the exit
 * code and the end of stderr. The real program costs ~170 ms a call, so callers batch (`running()`).
 */
import { type Finished, runToEnd, SpawnError } from "../shared/mod.ts";
import {
  type AbortOptions,
  type Executor,
  ExecutorError,
  type JobRef,
  type LogRange,
  sliceLog,
  type StartOptions,
} from "./executor.ts";
import { type Job, JobExit, type StartResult } from "../domain/mod.ts";
import { watchDirectory } from "./watch.ts";
import { envSupportsChdir, wrapCommand } from "./wrap.ts";

/** How orchesjob itself is started: its environment (added to ours, or instead of it) and directory. */
type Launch = { env?: Record<string, string>; clearEnv?: boolean; cwd?: string };

export class ExternalExecutor implements Executor {
  readonly kind = "orchesjob";

  /**
   * `home`: orchesjob's state directory ($ORCHESJOB_HOME), watched for hints that a job ended.
   * `runEnv`: the environment of the run's first start (see {@link ExternalExecutor.launch}).
   */
  constructor(
    readonly bin: string,
    readonly callTimeoutSec = 60,
    readonly home = "/var/lib/orchesjob",
    readonly runEnv?: Record<string, string>,
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
    return (await this.call([...args, "--", ...wrapped], [], this.launch(options.baseEnv))).json as StartResult;
  }

  async status(runKey: string): Promise<Job | null> {
    const result = await this.call(["status", "--run-key", runKey], [JobExit.notFound]);
    return result.code === JobExit.notFound ? null : result.json as Job;
  }

  async running(): Promise<Job[]> {
    const { json } = await this.call(["status", "--running"]);
    if (!Array.isArray(json)) throw new ExecutorError(`${this.bin} status --running: expected a JSON array`, "output");
    return json as Job[];
  }

  async abort(runKey: string, options: AbortOptions): Promise<Job | null> {
    const args = ["abort", "--run-key", runKey, "--grace-seconds", String(options.graceSeconds)];
    if (options.reason !== undefined) args.push("--reason", options.reason);
    const result = await this.call(args, [JobExit.notFound, JobExit.invalidState]);
    if (result.code === JobExit.notFound) return null;
    // Exit 4: it is no longer running (it just finished); its final status is the answer.
    if (result.code === JobExit.invalidState) return await this.status(runKey);
    return result.json as Job;
  }

  async logs(ref: JobRef, stream: "stdout" | "stderr", range?: LogRange): Promise<Uint8Array | null> {
    const which = "jobId" in ref ? ["--job-id", ref.jobId] : ["--run-key", ref.runKey];
    const result = await this.call(["logs", ...which, "--stream", stream], [JobExit.notFound], this.launch(), true);
    return result.code === JobExit.notFound ? null : sliceLog(result.bytes, range);
  }

  /**
   * Runs the binary; exit codes in `expected` (besides 0) are returned rather than thrown. `env` is
   * added to orchesjob's environment, which the job inherits. `raw` skips JSON parsing (logs).
   */
  private async call(
    args: string[],
    expected: number[] = [],
    launch: Launch = this.launch(),
    raw = false,
  ): Promise<{ code: number; json: unknown; bytes: Uint8Array }> {
    const what = `${this.bin} ${args[0]}`;
    let output: Finished;
    try {
      output = await runToEnd([this.bin, ...args], { ...launch, timeoutSec: this.callTimeoutSec });
    } catch (error) {
      if (!(error instanceof SpawnError)) throw error;
      if (error.kind === "missing") throw new ExecutorError(`orchesjob not found: ${this.bin}`, "missing");
      if (error.kind === "denied") throw new ExecutorError(`orchesjob is not executable: ${this.bin}`, "missing");
      throw new ExecutorError(`${what} did not answer within ${this.callTimeoutSec} s`, "timeout");
    }
    const stderr = new TextDecoder().decode(output.stderr);
    const tail = stderr.trim().slice(-500);
    if (output.signal !== null) {
      throw new ExecutorError(`${what} did not answer within ${this.callTimeoutSec} s`, "timeout", null, tail);
    }
    if (output.code !== 0 && !expected.includes(output.code)) {
      throw new ExecutorError(
        `${what} exited ${output.code}: ${tail.split("\n").at(-1) ?? ""}`,
        "exit",
        output.code,
        tail,
      );
    }
    if (output.code !== 0 || raw) return { code: output.code, json: null, bytes: output.stdout };
    const stdout = new TextDecoder().decode(output.stdout);
    try {
      return { code: 0, json: JSON.parse(stdout), bytes: output.stdout };
    } catch {
      throw new ExecutorError(`${what} printed no JSON: ${stdout.trim().slice(0, 200)}`, "output", 0, tail);
    }
  }
}
