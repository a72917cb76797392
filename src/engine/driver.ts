/**
 * The imperative half of the engine: observe running jobs, ask {@link decide} what to do, apply it.
 * One driver per run at a time (the caller holds the run's driver lock).
 */
import { type Executor, ExecutorError } from "../executor/executor.ts";
import type { Job } from "../executor/job.ts";
import type { RunStore } from "../store/runs.ts";
import { sleepUnless } from "../sleep.ts";
import { withStartGate } from "../store/locks.ts";
import { type Action, decide, failedAttempt, nextDue, type Observations } from "./decide.ts";
import { epochNow, isTerminalRun, type RunState, stepDefinition, stepRunKey } from "./state.ts";

/** Grace between SIGTERM and SIGKILL when a step's timeout_sec is exceeded. */
export const TIMEOUT_GRACE_SECONDS = 5;
/**
 * The first pause after something happened; it doubles up to the poll interval. Polling the built-in
 * runner is an in-process read; polling an external orchesjob costs a process (~170 ms), so it starts later.
 */
const FIRST_PAUSE_SECONDS = { builtin: 0.02, orchesjob: 0.1 } as const;
/** Sleeping is done in slices this long, so a cancel or an interrupt is noticed promptly. */
const SLICE_SECONDS = 0.25;

export interface DriverOptions {
  store: RunStore;
  executor: Executor;
  dbPath: string;
  /** The longest pause between polls (--poll-interval). */
  pollIntervalSec: number;
  /** Checked between steps of work; when it returns true the driver stops, leaving the run resumable. */
  interrupted?: () => boolean;
}

export interface TickResult {
  state: RunState;
  /** Some step or the run changed status: decide again at once. */
  progressed: boolean;
  /** A job was started: poll it soon. */
  started: boolean;
}

export class Driver {
  constructor(readonly options: DriverOptions, readonly runKey: string) {}

  private load(): RunState {
    const record = this.options.store.get(this.runKey);
    if (!record) throw new Error(`run ${this.runKey} disappeared`);
    return record.state;
  }

  /** One round: observe, decide, apply. */
  async tick(): Promise<TickResult> {
    const before = this.load();
    if (isTerminalRun(before.status)) return { state: before, progressed: false, started: false };
    const observations = await this.observe(before);
    const actions = decide(before, observations, epochNow());
    let progressed = false;
    let started = false;
    for (const action of actions) {
      if (this.options.interrupted?.()) break;
      if (action.kind === "start") started = true;
      else if (action.kind !== "observe") progressed = true;
      await this.apply(before, action);
    }
    return { state: this.load(), progressed, started };
  }

  /** Drives the run until it ends, or until interrupted. Returns the last state seen. */
  async drive(): Promise<RunState> {
    const ceiling = this.options.pollIntervalSec;
    const first = Math.min(FIRST_PAUSE_SECONDS[this.options.executor.kind], ceiling);
    let pause = first;
    for (;;) {
      if (this.options.interrupted?.()) return this.load();
      const { state, progressed, started } = await this.tick();
      if (isTerminalRun(state.status)) return state;
      if (progressed) {
        pause = first;
        continue;
      }
      if (started) pause = first;
      const due = nextDue(state);
      const wait = due === null ? pause : Math.max(0, Math.min(pause, due - epochNow()));
      await this.pause(wait);
      pause = Math.min(pause * 2, ceiling);
    }
  }

  /** Sleeps `seconds`, waking early if the run ends (a cancel) or the driver is interrupted. */
  private pause(seconds: number): Promise<void> {
    return sleepUnless(seconds, () => {
      if (this.options.interrupted?.()) return true;
      const status = this.options.store.runStatus(this.runKey);
      return status === undefined || isTerminalRun(status);
    }, SLICE_SECONDS);
  }

  /**
   * The latest job of every RUNNING step. An external orchesjob costs a process per call, so one
   * `status --running` covers all active jobs and only steps missing from it are asked one by one.
   */
  private async observe(run: RunState): Promise<Observations> {
    const running = run.steps.filter((step) => step.status === "RUNNING");
    const observations = new Map<string, Job | null>();
    if (running.length === 0) return observations;
    const { executor } = this.options;
    let active: Map<string, Job> | null = null;
    if (executor.kind === "orchesjob" && running.length > 1) {
      try {
        active = new Map((await executor.running()).map((job) => [job.run_key ?? "", job]));
      } catch (error) {
        if (!(error instanceof ExecutorError)) throw error;
        active = null; // fall back to one call per step
      }
    }
    for (const step of running) {
      const key = stepRunKey(run.runKey, step.id, step.attemptNo);
      const job = active?.get(key) ?? await this.statusOrUnknown(key);
      if (job !== undefined) observations.set(step.id, job);
    }
    return observations;
  }

  /** orchesjob status; undefined (not observed this round) when orchesjob could not be asked. */
  private async statusOrUnknown(key: string): Promise<Job | null | undefined> {
    try {
      return await this.options.executor.status(key);
    } catch (error) {
      if (error instanceof ExecutorError) return undefined;
      throw error;
    }
  }

