/**
 * The imperative half of the engine: observe running jobs, ask {@link decide} what to do, apply it.
 * One driver per run at a time (the caller holds the run's driver lock).
 */
import { type Executor, ExecutorError } from "../executor/mod.ts";
import {
  addFailedCall,
  type ExecutorFault,
  executorUnavailableLimit,
  isActiveJob,
  isTerminalRun,
  type Job,
  JobExit,
  madeBeforeIntent,
  type RunState,
  stepRunKey,
  type StepState,
  type StepStatus,
} from "../domain/mod.ts";
import {
  type Clock,
  collectGarbageIfGrown,
  collectGarbageIfGrownEvery,
  crashPoint,
  forEachBounded,
  nextPause,
  sleepUnless,
  stopPoint,
  systemClock,
  within,
} from "../shared/mod.ts";
import { Doorbell } from "./doorbell.ts";
import { type Action, attemptEnd, decide, nextDue, type Observations } from "./decide.ts";
import type { RunRepository, StartGate, StepChange } from "./ports.ts";
import { stepLaunch } from "./launch.ts";
import { RunIndex } from "./run_index.ts";
import { loadRun } from "./runs.ts";
import { boundedSteps, ClockStepWatch, readClocks, shifted, shiftedSteps } from "./clock_step.ts";
import { moveRun, moveStep, RUN_TRANSITIONS, STEP_TRANSITIONS, type Transition } from "./transitions.ts";

/** Grace between SIGTERM and SIGKILL when a step's timeout_sec is exceeded. */
export const TIMEOUT_GRACE_SECONDS = 5;
/**
 * The first pause after something happened; it doubles up to the poll interval. Polling the built-in
 * runner is an in-process read; polling an external orchesjob costs a process (~170 ms), so it starts later.
 */
const FIRST_PAUSE_SECONDS = { builtin: 0.02, orchesjob: 0.1 } as const;
/**
 * The first pause when the executor names the jobs that ended (the built-in runner's change hints):
 * polls are then only the fallback for a lost hint or a dead supervisor, and each one reads every
 * running job, so they start later.
 */
const HINTED_FIRST_PAUSE_SECONDS = 0.25;
/** The first pause before a failed abort of a timed-out step is tried again; it doubles up to the poll interval. */
const ABORT_RETRY_FIRST_SECONDS = 0.5;
/**
 * How long the unlock of a run key that orchesjob has from an earlier run lasts (see unlockAndStart):
 * the start right after it uses it; one that no start uses (an orphaned call that arrived late) lapses.
 */
const UNLOCK_TTL_SECONDS = 3600;
/** How long a failed attempt's error waits for the last line of its stderr (a `logs` call) before going without it. */
const STDERR_WAIT_SECONDS = 5;
/** After a `logs` call that did not answer within that wait, how long failed attempts go without asking. */
const STDERR_SKIP_SECONDS = 60;
/** What {@link within} gives for a `logs` call given up on. */
const GAVE_UP = Symbol("gave up");
/** Sleeping is done in slices this long, so a cancel or an interrupt is noticed promptly. */
const SLICE_SECONDS = 0.25;
/** Jobs started (and status calls made) at once; `max_parallel`, when flows get it, caps this further. */
export const START_CONCURRENCY = 8;
/**
 * After an external orchesjob's `status --running` failed (an error, or a hang until the call limit),
 * how long rounds ask each running step by its key instead, before the list is tried again.
 */
const LIST_PAUSE_SECONDS = 60;
/** Starts per hold of the start gate, so a cancel waits for one batch at most. */
const START_BATCH = 64;

export interface DriverOptions {
  runs: RunRepository;
  gate: StartGate;
  executor: Executor;
  /** The time; tests pass their own. */
  clock?: Clock;
  /**
   * A monotonic clock (milliseconds), to tell the wall clock's steps (see clock_step.ts): by default
   * performance.now() with the system clock, and none with a clock a test passes.
   */
  monotonicMs?: () => number;
  /** The longest pause between polls (--poll-interval). */
  pollIntervalSec: number;
  /** Checked between steps of work; when it returns true the driver stops, leaving the run resumable. */
  interrupted?: () => boolean;
  /**
   * Called before every round; throws to stop the driver (the state file was deleted or replaced:
   * rounds would go on writing a file nobody reads).
   */
  checkStore?: () => void;
  /**
   * Why an error of the store is passing (its write lock held by another process, a full disk), or
   * null. Such a round is retried with backoff up to the poll interval, and reported meanwhile.
   */
  storeWaitReason?: (error: unknown) => string | null;
  /** Told of each round lost to a passing store fault (the CLI prints it; the run's error shows it). */
  onStoreWait?: (event: { runKey: string; reason: string; since: number; retryInSec: number }) => void;
  /** Told of every failed executor call about a step, after it is recorded (the CLI prints it). */
  onExecutorError?: (event: { runKey: string; stepId: string; attemptNo: number; fault: ExecutorFault }) => void;
  /**
   * Told of a failed `status --running` of an external orchesjob, after the run's error shows it: once
   * per failure, so once per {@link LIST_PAUSE_SECONDS} at most (the CLI prints it). `fault` counts the
   * failed list calls since the list last answered; `pauseSec`: how long the keys are asked instead.
   */
  onListFault?: (event: { runKey: string; fault: ExecutorFault; pauseSec: number }) => void;
  /**
   * Told of a step of the wall clock (`stepSec`) and of the in-flight steps whose times moved with it,
   * or (`stepSec` null) of those whose stored times lay ahead of the clock at the first round and
   * were brought back to it (see boundedSteps). The CLI prints it.
   */
  onClockStep?: (event: { runKey: string; stepSec: number | null; running: string[]; delayed: string[] }) => void;
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
  private readonly bell = new Doorbell();
  /**
   * The run as this driver last wrote or read it. Each guarded write that succeeds is applied here
   * too, so a round does not reload the run; a write that loses its guard (another process changed
   * the run: a cancel) marks it stale and the next round reloads.
   */
  private state: RunState | null = null;
  private index: RunIndex | null = null;
  private stale = true;
  /** Jobs that `start` returned this round: ended ones need no status call. */
  private startedJobs = new Map<string, Job>();
  /**
   * Timed-out steps whose abort is under way (it may wait out its grace, seconds): step id → the
   * abort. Rounds go on meanwhile, but neither observe nor act on those steps: the abort records how
   * the job ended, then rings, and the next round decides on it (a retry never starts beside a
   * command that is still in its grace).
   */
  private readonly aborting = new Map<string, Promise<void>>();
  /** An abort that failed with an error other than the executor's: the next round throws it. */
  private abortFailure: { error: unknown } | null = null;
  /**
   * Timed-out steps whose last abort failed with the executor's error (orchesjob exited 1, did not
   * answer): when (clock seconds) their abort may be tried again, and the pause that led there. The
   * pause doubles up to the poll interval, so an abort that keeps failing costs a call per pause, not
   * a status and an abort call per round as fast as rounds go. Keyed by the attempt's run key: a new
   * attempt starts afresh. An abort that succeeds clears it.
   */
  private readonly abortRetry = new Map<string, { at: number; pause: number }>();
  /** Attempt keys whose timeout's abort this driver saw answered with the job ended (see settleAborted). */
  private readonly abortsEnded = new Set<string>();
  /**
   * Attempt keys whose abort asked again before a retry (settleAborted) has failed, with the clock time
   * of the first failure of the streak. A successful status read clears the step's recorded fault each
   * round, so only this bounds the streak by executor_unavailable_sec.
   */
  private readonly settleFailedSince = new Map<string, number>();
  /** Until when (performance.now()) failed attempts' errors go without their stderr line: a `logs` call hung. */
  private stderrSkippedUntil = 0;
  /** When (clock seconds) to ask an external orchesjob for its running jobs again after that call failed. */
  private listAgainAt = 0;
  /** The failed `status --running` calls since the list last answered, or null while it answers. */
  private listFault: ExecutorFault | null = null;
  /** Run keys the executor hinted at since the last round looked (see drive). */
  private hinted = new Set<string>();
  /** A hint that named no job: the next round looks at every running step. */
  private hintedAll = false;
  /** While the store fails with a passing fault: since when, and the current backoff. */
  private waitingSince: number | null = null;
  private storeWait: number | null = null;
  /**
   * Passing troubles shown as the run's error while they last (the error of a RUNNING run is only
   * ever such a note): a store fault being waited out, a failing list call. `shownNote` is what the
   * store holds as far as this driver knows (read with the run, so a note a dead driver left is
   * cleared too).
   */
  private storeNote: string | null = null;
  private listNote: string | null = null;
  private shownNote: string | null = null;

