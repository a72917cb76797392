/**
 * The one table of status changes: for each action, the statuses it may leave and the statuses it
 * may enter. `apply`, the cancel and every guarded write go through it, so the SQL guards and the
 * engine's rules cannot drift apart.
 */
import {
  LIVE_RUN_STATUSES,
  type RunStatus,
  type StepStatus,
  TERMINAL_RUN_STATUSES,
  TERMINAL_STEP_STATUSES,
  WAITING_STEP_STATUSES,
} from "../domain/mod.ts";
import type { RunRepository, StepChange } from "./ports.ts";

export interface Transition<S extends string> {
  readonly from: readonly S[];
  readonly to: readonly S[];
}

export const STEP_TRANSITIONS = {
  /** Intent before action: a waiting step is RUNNING on its next attempt before orchesjob hears of it. */
  start: { from: WAITING_STEP_STATUSES, to: ["RUNNING"] },
  /** What happened to the attempt, status unchanged: a job observed, a timeout's reason, a refused start. */
  record: { from: ["RUNNING"], to: ["RUNNING"] },
  succeed: { from: ["RUNNING"], to: ["SUCCEEDED"] },
  /** A delayed retry's time moved with a step of the wall clock (see clock_step.ts). */
  redelay: { from: ["DELAYED"], to: ["DELAYED"] },
  /** A failed attempt with retries left: PENDING, or DELAYED until its retry time (decide chooses). */
  retry: { from: ["RUNNING"], to: WAITING_STEP_STATUSES },
  fail: { from: ["RUNNING"], to: ["FAILED"] },
  skip: { from: ["PENDING"], to: ["SKIPPED"] },
  /** A cancel ends waiting steps at once. */
  cancelWaiting: { from: WAITING_STEP_STATUSES, to: ["CANCELLED"] },
  /** ... and running ones once their job is aborted, or SUCCEEDED when it finished first. */
  cancelRunning: { from: ["RUNNING"], to: ["CANCELLED", "SUCCEEDED", "FAILED"] },
  /** A cancel repeated records what its abort of a job the first one could not reach found. */
  reabort: { from: ["CANCELLED"], to: ["CANCELLED"] },
  /** `retry` reopens an ended step for a new round of attempts. */
  reopen: { from: TERMINAL_STEP_STATUSES, to: ["PENDING"] },
} as const satisfies Record<string, Transition<StepStatus>>;

export const RUN_TRANSITIONS = {
  /** A created run begins; a SCHEDULED one once its not-before time has come. */
  begin: { from: ["SCHEDULED", "PENDING"], to: ["RUNNING"] },
  finish: { from: LIVE_RUN_STATUSES, to: ["SUCCEEDED", "FAILED"] },
  /**
   * A cancel that cancelled nothing (every step had ended, its running jobs finished before their
   * abort): the run ends as its steps say, as the driver would have ended it.
   */
  settleCancel: { from: ["CANCELLED"], to: ["SUCCEEDED", "FAILED"] },
  /** A cancelled run may be cancelled again (it aborts whatever the first cancel left RUNNING). */
  cancel: { from: [...LIVE_RUN_STATUSES, "CANCELLED"], to: ["CANCELLED"] },
  /**
   * A cancel's last write, once its aborted steps have ended: the run's end time. Only on the run
   * still CANCELLED: a live one is a retry's, reopened since (and guarded by round as well).
   */
  stampCancel: { from: ["CANCELLED"], to: ["CANCELLED"] },
  /** `retry` reopens an ended run (SCHEDULED while its time is to come); a driver then takes it as a start would. */
  reopen: { from: TERMINAL_RUN_STATUSES, to: ["PENDING", "SCHEDULED"] },
  /** A driving run's error shows a passing store fault (held write lock, full disk) while it lasts. */
  note: { from: ["RUNNING"], to: ["RUNNING"] },
} as const satisfies Record<string, Transition<RunStatus>>;

type Target<T extends Transition<string>> = T["to"][number];

/**
 * Moves a step along `transition` to `to` (which the table must allow), setting `change` too.
 * Returns false when the step was no longer where the transition starts (another writer won).
 */
export function moveStep<T extends Transition<StepStatus>>(
  runs: RunRepository,
  where: { runKey: string; stepId: string; attemptNo?: number; evenIfRunEnded?: boolean },
  transition: T,
  to: Target<T>,
  change: StepChange = {},
): boolean {
  if (!transition.to.includes(to)) throw new Error(`step transition to ${to} is not in the table`);
  const { runKey, stepId, ...guard } = where;
  return runs.updateStep(runKey, stepId, { from: transition.from, ...guard }, { ...change, status: to });
}

/**
 * Moves a run along `transition` to `to` (which the table must allow), only in `round` when given
 * (see RunRepository.updateRun). Returns false when the run was not where the transition starts.
 */
export function moveRun<T extends Transition<RunStatus>>(
  runs: RunRepository,
  runKey: string,
  transition: T,
  to: Target<T>,
  change: { finishedAt?: number; error?: string | null } = {},
  round?: number,
): boolean {
  if (!transition.to.includes(to)) throw new Error(`run transition to ${to} is not in the table`);
  return runs.updateRun(runKey, { from: transition.from, round }, { ...change, status: to });
}
