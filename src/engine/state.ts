/** The state of a flow run and its steps, as the engine sees it. Pure data and helpers. */
import type { Job } from "../executor/job.ts";
import type { FlowDefinition, StepDefinition } from "../flow/model.ts";

export type RunStatus = "SCHEDULED" | "PENDING" | "RUNNING" | "SUCCEEDED" | "FAILED" | "CANCELLED";
export type StepStatus = "PENDING" | "DELAYED" | "RUNNING" | "SUCCEEDED" | "FAILED" | "SKIPPED" | "CANCELLED";

export const TERMINAL_RUN_STATUSES: readonly RunStatus[] = ["SUCCEEDED", "FAILED", "CANCELLED"];
export const TERMINAL_STEP_STATUSES: readonly StepStatus[] = ["SUCCEEDED", "FAILED", "SKIPPED", "CANCELLED"];

export function isTerminalRun(status: RunStatus): boolean {
  return TERMINAL_RUN_STATUSES.includes(status);
}

export function isTerminalStep(status: StepStatus): boolean {
  return TERMINAL_STEP_STATUSES.includes(status);
}

/** Times are Unix epoch seconds with millisecond precision. */
export interface StepState {
  id: string;
  status: StepStatus;
  /** Attempts started so far (the current one included). */
  attemptNo: number;
  nextAttemptAt: number | null;
  startedAt: number | null;
  finishedAt: number | null;
  error: string | null;
  /** The last job object orchesjob returned for the current attempt. */
  job: Job | null;
  /** One record per earlier attempt that failed and was retried, oldest first. */
  retryHistory: RetryRecord[];
}

/** A failed attempt and the delay drawn for its retry (stored, so a resume never draws again). */
export interface RetryRecord {
  attempt_no: number;
  started_at: number | null;
  failed_at: number;
  error: string;
  delay_sec: number;
  next_attempt_at: number | null;
}

export interface RunState {
  runKey: string;
  flow: FlowDefinition;
  status: RunStatus;
  startedAt: number;
  /** A deferred run (SCHEDULED) begins no earlier than this; null when it was not deferred. */
  notBefore: number | null;
  finishedAt: number | null;
  error: string | null;
  steps: StepState[];
}

/** orchesjob run key of a step's attempt: `<flow-run-key>:<step-id>:<attempt>`. */
export function stepRunKey(runKey: string, stepId: string, attemptNo: number): string {
  return `${runKey}:${stepId}:${Math.max(attemptNo, 1)}`;
}

export function stepDefinition(run: RunState, stepId: string): StepDefinition {
  const step = run.flow.steps.find((s) => s.id === stepId);
  if (!step) throw new Error(`step ${stepId} is not in flow ${run.flow.flowId}`);
  return step;
}

/** Exit code for a finished (or unfinished) run: 0 SUCCEEDED, 1 FAILED, 4 CANCELLED. */
export function runExitCode(status: RunStatus): number {
  return status === "SUCCEEDED" ? 0 : status === "CANCELLED" ? 4 : status === "FAILED" ? 1 : 0;
}

export function epochNow(): number {
  return Math.round(Date.now()) / 1000;
}