  /** Tells the wall clock's steps, when there is a monotonic clock to tell them by. */
  private readonly clockWatch: { watch: ClockStepWatch; monotonicMs: () => number } | null;
  /**
   * Per attempt (its step run key): the clock steps since its job started, in seconds. The executor
   * reports the job's start on the wall clock of that time; timeout_sec counts from it when it came
   * after the attempt's intent, so it moves with the intent (see followClockStep).
   */
  private readonly jobStartShift = new Map<string, number>();
  /** The sum of the clock steps this driver followed, in seconds (see retry). */
  private steppedSec = 0;
  /** {@link steppedSec} when the round's decision read the clock. */
  private steppedAtDecide = 0;

  constructor(readonly options: DriverOptions, readonly runKey: string) {
    this.clock = options.clock ?? systemClock;
    const monotonicMs = options.monotonicMs ?? (options.clock ? null : () => performance.now());
    this.clockWatch = monotonicMs === null ? null : { watch: new ClockStepWatch(), monotonicMs };
  }

  private load(): RunState {
    const record = loadRun(this.options.runs, this.runKey);
    if (!record) throw new Error(`run ${this.runKey} disappeared`);
    return record.state;
  }

  /**
   * The run to decide on. Only the run's status can change under a driver that holds the run's lock
   * (a cancel, which also ends the steps), so that one field is read each round; the rest comes from
   * memory unless a write found the store different from what this driver believed.
   */
  private current(): { run: RunState; index: RunIndex } {
    if (this.state && this.index && !this.stale && this.options.runs.runStatus(this.runKey) === this.state.status) {
      return { run: this.state, index: this.index };
    }
    this.state = this.load();
    if (this.state.status === "RUNNING") this.shownNote = this.state.error;
    this.index = new RunIndex(this.state);
    this.stale = false;
    this.startedJobs.clear();
    return { run: this.state, index: this.index };
  }

  /**
   * One round: observe, decide, apply. With `only`, it asks the executor only about the running steps
   * whose job's run key is in it (and about steps whose last answer is missing or failed).
   */
  async tick(only: ReadonlySet<string> | null = null): Promise<TickResult> {
    try {
      return await this.round(only);
    } finally {
      await this.abortsDone();
    }
  }

  /**
   * Advances the run as far as it goes now, without waiting for any job: a round, then more rounds
   * while they progress (a step that succeeded starts its dependents, a skip skips the steps after
   * it), each asking the executor only about what it has not seen yet. `tick` and `watch --advance`
   * take one such step per call; one round each left a chain of skips one level per refresh.
   */
  async advance(): Promise<TickResult> {
    try {
      let result = await this.round(null);
      for (let rounds = 1; result.progressed && !isTerminalRun(result.state.status); rounds++) {
        if (rounds > result.state.steps.length + 2 || this.options.interrupted?.()) break;
        result = await this.round(new Set());
      }
      return result;
    } finally {
      await this.abortsDone();
    }
  }

  /**
   * Waits until every abort a round started has finished (and recorded how its job ended). An abort
   * that failed with no round left to report it (a one-shot tick, a driver on its way out) fails
   * this call, as it failed the round before aborts ran beside the rounds.
   */
  private async abortsDone(): Promise<void> {
    while (this.aborting.size > 0) await Promise.all(this.aborting.values());
    this.throwAbortFailure();
  }

  /** Throws (once) what an abort beside the rounds failed with, if one did. */
  private throwAbortFailure(): void {
    if (this.abortFailure === null) return;
    const { error } = this.abortFailure;
    this.abortFailure = null;
    throw error;
  }

  /** One round, leaving the aborts of timed-out steps to finish in the background. */
  private async round(only: ReadonlySet<string> | null): Promise<TickResult> {
    this.throwAbortFailure();
    const { run, index } = this.current();
    if (isTerminalRun(run.status)) return { state: run, progressed: false, started: false };
    this.followClockStep(index);
    const observed = await this.observe(run, index, only);
    // Status calls take a while (seconds, when orchesjob waits for its lock): a step meanwhile is seen
    // here again, before the decision reads the clock, or it measured the in-flight times on the
    // stepped clock: a step forward aborted a running step at once.
    this.followClockStep(index);
    const observations = this.withJobStartsShifted(index, observed);
    this.steppedAtDecide = this.steppedSec;
    const actions = decide(run, observations, this.clock.now(), index);
    index.settle();
    const effects: Effect[] = [];
    const starts: Extract<Action, { kind: "start" }>[] = [];
    const timeouts: Extract<Action, { kind: "timeout" }>[] = [];
    for (const action of actions) {
      collectGarbageIfGrownEvery();
      // A step being aborted waits for its abort's own record (it is RUNNING, so every round looks
      // at it again: nothing is forgotten by skipping it here).
      if ("stepId" in action && this.aborting.has(action.stepId)) continue;
      // A timeout whose last abort failed waits for its retry time (the step stays RUNNING, observed).
      if (action.kind === "timeout" && this.abortRetryAt(action.stepId) > this.clock.now()) continue;
      if (this.options.interrupted?.()) {
        // settle() assumed every action is applied: rebuild the index rather than forget a step.
        this.stale = true;
        break;
      }
      if (action.kind === "start") starts.push(action);
      else if (action.kind === "timeout") timeouts.push(action);
      else effects.push(await this.apply(run, index, action));
    }
    // A timeout's abort may wait out a grace of seconds: it runs beside the rounds, which meanwhile
    // start and finish other steps.
    for (const action of timeouts) this.abortInBackground(action);
    if (starts.length > 0) effects.push(await this.startAll(starts));
    return { state: run, progressed: effects.includes("progressed"), started: effects.includes("started") };
  }