  private async apply(run: RunState, action: Action): Promise<void> {
    const { store } = this.options;
    const now = epochNow();
    const key = this.runKey;
    switch (action.kind) {
      case "begin":
        store.begin(key);
        return;
      case "start":
        return await this.start(run, action.stepId, action.attemptNo, action.resume);
      case "observe":
        store.updateStep(key, action.stepId, ["RUNNING"], { orchesjob_status: action.job }, {
          attemptNo: attemptOf(run, action.stepId),
        });
        return;
      case "succeed":
        store.updateStep(key, action.stepId, ["RUNNING"], {
          status: "SUCCEEDED",
          finished_at: now,
          orchesjob_status: action.job,
        }, { attemptNo: attemptOf(run, action.stepId) });
        return;
      case "retry":
      case "fail": {
        // A failed attempt: DELAYED or PENDING for the next one, or FAILED when none is left.
        const status = action.kind === "fail" ? "FAILED" : action.nextAttemptAt === null ? "PENDING" : "DELAYED";
        // The reason people look for is usually the job's last words on stderr: show it with the status.
        const said = action.job
          ? await this.lastStderrLine(stepRunKey(key, action.stepId, attemptOf(run, action.stepId)))
          : null;
        store.updateStep(key, action.stepId, ["RUNNING"], {
          status,
          ...(action.kind === "fail" ? { finished_at: now } : { next_attempt_at: action.nextAttemptAt }),
          error: said && !action.error.endsWith(said) ? `${action.error}: ${said}` : action.error,
          ...(action.job ? { orchesjob_status: action.job } : {}),
        }, { attemptNo: attemptOf(run, action.stepId) });
        return;
      }
      case "timeout":
        return await this.timeout(run, action.stepId, action.error);
      case "skip":
        store.updateStep(key, action.stepId, ["PENDING"], { status: "SKIPPED", finished_at: now });
        return;
      case "finish":
        store.finish(key, action.status, now);
        return;
    }
  }

  /** The last non-empty line a job wrote to stderr (at most 300 characters), or null. */
  private async lastStderrLine(jobKey: string): Promise<string | null> {
    let bytes: Uint8Array | null;
    try {
      bytes = await this.options.executor.logs(jobKey, "stderr");
    } catch (error) {
      if (error instanceof ExecutorError) return null;
      throw error;
    }
    if (!bytes) return null;
    const tail = new TextDecoder().decode(bytes.subarray(Math.max(0, bytes.length - 4096)));
    const line = tail.split("\n").map((l) => l.trim()).filter((l) => l !== "").at(-1);
    return line === undefined ? null : line.length > 300 ? `${line.slice(0, 297)}...` : line;
  }

  private async start(run: RunState, stepId: string, attemptNo: number, resume: boolean): Promise<void> {
    const { store, executor } = this.options;
    const definition = stepDefinition(run, stepId);
    const jobKey = stepRunKey(this.runKey, stepId, attemptNo);
    if (!resume) {
      // Intent before action: the step is RUNNING on attempt n (and so on run key :n) before
      // orchesjob hears of it. After a crash from here on, the loop polls that key and starts it
      // again only if orchesjob never saw it; orchesjob's idempotency by run key does the rest.
      const recorded = store.updateStep(this.runKey, stepId, ["PENDING", "DELAYED"], {
        status: "RUNNING",
        attempt_no: attemptNo,
        started_at: epochNow(),
        finished_at: null,
        next_attempt_at: null,
        error: null,
        orchesjob_status: null,
      });
      if (!recorded) return;
    }
    // Under the start gate, and only while the run is live: a cancel commits under the same gate,
    // so no job starts once a cancel is committed.
    await withStartGate(this.options.dbPath, this.runKey, async () => {
      const status = store.runStatus(this.runKey);
      if (status === undefined || isTerminalRun(status)) return;
      let job: Job;
      try {
        job = await executor.start(jobKey, definition.command, {
          strict: definition.strict,
          ...(definition.startTimeoutSec === null ? {} : { startTimeoutSec: definition.startTimeoutSec }),
        });
      } catch (error) {
        if (!(error instanceof ExecutorError)) throw error;
        // A timeout or unreadable answer leaves it unknown whether the job started: the next poll
        // finds out. A missing binary or a refusal means it did not: the attempt failed.
        if (error.kind === "timeout" || error.kind === "output") return;
        const step = { ...run.steps.find((s) => s.id === stepId)!, attemptNo };
        const outcome = failedAttempt(step, definition, null, `start failed: ${error.message}`, epochNow());
        await this.apply({ ...run, steps: run.steps.map((s) => (s.id === stepId ? step : s)) }, outcome);
        return;
      }
      store.updateStep(this.runKey, stepId, ["RUNNING"], { orchesjob_status: job }, { attemptNo });
    });
  }

  private async timeout(run: RunState, stepId: string, error: string): Promise<void> {
    const { store, executor } = this.options;
    const step = run.steps.find((s) => s.id === stepId)!;
    // The reason is recorded before the abort, so a crash between the two still reports the timeout.
    if (!store.updateStep(this.runKey, stepId, ["RUNNING"], { error }, { attemptNo: step.attemptNo })) return;
    let job: Job | null;
    try {
      job = await executor.abort(stepRunKey(this.runKey, stepId, step.attemptNo), {
        graceSeconds: TIMEOUT_GRACE_SECONDS,
        reason: error,
      });
    } catch (abortError) {
      if (abortError instanceof ExecutorError) return; // try again on the next round
      throw abortError;
    }
    if (job?.status === "SUCCEEDED") {
      // It finished just as its time ran out.
      store.updateStep(this.runKey, stepId, ["RUNNING"], { error: null }, { attemptNo: step.attemptNo });
      return await this.apply(run, { kind: "succeed", stepId, job });
    }
    await this.apply(run, failedAttempt(step, stepDefinition(run, stepId), job, error, epochNow()));
  }
}

function attemptOf(run: RunState, stepId: string): number {
  return run.steps.find((s) => s.id === stepId)!.attemptNo;
}
