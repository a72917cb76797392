/**
 * The imperative half of the engine: observe running jobs, ask {@link decide} what to do, apply it.
 * One driver per run at a time (the caller holds the run's driver lock).
 */
import { type Executor, ExecutorError } from "../executor/mod.ts";
import { isTerminalRun, type Job, type RunState, stepDefinition, stepRunKey } from "../domain/mod.ts";
import { type Clock, crashPoint, nextPause, sleepUnless, systemClock } from "../shared/mod.ts";
import { type Action, decide, nextDue, type Observations } from "./decide.ts";
import type { RunRepository, StartGate, StepChange } from "./ports.ts";
import { loadRun } from "./runs.ts";
import { moveRun, moveStep, RUN_TRANSITIONS, STEP_TRANSITIONS } from "./transitions.ts";

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
  runs: RunRepository;
  gate: StartGate;
  executor: Executor;
  /** The time; tests pass their own. */
  clock?: Clock;
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
  private readonly clock: Clock;

  constructor(readonly options: DriverOptions, readonly runKey: string) {
    this.clock = options.clock ?? systemClock;
  }

  private load(): RunState {
    const record = loadRun(this.options.runs, this.runKey);
    if (!record) throw new Error(`run ${this.runKey} disappeared`);
    return record.state;
  }

  /** One round: observe, decide, apply. */
  async tick(): Promise<TickResult> {
    const before = this.load();
    if (isTerminalRun(before.status)) return { state: before, progressed: false, started: false };
    const observations = await this.observe(before);
    const actions = decide(before, observations, this.clock.now());
    let progressed = false;
    let started = false;
    for (const action of actions) {
      if (this.options.interrupted?.()) break;
      const effect = await this.apply(before, action);
      if (effect === "started") started = true;
      else if (effect === "progressed") progressed = true;
    }
    return { state: this.load(), progressed, started };
  }

  /** Drives the run until it ends, or until interrupted. Returns the last state seen. */
  async drive(): Promise<RunState> {
    const backoff = {
      first: FIRST_PAUSE_SECONDS[this.options.executor.kind],
      factor: 2,
      ceiling: this.options.pollIntervalSec,
    };
    const first = nextPause(backoff);
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
      const wait = due === null ? pause : Math.max(0, Math.min(pause, due - this.clock.now()));
      await this.pause(wait);
      pause = nextPause(backoff, pause);
    }
  }

  /** Sleeps `seconds`, waking early if the run ends (a cancel) or the driver is interrupted. */
  private pause(seconds: number): Promise<void> {
    return sleepUnless(seconds, () => {
      if (this.options.interrupted?.()) return true;
      const status = this.options.runs.runStatus(this.runKey);
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

  /**
   * Carries out one action through the transition table. Returns what it did for the loop's pacing:
   * `progressed` (decide again at once), `started` (poll soon), or `none`.
   */
  private async apply(run: RunState, action: Action): Promise<Effect> {
    const { runs } = this.options;
    const now = this.clock.now();
    const runKey = this.runKey;
    switch (action.kind) {
      case "begin":
        moveRun(runs, runKey, RUN_TRANSITIONS.begin, "RUNNING");
        break;
      case "start":
        return await this.start(run, action.stepId, action.attemptNo, action.resume);
      case "observe":
        this.record(run, action.stepId, { job: action.job });
        return "none";
      case "succeed":
        moveStep(runs, this.attempt(run, action.stepId), STEP_TRANSITIONS.succeed, "SUCCEEDED", {
          finishedAt: now,
          job: action.job,
        });
        break;
      case "retry":
        moveStep(runs, this.attempt(run, action.stepId), STEP_TRANSITIONS.retry, action.next, {
          nextAttemptAt: action.nextAttemptAt,
          error: action.error,
          ...(action.job ? { job: action.job } : {}),
        });
        break;
      case "fail":
        moveStep(runs, this.attempt(run, action.stepId), STEP_TRANSITIONS.fail, "FAILED", {
          finishedAt: now,
          error: action.error,
          ...(action.job ? { job: action.job } : {}),
        });
        break;
      case "timeout":
        await this.timeout(run, action.stepId, action.job, action.error);
        break;
      case "skip":
        moveStep(runs, { runKey, stepId: action.stepId }, STEP_TRANSITIONS.skip, "SKIPPED", { finishedAt: now });
        break;
      case "finish":
        moveRun(runs, runKey, RUN_TRANSITIONS.finish, action.status, { finishedAt: now, error: null });
        break;
    }
    return "progressed";
  }

  /** The guard of a write about a step's current attempt. */
  private attempt(run: RunState, stepId: string, attemptNo = attemptOf(run, stepId)) {
    return { runKey: this.runKey, stepId, attemptNo };
  }

  /** Records what happened to a RUNNING step's current attempt, without changing its status. */
  private record(run: RunState, stepId: string, change: StepChange, attemptNo?: number): boolean {
    return moveStep(
      this.options.runs,
      this.attempt(run, stepId, attemptNo),
      STEP_TRANSITIONS.record,
      "RUNNING",
      change,
    );
  }

  private async start(run: RunState, stepId: string, attemptNo: number, resume: boolean): Promise<Effect> {
    const { runs } = this.options;
    if (!resume) {
      // Intent before action: the step is RUNNING on attempt n (and so on run key :n) before
      // orchesjob hears of it. After a crash from here on, the loop polls that key and starts it
      // again only if orchesjob never saw it; orchesjob's idempotency by run key does the rest.
      const recorded = moveStep(runs, { runKey: this.runKey, stepId }, STEP_TRANSITIONS.start, "RUNNING", {
        attemptNo,
        startedAt: this.clock.now(),
        finishedAt: null,
        nextAttemptAt: null,
        error: null,
        job: null,
      });
      if (!recorded) return "started";
      crashPoint("driver:after-intent");
    }
    // Under the start gate, and only while the run is live: a cancel commits under the same gate,
    // so no job starts once a cancel is committed.
    return await this.options.gate.withStartGate(this.runKey, async () => {
      const status = runs.runStatus(this.runKey);
      if (status === undefined || isTerminalRun(status)) return "started";
      return await this.startJob(run, stepId, attemptNo);
    });
  }

  /** Asks the executor to start the attempt's job and records the answer. */
  private async startJob(run: RunState, stepId: string, attemptNo: number): Promise<Effect> {
    const definition = stepDefinition(run, stepId);
    let job: Job;
    try {
      job = await this.options.executor.start(stepRunKey(this.runKey, stepId, attemptNo), definition.command, {
        strict: definition.strict,
        ...(definition.startTimeoutSec === null ? {} : { startTimeoutSec: definition.startTimeoutSec }),
      });
    } catch (error) {
      if (!(error instanceof ExecutorError)) throw error;
      // A timeout or unreadable answer leaves it unknown whether the job started: the next poll
      // finds out. A missing binary or a refusal means it did not: record why (an attempt with an
      // error and no job), and the next decide fails or retries it.
      if (error.kind === "timeout" || error.kind === "output") return "started";
      this.record(run, stepId, { error: `start failed: ${error.message}` }, attemptNo);
      return "progressed";
    }
    crashPoint("driver:before-job-recorded");
    this.record(run, stepId, { job }, attemptNo);
    return "started";
  }

  /**
   * Records the timeout's reason with the job last seen, then aborts the job and records how it
   * ended. The next decide sees the ended job: a timed-out attempt counts as failed and is retried
   * if retries remain; a job that finished just as its time ran out succeeds.
   */
  private async timeout(run: RunState, stepId: string, seen: Job, error: string): Promise<void> {
    const { attemptNo } = run.steps.find((s) => s.id === stepId)!;
    // The reason is recorded before the abort, so a crash between the two still reports the timeout.
    if (!this.record(run, stepId, { error, job: seen })) return;
    let job: Job | null;
    try {
      job = await this.options.executor.abort(stepRunKey(this.runKey, stepId, attemptNo), {
        graceSeconds: TIMEOUT_GRACE_SECONDS,
        reason: error,
      });
    } catch (abortError) {
      if (abortError instanceof ExecutorError) return; // try again on the next round
      throw abortError;
    }
    if (job === null) return;
    this.record(run, stepId, job.status === "SUCCEEDED" ? { error: null, job } : { job });
  }
}

type Effect = "progressed" | "started" | "none";

function attemptOf(run: RunState, stepId: string): number {
  return run.steps.find((s) => s.id === stepId)!.attemptNo;
}