  /**
   * Starts a timed-out step's abort without waiting for it. Its reason is committed before this
   * returns (see {@link timeout}); when the abort has recorded how the job ended, the bell rings so
   * that the next round decides on the step at once.
   */
  private abortInBackground(action: Extract<Action, { kind: "timeout" }>): void {
    const { stepId } = action;
    const key = stepRunKey(this.runKey, stepId, this.index!.step(stepId).attemptNo);
    const abort = this.timeout(stepId, action.job, action.error)
      .catch((error) => {
        this.abortFailure ??= { error };
        return true;
      })
      .then((aborted) => {
        this.aborting.delete(stepId);
        // A failed abort rings nothing: its retry is due later, and an early round would only skip it.
        if (aborted) this.hint([key]);
      });
    this.aborting.set(stepId, abort);
  }

  /**
   * Drives the run until it ends, or until interrupted. Returns the last state seen. Between rounds
   * it sleeps with a backoff up to the poll interval, woken early by the executor's change hints
   * (a job ended): a hint that is lost costs at most one poll interval, and after a restart polling
   * finds whatever ended meanwhile.
   */
  async drive(): Promise<RunState> {
    try {
      return await this.rounds();
    } finally {
      // An abort under way is seen to its end (SIGKILL after its grace) before the driver goes.
      await this.abortsDone();
    }
  }

  private async rounds(): Promise<RunState> {
    const { executor } = this.options;
    using watch = executor.watch?.((runKeys) => this.hint(runKeys)) ?? null;
    // Hints that name jobs (the built-in runner's) make the rounds they wake look at those jobs only,
    // and the polls a fallback; otherwise each round looks at every running step.
    const named = watch !== null && executor.kind === "builtin";
    const backoff = this.backoff(named ? HINTED_FIRST_PAUSE_SECONDS : undefined);
    const first = nextPause(backoff);
    let pause = first;
    // A round looks at every running step (polls) unless a hint woke it or it follows one that made
    // progress; and whatever wakes the rounds, at least once per pause of the backoff: hints alone
    // never see a job that ends without one (a dead supervisor, a lost event).
    let woken = false;
    let lastPoll = -Infinity;
    for (;;) {
      if (this.options.interrupted?.()) return this.current().run;
      // Rings from here on announce changes this round may not see: they cut the next pause short,
      // and the hints that came with them are the next round's to look at.
      this.bell.clear();
      const poll = !named || !woken || this.hintedAll || performance.now() - lastPoll >= pause * 1000;
      if (poll) lastPoll = performance.now();
      const only = poll ? null : this.hinted;
      this.hinted = new Set();
      this.hintedAll = false;
      collectGarbageIfGrown();
      const round = await this.tickOrWait(backoff, only);
      if (round === null) {
        woken = false;
        continue;
      }
      const { state, progressed, started } = round;
      if (isTerminalRun(state.status)) return state;
      woken = true;
      if (progressed) {
        pause = first;
        continue;
      }
      if (started) pause = first;
      const due = this.nextDue(state);
      const wait = due === null ? pause : Math.max(0, Math.min(pause, due - this.clock.now()));
      woken = await this.pause(wait);
      pause = nextPause(backoff, pause);
    }
  }

  /**
   * When a round must next act: {@link nextDue}, but a step whose abort is under way counts only when
   * that abort rings, and one whose abort failed only from its retry time.
   */
  private nextDue(state: RunState): number | null {
    // A retry time that has passed with no abort tried is stale (the step is no longer timed out: its
    // job's own start came later than its intent): it would make the driver spin.
    const now = this.clock.now();
    const retries = [...this.index?.running ?? []].flatMap((stepId) => {
      const at = this.abortRetryAt(stepId);
      return at <= now || this.aborting.has(stepId) ? [] : [[stepId, at] as const];
    });
    const waiting = new Map<string, unknown>([...this.aborting, ...retries]);
    let due = nextDue(state, this.index ?? undefined, waiting);
    for (const [, at] of retries) due = due === null ? at : Math.min(due, at);
    return due;
  }

  /**
   * After a step of the wall clock, the in-flight times move by the step, stored first (a driver
   * that takes over reads them), then in memory: a running attempt's timeout and executor fault, a
   * delayed retry, a failed abort's retry time and the list's pause keep what they had left. At the
   * first round, stored times that lie ahead of the clock are brought back to it (see boundedSteps).
   */
  private followClockStep(index: RunIndex): void {
    if (this.clockWatch === null) return;
    // Read together, or not looked at this time (a pause between the reads is no step).
    const clocks = readClocks(() => this.clock.now(), this.clockWatch.monotonicMs);
    if (clocks === null) return;
    const now = clocks.wall;
    const stepSec = this.clockWatch.watch.look(now, clocks.monoMs);
    if (stepSec === 0) return;
    const steps = [...index.running, ...index.delayed].map((id) => index.step(id));
    const writes = stepSec === null ? boundedSteps(steps, now) : shiftedSteps(steps, stepSec);
    const running: string[] = [];
    const delayed: string[] = [];
    for (const { stepId, attemptNo, status, change } of writes) {
      const transition = status === "RUNNING" ? STEP_TRANSITIONS.record : STEP_TRANSITIONS.redelay;
      if (!this.move({ stepId, attemptNo }, transition, status, change)) continue;
      (status === "RUNNING" ? running : delayed).push(stepId);
      const key = stepRunKey(this.runKey, stepId, attemptNo);
      // Only with its intent: a job start moved past an intent that stays (its job unknown through a
      // step forward) would be a start made after the step put an hour ahead, past the clock, and its
      // timeout would count from the intent, an hour before on the clock: aborted at once.
      if (status === "RUNNING" && stepSec !== null && change.startedAt !== undefined) {
        this.jobStartShift.set(key, (this.jobStartShift.get(key) ?? 0) + stepSec);
      }
    }
    if (stepSec === null) {
      if (writes.length > 0) this.options.onClockStep?.({ runKey: this.runKey, stepSec, running, delayed });
      return;
    }
    this.steppedSec += stepSec;
    for (const retry of this.abortRetry.values()) retry.at = shifted(retry.at, stepSec);
    this.listAgainAt = shifted(this.listAgainAt, stepSec);
    if (this.listFault !== null) {
      const { firstAt, lastAt } = this.listFault;
      this.listFault = { ...this.listFault, firstAt: shifted(firstAt, stepSec), lastAt: shifted(lastAt, stepSec) };
    }
    this.options.onClockStep?.({ runKey: this.runKey, stepSec, running, delayed });
  }

  /**
   * The time for a write of the driver that the next look at the clocks would move: a step since the
   * last look (during the executor call that failed, say) is followed first, so the time taken after
   * it is not moved by that step a second time (a fault's lastAt an hour on: its executor_unavailable_sec
   * an hour spent). Cheap when nothing stepped.
   */
  private lookedNow(): number {
    if (this.index !== null) this.followClockStep(this.index);
    return this.clock.now();
  }

