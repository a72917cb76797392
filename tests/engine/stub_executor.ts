/**
 * An executor whose jobs end the moment they start (SUCCEEDED), with no process behind them: it
 * isolates the engine's own cost per step (bench/run.ts) and lets a test push 10k steps through the
 * real driver and SQLite store. It counts starts per run key, so a test can check "exactly once".
 */
import type { Executor } from "../../src/executor/mod.ts";
import type { Job, StartResult } from "../../src/domain/mod.ts";

export class StubExecutor implements Executor {
  readonly kind = "builtin";
  readonly starts = new Map<string, number>();
  /** The most starts that were in progress at the same time. */
  maxInFlight = 0;
  private inFlight = 0;

  /** `startDelaySeconds`: how long each start takes (as a real orchesjob's does), default none. */
  constructor(readonly options: { startDelaySeconds?: number } = {}) {}

  async start(runKey: string, command: readonly string[]): Promise<StartResult> {
    const existing = this.starts.has(runKey);
    this.starts.set(runKey, (this.starts.get(runKey) ?? 0) + 1);
    if (this.options.startDelaySeconds) {
      this.maxInFlight = Math.max(this.maxInFlight, ++this.inFlight);
      await new Promise((resolve) => setTimeout(resolve, this.options.startDelaySeconds! * 1000));
      this.inFlight--;
    }
    const job = this.job(runKey, command);
    return { ...job, accepted: !existing, existing, mode: "async", strict: false, strict_override_used: false };
  }

  unlock(runKey: string): Promise<boolean> {
    return Promise.resolve(this.starts.has(runKey));
  }

  /** The job of a started key, made afresh on each call: holding 10k jobs would weigh on the driver's RSS. */
  private job(runKey: string, command: readonly string[]): Job {
    const now = Math.floor(Date.now() / 1000);
    return {
      job_id: `job-${runKey}`,
      run_key: runKey,
      command: [...command],
      pid: null,
      pid_kind: null,
      worker_pid: null,
      target_pid: null,
      status: "SUCCEEDED",
      exit_code: 0,
      stdout_file: "/dev/null",
      stderr_file: "/dev/null",
      attempt_no: 1,
      rerun_of_job_id: null,
      rerun_reason: null,
      abort_reason: null,
      started_at: now,
      started_at_iso: "",
      finished_at: now,
      finished_at_iso: "",
      updated_at: now,
      updated_at_iso: "",
      aborted_at: null,
      aborted_at_iso: null,
    };
  }

  status(runKey: string): Promise<Job | null> {
    return Promise.resolve(this.starts.has(runKey) ? this.job(runKey, ["true"]) : null);
  }

  running(): Promise<Job[]> {
    return Promise.resolve([]);
  }

  abort(runKey: string): Promise<Job | null> {
    return this.status(runKey);
  }

  logs(): Promise<Uint8Array | null> {
    return Promise.resolve(null);
  }
}
