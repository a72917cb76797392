/**
 * Every status a run, a step or a job can have, each set written once, with the predicates over them.
 * The strings are persisted (SQLite rows, orchesjob's JSON) and printed: never rename one, only add.
 */

/**
 * A flow run: created (PENDING), or created to begin at a later time (SCHEDULED, `start --not-before`),
 * being driven (RUNNING), or ended.
 */
export const RUN_STATUSES = ["SCHEDULED", "PENDING", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED"] as const;
export type RunStatus = typeof RUN_STATUSES[number];
/** A run that may still change: a driver may advance it and a cancel applies to it. */
export const LIVE_RUN_STATUSES = ["SCHEDULED", "PENDING", "RUNNING"] as const satisfies readonly RunStatus[];
export const TERMINAL_RUN_STATUSES = ["SUCCEEDED", "FAILED", "CANCELLED"] as const satisfies readonly RunStatus[];
export type TerminalRunStatus = typeof TERMINAL_RUN_STATUSES[number];

/** A step of a run. DELAYED waits for its retry time; RUNNING has an attempt at orchesjob. */
export const STEP_STATUSES = [
  "PENDING",
  "DELAYED",
  "RUNNING",
  "SUCCEEDED",
  "FAILED",
  "SKIPPED",
  "CANCELLED",
] as const;
export type StepStatus = typeof STEP_STATUSES[number];
/** Steps waiting for their next attempt: the ones a start or a cancel takes. */
export const WAITING_STEP_STATUSES = ["PENDING", "DELAYED"] as const satisfies readonly StepStatus[];
export const TERMINAL_STEP_STATUSES = [
  "SUCCEEDED",
  "FAILED",
  "SKIPPED",
  "CANCELLED",
] as const satisfies readonly StepStatus[];

/** An orchesjob job (either executor). FAILED, LOST, CANCELLED and ABORTED are failures to the flow. */
export const ACTIVE_JOB_STATUSES = ["STARTING", "RUNNING"] as const;
export const TERMINAL_JOB_STATUSES = ["SUCCEEDED", "FAILED", "LOST", "CANCELLED", "ABORTED"] as const;
export type JobStatus = typeof ACTIVE_JOB_STATUSES[number] | typeof TERMINAL_JOB_STATUSES[number];

function among<T extends string>(set: readonly T[], status: string): status is T {
  return (set as readonly string[]).includes(status);
}

export function isLiveRun(status: RunStatus): status is typeof LIVE_RUN_STATUSES[number] {
  return among(LIVE_RUN_STATUSES, status);
}

/** Takes any text, so that a status read from a damaged row can be asked too. */
export function isTerminalRun(status: string): status is TerminalRunStatus {
  return among(TERMINAL_RUN_STATUSES, status);
}

export function isTerminalStep(status: StepStatus): boolean {
  return among(TERMINAL_STEP_STATUSES, status);
}

export function isWaitingStep(status: StepStatus): boolean {
  return among(WAITING_STEP_STATUSES, status);
}

/** STARTING or RUNNING. Takes any string: job rows and foreign JSON are checked with it. */
export function isActiveJob(status: string): boolean {
  return among(ACTIVE_JOB_STATUSES, status);
}