  /**
   * The observed jobs, with the start of those that started before a clock step moved as their intent
   * was: by the steps this driver saw, or else by the difference from the start recorded with the
   * attempt's job, which a step moves (see shiftedSteps): a driver that takes over after a step did
   * not see it, and counted timeout_sec from the start as the executor reports it, on the clock
   * before the step (after an hour back, an hour more).
   */
  private withJobStartsShifted(index: RunIndex, observations: Observations): Observations {
    const result = new Map(observations);
    for (const [stepId, job] of observations) {
      if (!job || typeof job.started_at !== "number") continue;
      const step = index.step(stepId);
      const recorded = step.job;
      const shift = this.jobStartShift.get(stepRunKey(this.runKey, stepId, step.attemptNo)) ??
        (recorded?.job_id === job.job_id && typeof recorded.started_at === "number"
          ? recorded.started_at - job.started_at
          : 0);
      if (shift !== 0) result.set(stepId, { ...job, started_at: shifted(job.started_at, shift) });
    }
    return result;
  }

  /** When the failed abort of the step's current attempt may be tried again; -Infinity: no such wait. */
  private abortRetryAt(stepId: string): number {
    const key = stepRunKey(this.runKey, stepId, this.index!.step(stepId).attemptNo);
    return this.abortRetry.get(key)?.at ?? -Infinity;
  }

  /**
   * An executor's hint: what it names of this run is looked at next round, which it starts now.
   * Other runs' jobs (the built-in runner's jobs directory is shared by every run of its state file)
   * are no business of this driver's and do not wake it.
   */
  private hint(runKeys: readonly string[] | undefined): void {
    if (runKeys === undefined) {
      this.hintedAll = true;
    } else {
      const ours = runKeys.filter((key) => key.startsWith(`${this.runKey}:`));
      if (ours.length === 0) return;
      for (const key of ours) this.hinted.add(key);
    }
    this.bell.ring();
  }

  /**
   * One round, with the state file checked first. A round that a passing store fault (held write
   * lock, full disk) cut short is reported, waited out with backoff and retried: returns null then.
   * Whatever the round wrote before the fault is committed or not as a whole (each write is one
   * transaction), and the in-memory run is reloaded, so the retry decides from what is stored.
   */
  private async tickOrWait(
    backoff: { first: number; factor: number; ceiling: number },
    only: ReadonlySet<string> | null,
  ): Promise<TickResult | null> {
    this.options.checkStore?.();
    try {
      const result = await this.round(only);
      this.endStoreWait();
      return result;
    } catch (error) {
      if (!this.noteStoreWait(error, backoff)) throw error;
      // Waited out whatever rings meanwhile (a job that ended: the retried round polls every step
      // anyway), checking for a signal. Cut short by the bell, it waited for nothing: with jobs ending
      // during a held lock, lost rounds followed one another without a turn of the event loop that
      // would hear a signal, and a Ctrl-C took seconds (a round per job that ended) to be heard.
      await sleepUnless(this.storeWait!, () => this.options.interrupted?.() ?? false, SLICE_SECONDS);
      return null;
    }
  }

  /**
   * {@link advance} for a driver that advances once per refresh (`watch` taking a run over): a round
   * that a passing store fault (another process's write lock held past the busy timeout, a full disk)
   * cut short is reported as {@link drive} reports it, and null returned, to be tried again at the next
   * refresh, where the fault failed the command (exit 70) and left the run undriven.
   */
  async advanceOrWait(): Promise<TickResult | null> {
    try {
      const result = await this.advance();
      this.endStoreWait();
      return result;
    } catch (error) {
      if (!this.noteStoreWait(error, this.backoff())) throw error;
      return null;
    }
  }

  /** The rounds' pauses: from `first` (by default the executor's), doubling up to the poll interval. */
  private backoff(first: number = FIRST_PAUSE_SECONDS[this.options.executor.kind]) {
    return { first, factor: 2, ceiling: this.options.pollIntervalSec };
  }

  /**
   * Takes note of a round lost to a passing store fault: reported, shown as the run's error when that
   * write passes, the run reloaded by the next round, and the next backoff in `storeWait`. False when
   * `error` is no such fault.
   */
  private noteStoreWait(error: unknown, backoff: { first: number; factor: number; ceiling: number }): boolean {
    const reason = this.options.storeWaitReason?.(error) ?? null;
    if (reason === null) return false;
    this.stale = true;
    this.waitingSince ??= this.clock.now();
    this.storeWait = nextPause(backoff, this.storeWait ?? undefined);
    const message = `state database unusable, retrying: ${reason}`;
    this.options.onStoreWait?.({ runKey: this.runKey, reason, since: this.waitingSince, retryInSec: this.storeWait });
    this.showStoreWait(message);
    return true;
  }

  /** The wait is shown as the run's error while it lasts, when the store takes that one write. */
  private showStoreWait(message: string): void {
    this.storeNote = message;
    try {
      this.showNotes();
    } catch { /* the same fault: stderr says it */ }
  }

  /** After a round the store took: no wait to show (and a note a dead driver left is cleared). */
  private endStoreWait(): void {
    this.waitingSince = null;
    this.storeWait = null;
    this.storeNote = null;
    this.showNotes();
  }

  /** Writes the notes that hold now as the run's error (null when none does), unless it shows them already. */
  private showNotes(): void {
    const note = [this.storeNote, this.listNote].filter((n) => n !== null).join("; ") || null;
    if (note === this.shownNote) return;
    // Only on a RUNNING run: one no longer RUNNING (cancelled, ended) has an error of its own, which is
    // not a note to write over (and not written again each round).
    const moved = moveRun(this.options.runs, this.runKey, RUN_TRANSITIONS.note, "RUNNING", { error: note });
    this.shownNote = note;
    if (moved && this.state) this.state.error = note;
  }

  /**
   * Sleeps `seconds`, waking early when the executor hints that a job ended (then true), the run ends
   * (a cancel) or the driver is interrupted (both checked every slice).
   */
  private async pause(seconds: number): Promise<boolean> {
    const until = performance.now() + seconds * 1000;
    while (performance.now() < until) {
      if (await this.bell.sleep(Math.min(SLICE_SECONDS, (until - performance.now()) / 1000))) return true;
      if (this.options.interrupted?.()) return false;
      const status = this.options.runs.runStatus(this.runKey);
      if (status === undefined || isTerminalRun(status)) return false;
    }
    return this.bell.ringing;
  }

