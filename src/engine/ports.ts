/**
 * What the engine needs from the outside, as interfaces it owns. src/store/ implements them (SQLite,
 * file locks); the CLI wires an implementation in. The engine never imports a store module.
 */
import type { NormalizedFlow, RetryRound, RunStatus, StepState, StepStatus, StoredRun } from "../domain/mod.ts";

/** The fields of a step a guarded write may set. */
export type StepChange = Partial<Omit<StepState, "id">>;

/** A run to create: its definition already normalized (the store keeps it as the data it is handed). */
export interface NewRun {
  runKey: string;
  definition: NormalizedFlow;
  definitionHash: string;
  flowFile: string | null;
  executor: StoredRun["executor"];
  /** Set for a deferred start: the run is created SCHEDULED and begins no earlier than this. */
  notBefore?: number | null;
  launch?: StoredRun["launch"];
}

/**
 * Durable runs. Every write is guarded by the state it expects, so two writers racing (a driver and
 * a cancel) cannot undo each other: a write that lost the race changes nothing and returns false.
 */
export interface RunRepository {
  /**
   * The run as one commit left it. Its definition is read in that same snapshot unless `known` says
   * the caller has the definition of its hash already (then it is read only if asked for).
   */
  load(runKey: string, known?: (definitionHash: string) => boolean): StoredRun | undefined;
  /** Creates the run (PENDING, every step PENDING) unless it exists; returns the stored run either way. */
  create(run: NewRun, now: number): StoredRun;
  runStatus(runKey: string): RunStatus | undefined;
  /**
   * Sets the run's status (and end time and error, when given) if it is in one of `from` and, when
   * `round` is given, still in that round (`currentRound`: each `retry` starts the next). The check
   * and the write are one statement, so a retry's reopening cannot come between them.
   */
  updateRun(
    runKey: string,
    guard: { from: readonly RunStatus[]; round?: number },
    change: { status: RunStatus; finishedAt?: number; error?: string | null },
  ): boolean;
  /**
   * Changes a step if it is in one of `from`, on attempt `attemptNo` when given, and its run is
   * still live (PENDING or RUNNING) unless `evenIfRunEnded`.
   */
  updateStep(
    runKey: string,
    stepId: string,
    guard: { from: readonly StepStatus[]; attemptNo?: number; evenIfRunEnded?: boolean },
    change: StepChange,
  ): boolean;
  /**
   * In one transaction: if the run is in `run.from` it becomes `run.to`, and each of its steps in
   * `steps.from` becomes `steps.to` with `reason` as its error. Returns whether the run changed.
   */
  cancel(
    runKey: string,
    transitions: {
      run: { from: readonly RunStatus[]; to: RunStatus };
      steps: { from: readonly StepStatus[]; to: StepStatus };
    },
    at: number,
    reason: string,
  ): boolean;
  /**
   * In one transaction: the run from `run.from` back to `run.to` with no end time or error, each of
   * `stepIds` from `steps.from` to `steps.to` on a new round of attempts (attempt numbers go on;
   * the retry budget restarts), and the round recorded. Null, changing nothing, when the run or a
   * step was not where its transition starts.
   */
  reopen(
    runKey: string,
    transitions: {
      run: { from: readonly RunStatus[]; to: RunStatus };
      steps: { from: readonly StepStatus[]; to: StepStatus };
    },
    stepIds: readonly string[],
    at: number,
    user: string | null,
  ): RetryRound | null;
}

/**
 * A run's start gate: held briefly around "check the run is live, then start a job" and around
 * "commit the cancel", so no job can start after a cancel is committed.
 */
export interface StartGate {
  withStartGate<T>(runKey: string, fn: () => Promise<T> | T): Promise<T>;
}

/** The driver lock: held by the one process driving a run, for as long as it drives. */
export interface DriverLock {
  /** The lock if nobody holds it; null when another process (or handle) drives the run. */
  tryDriverLock(runKey: string): Promise<Disposable | null>;
  /**
   * Tries for `seconds`: a holder may be only a passing `tick` or a `start -d` checking the run. Null
   * as soon as `stop` says so (a signal).
   */
  waitForDriverLock(runKey: string, seconds: number, stop?: () => boolean): Promise<Disposable | null>;
}