  /**
   * The latest job of every RUNNING step. A job that `start` just returned ended needs no call. An
   * external orchesjob costs a process per call, so one `status --running` covers all active jobs and
   * only steps missing from it are asked, a few at a time.
   */
  private async observe(run: RunState, index: RunIndex, only: ReadonlySet<string> | null): Promise<Observations> {
    const observations = new Map<string, Job | null>();
    const ask: { stepId: string; key: string }[] = [];
    for (const stepId of index.running) {
      if (this.aborting.has(stepId)) continue; // its abort records the job when it is done
      const step = index.step(stepId);
      const key = stepRunKey(run.runKey, stepId, step.attemptNo);
      const known = this.startedJobs.get(stepId);
      if (known && known.run_key === key && !isActiveJob(known.status)) observations.set(stepId, known);
      else if (only === null || only.has(key) || step.job === null || step.executorError !== null) {
        ask.push({ stepId, key });
      }
    }
    this.startedJobs.clear();
    const { executor } = this.options;
    const listDue = executor.kind === "orchesjob" && this.clock.now() >= this.listAgainAt;
    // Past its pause, a list this round does not need (a step or none to ask) has no failure to show:
    // its note stayed for as long as one step ran on (hours), saying the list would be asked again.
    if (listDue && ask.length <= 1 && this.listNote !== null) this.listNotNeeded();
    if (ask.length === 0) return observations;
    let active: Map<string, Job> | null = null;
    if (listDue && ask.length > 1) {
      try {
        active = new Map((await executor.running()).map((job) => [job.run_key ?? "", job]));
        this.listAnswered();
      } catch (error) {
        if (!(error instanceof ExecutorError)) throw error;
        active = null; // fall back to one call per step
        // A list call that hangs takes the call limit (60 s) each time: every round took that long.
        this.listAgainAt = this.lookedNow() + LIST_PAUSE_SECONDS;
        // Killed because this driver is stopping: nothing is wrong with the list.
        if (error.kind !== "stopped") this.listFailed(error);
      }
    }
    // The built-in runner answers at once (no process per call), one step after another: a status
    // that a held write lock failed then ends the round before the next is asked, rather than every
    // step's status waiting out its slice of the lock in the same turn (deaf to signals meanwhile).
    const concurrency = executor.kind === "builtin" ? 1 : START_CONCURRENCY;
    await forEachBounded(ask, concurrency, async ({ stepId, key }) => {
      collectGarbageIfGrownEvery();
      const step = index.step(stepId);
      const job = await this.jobOfAttempt(step, key, active);
      if (job === undefined) return;
      observations.set(stepId, job);
      // The executor answers again: the recorded error is over, unless it was a start that failed and
      // the answer is that there is still no job (the start is tried again, and counts toward the limit).
      const unresolvedStart = job === null && step.job === null;
      if (step.executorError !== null && !unresolvedStart) {
        this.record(stepId, { executorError: null }, step.attemptNo);
      }
    });
    return observations;
  }

  /**
   * The job of a RUNNING step's attempt: from the `status --running` list when it names it, else asked
   * by key (undefined: the call failed). The list names active jobs only: an entry that is not active,
   * or is another job than the one this attempt recorded, is no answer (a runner out of its contract).
   */
  private async jobOfAttempt(
    step: StepState,
    key: string,
    active: Map<string, Job> | null,
  ): Promise<Job | null | undefined> {
    const listed = active?.get(key);
    const trusted = listed !== undefined && isActiveJob(listed.status) &&
      (step.job === null || listed.job_id === step.job.job_id);
    const job = trusted ? listed : await this.statusOrFault(step, key);
    // An attempt with no job recorded (its start's answer lost, or its driver killed after the intent)
    // follows the job found under its key, unless orchesjob made that job before the intent: an earlier
    // run's with this run key (deleted by clean; an external orchesjob keeps its jobs), whose result it
    // would take as its own although its command never ran. The start is made instead (see startJob).
    if (job && step.job === null && madeBeforeIntent(job, step.startedAt)) return null;
    return job;
  }

  /**
   * A failed `status --running`: shown as the run's error until the list answers again, and reported
   * (once per failure: the list is not asked again for {@link LIST_PAUSE_SECONDS}). Nothing fails
   * because of it: the steps are asked by key meanwhile, and their own failures count as usual.
   */
  private listFailed(error: ExecutorError): void {
    // The time first: a step it follows moves the faults before (see lookedNow).
    const now = this.lookedNow();
    const fault = addFailedCall(this.listFault, error, now);
    this.listFault = fault;
    const calls = fault.count === 1 ? "1 failed call" : `${fault.count} failed calls`;
    this.listNote = `orchesjob status --running failing (${calls}): ${error.message}; ` +
      `running steps are asked by run key, the list again in ${LIST_PAUSE_SECONDS} s`;
    // Recorded before it is reported, as a step's executor_error is.
    this.showNotes();
    this.options.onListFault?.({ runKey: this.runKey, fault, pauseSec: LIST_PAUSE_SECONDS });
  }

  /**
   * The list is not asked (no more than one step to ask): its note goes, as nothing shows that it still
   * fails. Its failures still count, since it has not answered: a list that fails again says so.
   */
  private listNotNeeded(): void {
    this.listNote = null;
    this.showNotes();
  }

  /** The list answers: what showed its failure is over. */
  private listAnswered(): void {
    this.listFault = null;
    this.listNote = null;
    this.showNotes();
  }

  /**
   * orchesjob status of one step. A failed call is recorded on the step at once (executor_error) and
   * the step is left unobserved this round; decide fails the attempt once the executor has been
   * unusable for longer than the flow allows. An answer clears the recorded error.
   */
  private async statusOrFault(step: StepState, key: string): Promise<Job | null | undefined> {
    try {
      return await this.options.executor.status(key);
    } catch (error) {
      if (!(error instanceof ExecutorError)) throw error;
      // A call killed because this driver is stopping says nothing about the executor.
      if (error.kind !== "stopped") this.recordFault(step, error);
      return undefined;
    }
  }

  /** Adds a failed executor call to the step's executor_error (first time kept, count and last time updated). */
  private recordFault(step: StepState, error: ExecutorError, attemptNo = step.attemptNo): void {
    // The time first: a step it follows moves the fault recorded before (see lookedNow).
    const now = this.lookedNow();
    // A new attempt starts with no recorded error (its intent cleared it).
    const previous = attemptNo === step.attemptNo ? step.executorError : null;
    const fault = addFailedCall(previous, error, now);
    if (this.record(step.id, { executorError: fault }, attemptNo)) {
      this.options.onExecutorError?.({ runKey: this.runKey, stepId: step.id, attemptNo, fault });
    }
  }

  /** A guarded step write through the transition table, mirrored in memory when the store took it. */
  private move<T extends Transition<StepStatus>>(
    where: { stepId: string; attemptNo?: number },
    transition: T,
    to: T["to"][number],
    change: StepChange = {},
  ): boolean {
    const moved = moveStep(this.options.runs, { runKey: this.runKey, ...where }, transition, to, change);
    if (moved) this.index?.update(where.stepId, { ...change, status: to });
    else this.stale = true;
    return moved;
  }

  /**
   * Carries out one action (other than a start) through the transition table. Returns what it did for
   * the loop's pacing: `progressed` (decide again at once), `started` (poll soon), or `none`.
   */
  private async apply(run: RunState, index: RunIndex, action: Exclude<Action, { kind: "start" }>): Promise<Effect> {
    const { runs } = this.options;
    const now = this.clock.now();
    const runKey = this.runKey;
    const attempt = (stepId: string) => ({ stepId, attemptNo: index.step(stepId).attemptNo });
    switch (action.kind) {
      case "begin":
        if (moveRun(runs, runKey, RUN_TRANSITIONS.begin, "RUNNING")) run.status = "RUNNING";
        else this.stale = true;
        break;
      case "observe":
        this.record(action.stepId, { job: action.job });
        return "none";
      case "succeed":
        this.move(attempt(action.stepId), STEP_TRANSITIONS.succeed, "SUCCEEDED", {
          finishedAt: attemptEnd(index.step(action.stepId), action.job, now),
          job: action.job,
          // A start that failed on the way (orchesjob made the job, then exited non-zero) left its
          // message here; the job it made succeeded, so there is nothing wrong to show.
          error: null,
          executorError: null,
        });
        break;
      case "retry":
        await this.retry(index, action);
        break;
      case "fail":
        if (action.abort) await this.abortUnreachable(action.stepId, action.error);
        this.move(attempt(action.stepId), STEP_TRANSITIONS.fail, "FAILED", {
          finishedAt: attemptEnd(index.step(action.stepId), action.job, now),
          error: await this.withStderr(action.stepId, action.job, action.error),
          ...(action.job ? { job: action.job } : {}),
        });
        break;
      case "timeout":
        await this.timeout(action.stepId, action.job, action.error);
        break;
      case "skip":
        this.move({ stepId: action.stepId }, STEP_TRANSITIONS.skip, "SKIPPED", { finishedAt: now });
        break;
      case "finish":
        {
          // Never earlier than any step's end (those are the jobs' own times, all before now).
          const finishedAt = Math.max(now, ...run.steps.map((step) => step.finishedAt ?? 0));
          if (moveRun(runs, runKey, RUN_TRANSITIONS.finish, action.status, { finishedAt, error: null })) {
            Object.assign(run, { status: action.status, finishedAt, error: null });
          } else {
            this.stale = true;
          }
        }
        break;
    }
    return "progressed";
  }

  /** A failed attempt to be retried: PENDING, or DELAYED until the time decide drew. */
  private async retry(index: RunIndex, action: Extract<Action, { kind: "retry" }>): Promise<void> {
    if (action.abort) await this.abortUnreachable(action.stepId, action.error);
    if (action.job?.status === "ABORTED" && !await this.settleAborted(action.stepId, action.error, action.job)) return;
    const step = index.step(action.stepId);
    const error = await this.withStderr(action.stepId, action.job, action.error);
    // A time of the decision's clock: a step followed since (an abort beside the round looked, see
    // lookedNow) moves it as it moved the retry times stored then, as no later look will. The history
    // keeps the decision's times, as a step after this write leaves them.
    const moved = this.steppedSec - this.steppedAtDecide;
    const nextAttemptAt = action.nextAttemptAt === null ? null : shifted(action.nextAttemptAt, moved);
    // The drawn delay is stored in the same write as DELAYED, so a resume never draws again.
    this.move({ stepId: action.stepId, attemptNo: step.attemptNo }, STEP_TRANSITIONS.retry, action.next, {
      nextAttemptAt,
      error,
      retryHistory: [...step.retryHistory, {
        attempt_no: step.attemptNo,
        started_at: step.startedAt,
        // The time decide drew the delay at, not this write's: next_attempt_at = failed_at + delay_sec.
        failed_at: action.failedAt,
        error,
        delay_sec: action.delaySec,
        next_attempt_at: action.nextAttemptAt,
      }],
      ...(action.job ? { job: action.job } : {}),
    });
    stopPoint("driver:retry-recorded");
  }

  /**
   * Before a failed attempt whose job was ABORTED is retried, that abort is asked again, and the retry
   * waits for its answer. orchesjob records ABORTED before it signals, so the job reads as ended while
   * its process group may still live: the abort's sender (an orchesjob `abort` call, or the driver
   * that made it) killed during its grace leaves the command running, maybe ignoring the SIGTERM, with
   * nobody to send the SIGKILL. The retry then started attempt 2 beside attempt 1 (a status read of
   * the built-in runner in this process finishes such an abort; orchesjob's `status`, the `job`
   * wrapper's too, does not). The abort asked again finishes it: the built-in runner's waits for the
   * group to end, its SIGKILL at the first abort's deadline; orchesjob's answers with the job if it is
   * not running. Not asked when this driver's own abort of the attempt was answered with the job
   * ended. False: the call failed (recorded as a fault); the step stays RUNNING, and the next round
   * decides the retry again, which asks again.
   */
  private async settleAborted(stepId: string, reason: string, job: Job): Promise<boolean> {
    const { attemptNo } = this.index!.step(stepId);
    const key = stepRunKey(this.runKey, stepId, attemptNo);
    // This driver's own abort was answered with the job ended: it waited for the group already.
    if (this.abortsEnded.has(key)) return true;
    stopPoint("driver:before-settle-abort");
    try {
      await this.options.executor.abort(key, {
        graceSeconds: TIMEOUT_GRACE_SECONDS,
        reason,
      });
      this.settleFailedSince.delete(key);
      return true;
    } catch (error) {
      if (!(error instanceof ExecutorError)) throw error;
      if (error.kind === "stopped") return false;
      this.recordFault(this.index!.step(stepId), error, attemptNo);
      // An abort that keeps failing held the step RUNNING for ever (each round decided the retry
      // again, and the status read that saw ABORTED cleared the recorded fault). Past the flow's
      // executor_unavailable_sec the attempt fails for good instead: retrying it could start attempt
      // 2 beside an attempt 1 that nobody could confirm ended, so it is not retried (as a job orchesjob
      // forgot). Failing writes no start, so the ordering of intent and action is not touched.
      const now = this.clock.now();
      const since = this.settleFailedSince.get(key) ?? now;
      this.settleFailedSince.set(key, since);
      const limit = executorUnavailableLimit(this.state!.flow);
      if (now - since >= limit) {
        this.settleFailedSince.delete(key);
        this.move({ stepId, attemptNo }, STEP_TRANSITIONS.fail, "FAILED", {
          finishedAt: now,
          error: `${reason}; its abort could not be confirmed for ${Math.round(now - since)} s ` +
            `(limit ${limit} s): ${error.message}; not retried, as its command may still run ` +
            `(orchesjob run key ${key})`,
          job,
        });
      }
      return false;
    }
  }

  /** Records what happened to a RUNNING step's current attempt, without changing its status. */
  private record(stepId: string, change: StepChange, attemptNo?: number): boolean {
    const attempt = attemptNo ?? this.index!.step(stepId).attemptNo;
    return this.move({ stepId, attemptNo: attempt }, STEP_TRANSITIONS.record, "RUNNING", change);
  }

  /**
   * Starts ready steps, {@link START_CONCURRENCY} at a time (or as many as the executor takes: the
   * built-in runner launches the starts of one turn together), in batches of {@link START_BATCH}. Each
   * batch: every intent is committed first, then the batch's jobs start under one hold of the start
   * gate, and only while the run is live (a cancel commits under the same gate, so no job starts
   * once a cancel is committed, and a cancel waits for one batch at most).
   */
  private async startAll(starts: Extract<Action, { kind: "start" }>[]): Promise<Effect> {
    let progressed = false;
    let started = false;
    for (let offset = 0; offset < starts.length; offset += START_BATCH) {
      if (this.options.interrupted?.()) {
        this.stale = true;
        break;
      }
      const batch = starts.slice(offset, offset + START_BATCH).filter((start) => start.resume || this.intend(start));
      if (batch.some((start) => !start.resume)) crashPoint("driver:after-intent");
      const { runs, gate } = this.options;
      await gate.withStartGate(this.runKey, async () => {
        const status = runs.runStatus(this.runKey);
        if (status === undefined || isTerminalRun(status)) return;
        const concurrency = this.options.executor.startConcurrency ?? START_CONCURRENCY;
        await forEachBounded(batch, concurrency, async (start) => {
          collectGarbageIfGrownEvery();
          const effect = await this.startJob(start.stepId, start.attemptNo);
          if (effect === "progressed") progressed = true;
          else if (effect === "started") started = true;
        });
      });
    }
    // Only a job that started resets the poll's backoff: starts that all failed for a passing reason
    // are tried again after the usual, growing pause, not several times a second.
    return progressed ? "progressed" : started ? "started" : "none";
  }

  /**
   * Intent before action: the step is RUNNING on attempt n (and so on run key :n) before orchesjob
   * hears of it. After a crash from here on, the loop polls that key and starts it again only if
   * orchesjob never saw it; orchesjob's idempotency by run key does the rest.
   */
  private intend(start: { stepId: string; attemptNo: number }): boolean {
    // A step since the round's look (a batch's start calls before) is seen before the intent reads the
    // clock: seen at the next round, it moved this intent, made on the stepped clock, a second time.
    this.followClockStep(this.index!);
    return this.move({ stepId: start.stepId }, STEP_TRANSITIONS.start, "RUNNING", {
      attemptNo: start.attemptNo,
      startedAt: this.clock.now(),
      finishedAt: null,
      nextAttemptAt: null,
      error: null,
      job: null,
      executorError: null,
    });
  }

  /**
   * Asks the executor to start the attempt's job and records the answer. The built-in runner is not
   * made to wait for RUNNING: the next poll (or its change hint) reports that.
   */
  private async startJob(stepId: string, attemptNo: number): Promise<Effect> {
    let job = await this.callStart(stepId, attemptNo);
    if (typeof job === "string") return job;
    // orchesjob answered with a job of this key that ended before the attempt's intent, refusing a new
    // one (every start is strict): an earlier run's, under the same run key (deleted by clean; an
    // external orchesjob keeps its jobs). Taken as this attempt's, its result made the step succeed or
    // fail although its command never ran. A strict step's attempt fails, saying why, with no job; a
    // step that is not strict has the key unlocked and started again, which makes its one job.
    const intentAt = this.index!.step(stepId).startedAt;
    if (!isActiveJob(job.status) && madeBeforeIntent(job, intentAt)) {
      if (this.index!.definition(stepId).strict) {
        this.record(stepId, { error: `start refused: ${earlierRunJob(job)}` }, attemptNo);
        return "progressed";
      }
      job = await this.unlockAndStart(stepId, attemptNo, job);
      if (typeof job === "string") return job;
      if (!isActiveJob(job.status) && madeBeforeIntent(job, intentAt)) {
        this.record(stepId, { error: `start refused after an unlock: ${earlierRunJob(job)}` }, attemptNo);
        return "progressed";
      }
    }
    crashPoint("driver:before-job-recorded");
    if (!this.record(stepId, { job }, attemptNo)) return "started";
    this.startedJobs.set(stepId, job);
    // A job that had already ended (a quick command, or an earlier start of the same key) is decided
    // on at once: the next round takes it from here, without asking again.
    return isActiveJob(job.status) ? "started" : "progressed";
  }

  /**
   * One `start` of the attempt's key: its job, or (a failed call, recorded) the round's effect.
   *
   * Always `--strict`, whatever the step's `strict`: a start of a key whose job has ended then returns
   * that job instead of making another. Without it, a start repeated for the same attempt ran its
   * command twice: a call orphaned by its driver's death (calls run in their own process group, and
   * outlive it, e.g. waiting for orchesjob's write lock) reached orchesjob after the next driver had
   * made the attempt's job and that job had ended, and orchesjob made a second one. orchesjob's
   * idempotency by run key without --strict holds only while the job is active.
   */
  private async callStart(stepId: string, attemptNo: number): Promise<Job | Effect> {
    const definition = this.index!.definition(stepId);
    const runLaunch = this.state!.launch;
    const step = stepLaunch(this.state!, definition, attemptNo);
    // The run's directory and environment, not the driver's: a resume from elsewhere changes nothing.
    // A step's own cwd (made absolute when the run was created) wins over the run's directory.
    const cwd = step.cwd ?? runLaunch?.cwd;
    try {
      return await this.options.executor.start(stepRunKey(this.runKey, stepId, attemptNo), step.command, {
        strict: true,
        env: step.env,
        ...(definition.startTimeoutSec === null ? {} : { startTimeoutSec: definition.startTimeoutSec }),
        ...(runLaunch ? { baseEnv: runLaunch.env } : {}),
        ...(cwd === undefined ? {} : { cwd }),
        noWait: true,
      });
    } catch (error) {
      return this.callFailed(stepId, attemptNo, error);
    }
  }

  /**
   * A step that is not strict, whose key orchesjob has from an earlier run (`earlier`): the key is
   * unlocked, then started again (strict), which uses the unlock to make one new job. Intent before
   * action holds throughout: the attempt's intent is committed, so a driver killed between the two
   * calls leaves the next one to find the earlier job again (made before the intent) and start the key,
   * which uses the stored unlock. A repeated unlock replaces the first, and only a start that makes a
   * job uses one up, so however the calls repeat (orphaned ones included) there is one job. An unlock
   * that arrives after that job ended stays unused: nothing starts the key again for this attempt (its
   * job is found by status from then on), and it lapses after {@link UNLOCK_TTL_SECONDS}.
   */
  private async unlockAndStart(stepId: string, attemptNo: number, earlier: Job): Promise<Job | Effect> {
    const key = stepRunKey(this.runKey, stepId, attemptNo);
    const reason = `orchesjob-flow run ${this.runKey}, step ${stepId} attempt ${attemptNo} (not strict): ` +
      `job ${earlier.job_id} of this run key is an earlier run's`;
    try {
      // False (the key's job is active, or the key unknown): the start below needs no unlock.
      await this.options.executor.unlock(key, { reason, ttlSec: UNLOCK_TTL_SECONDS });
    } catch (error) {
      return this.callFailed(stepId, attemptNo, error);
    }
    // A crash here leaves the unlock stored and no job made: the next driver finds the earlier job
    // again (made before the intent, so not the attempt's) and starts the key, which uses this unlock
    // to make the attempt's one job (a start refused after all is unlocked and started again here).
    crashPoint("driver:after-unlock");
    return await this.callStart(stepId, attemptNo);
  }

  /** A `start` or `unlock` call that failed: recorded as a fault or as the attempt's error (see below). */
  private callFailed(stepId: string, attemptNo: number, error: unknown): Effect {
    if (!(error instanceof ExecutorError)) throw error;
    // Killed because this driver is stopping: whether the job started is for the next driver to
    // find out (the intent is committed), and nothing is wrong with the executor.
    if (error.kind === "stopped") return "none";
    // A timeout, an unreadable answer, a death by a signal, a general error (orchesjob's exit 1: a
    // locked or full database, a traceback, maybe after the job was created) or the job wrapper's
    // exit for a signal (130) leaves it unknown whether the job started: the next poll finds out, and
    // a start that keeps failing counts toward the flow's executor_unavailable_sec. A missing
    // binary, invalid arguments (exit 2) or a launch that failed mean it did not and will not:
    // record why (an attempt with an error and no job), and the next decide fails or retries it.
    if (
      error.kind === "timeout" || error.kind === "output" || error.kind === "signal" ||
      (error.kind === "exit" && (error.exitCode === JobExit.general || error.exitCode === JobExit.interrupted))
    ) {
      this.recordFault(this.index!.step(stepId), error, attemptNo);
      return "none";
    }
    this.record(stepId, { error: `start failed: ${error.message}` }, attemptNo);
    return "progressed";
  }

  /**
   * A failed attempt's error, followed by the last non-empty line its job wrote to stderr (at most 300
   * characters): the reason people look for is usually there.
   */
  private async withStderr(stepId: string, job: Job | null, error: string): Promise<string> {
    // After a `logs` call that did not answer in time, others are not asked for a while: each would
    // hold its round as long again (several failing steps, one after another).
    if (!job || performance.now() < this.stderrSkippedUntil) return error;
    let bytes: Uint8Array | null | typeof GAVE_UP;
    try {
      // Only a nicety: a `logs` call that hangs holds the round (every step of the run) for
      // STDERR_WAIT_SECONDS at most, not for the whole call limit.
      bytes = await within(
        this.options.executor.logs(
          { runKey: stepRunKey(this.runKey, stepId, this.index!.step(stepId).attemptNo) },
          "stderr",
          { last: 4096 },
        ),
        STDERR_WAIT_SECONDS,
        GAVE_UP,
      );
    } catch (failure) {
      if (failure instanceof ExecutorError) return error;
      throw failure;
    }
    if (bytes === GAVE_UP) {
      this.stderrSkippedUntil = performance.now() + STDERR_SKIP_SECONDS * 1000;
      return error;
    }
    if (!bytes) return error;
    const tail = new TextDecoder().decode(bytes);
    const line = tail.split("\n").map((l) => l.trim()).filter((l) => l !== "").at(-1);
    if (line === undefined || error.endsWith(line)) return error;
    return `${error}: ${line.length > 300 ? `${line.slice(0, 297)}...` : line}`;
  }

  /**
   * Before an attempt fails because the executor stopped answering: try to abort its job, which may
   * still be running. Best effort: the executor is most likely still unusable, and the attempt fails
   * either way (its error says why).
   */
  private async abortUnreachable(stepId: string, reason: string): Promise<void> {
    const { attemptNo } = this.index!.step(stepId);
    try {
      await this.options.executor.abort(stepRunKey(this.runKey, stepId, attemptNo), {
        graceSeconds: TIMEOUT_GRACE_SECONDS,
        reason,
      });
    } catch (error) {
      if (!(error instanceof ExecutorError)) throw error;
    }
  }

  /**
   * Records the timeout's reason with the job last seen, then aborts the job and records how it
   * ended. The next decide sees the ended job: a timed-out attempt counts as failed and is retried
   * if retries remain; a job that finished within its limit as the abort was sent succeeds.
   */
  private async timeout(stepId: string, seen: Job, error: string): Promise<boolean> {
    const { attemptNo } = this.index!.step(stepId);
    // The reason is recorded before the abort, so a crash between the two still reports the timeout.
    if (!this.record(stepId, { error, job: seen }, attemptNo)) return true;
    let job: Job | null;
    try {
      job = await this.options.executor.abort(stepRunKey(this.runKey, stepId, attemptNo), {
        graceSeconds: TIMEOUT_GRACE_SECONDS,
        reason: error,
      });
    } catch (abortError) {
      if (!(abortError instanceof ExecutorError)) throw abortError;
      // Killed because this driver is stopping: the next driver finds the step timed out again.
      if (abortError.kind !== "stopped") this.retryAbortLater(stepId, attemptNo, abortError);
      return false;
    }
    const key = stepRunKey(this.runKey, stepId, attemptNo);
    if (job === null || isActiveJob(job.status)) {
      // An answer that ended nothing: orchesjob does not know the key (the next status read tells
      // whether it forgot the job), or the job is still active. Tried again like a failed abort.
      const what = job === null ? `does not know run key ${key}` : `left job ${job.job_id} ${job.status}`;
      this.retryAbortLater(stepId, attemptNo, new ExecutorError(`orchesjob abort ${what}`, "output"));
      if (job !== null) this.record(stepId, { job }, attemptNo);
      return false;
    }
    this.abortRetry.delete(key);
    this.abortsEnded.add(key);
    // The timeout's reason stays even when the job ended SUCCEEDED: decide judges by the job's own
    // times whether it ended within its limit.
    this.record(stepId, { job }, attemptNo);
    return true;
  }

  /**
   * A timed-out step's abort did not end its job: it is tried again once its pause is over (the job
   * may still run, and the step cannot end before it). The failure shows on the step as an executor
   * error until a call about it succeeds.
   */
  private retryAbortLater(stepId: string, attemptNo: number, error: ExecutorError): void {
    const key = stepRunKey(this.runKey, stepId, attemptNo);
    const ceiling = Math.max(this.options.pollIntervalSec, ABORT_RETRY_FIRST_SECONDS);
    const pause = nextPause({ first: ABORT_RETRY_FIRST_SECONDS, factor: 2, ceiling }, this.abortRetry.get(key)?.pause);
    this.abortRetry.set(key, { at: this.lookedNow() + pause, pause });
    this.recordFault(this.index!.step(stepId), error, attemptNo);
  }
}

type Effect = "progressed" | "started" | "none";

/** Why a job that orchesjob gives for an attempt's key, made before the attempt, is not the attempt's. */
function earlierRunJob(job: Job): string {
  return `orchesjob has run key ${job.run_key} from before this attempt (job ${job.job_id}, ${job.status}, ` +
    `started ${job.started_at_iso}): an earlier run's, under the same run key (an external orchesjob keeps its ` +
    "jobs when clean deletes the run); with strict it does not run the key again; use a new run key, or " +
    `'orchesjob unlock --run-key ${job.run_key}'`;
}
