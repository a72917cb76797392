/**
 * The scheduler: what to do next, as a pure function of the run's recorded state, the latest
 * observations of running jobs, and the time. The loop applies the actions; nothing here does I/O.
 * This is the only place that decides whether a failed attempt is retried or fails the step, and
 * whether a retry waits (DELAYED) or not (PENDING): the driver only records what happened.
 */
import { evaluateWhen } from "../flow/mod.ts";
import {
  isActiveJob,
  isTerminalStep,
  type Job,
  type RunState,
  type RunStatus,
  type StepDefinition,
  stepDefinition,
  type StepState,
} from "../domain/mod.ts";

export type Action =
  /** The loop has begun: PENDING → RUNNING. */
  | { kind: "begin" }
  /** Start attempt `attemptNo` (a new one, or the same one again when its start never reached orchesjob). */
  | { kind: "start"; stepId: string; attemptNo: number; resume: boolean }
  /** A running job's latest status, with no change of step status. */
  | { kind: "observe"; stepId: string; job: Job }
  | { kind: "succeed"; stepId: string; job: Job }
  /** A failed attempt with retries left: `next` is DELAYED until `nextAttemptAt`, or PENDING (no delay). */
  | {
    kind: "retry";
    stepId: string;
    job: Job | null;
    error: string;
    next: "PENDING" | "DELAYED";
    nextAttemptAt: number | null;
  }
  | { kind: "fail"; stepId: string; job: Job | null; error: string }
  /**
   * The attempt ran past timeout_sec: record why, with the job last seen, and abort it. A timed-out
   * attempt counts as failed: once its job is seen ended, it is retried if retries remain.
   */
  | { kind: "timeout"; stepId: string; job: Job; error: string }
  | { kind: "skip"; stepId: string }
  | { kind: "finish"; status: Extract<RunStatus, "SUCCEEDED" | "FAILED"> };

/**
 * What one poll found for a RUNNING step: the job, or null when orchesjob has no job under the step's
 * run key (its start never happened). Steps that were not polled are absent from the map.
 */
export type Observations = ReadonlyMap<string, Job | null>;

/** The actions that move `run` forward at time `now` (epoch seconds). */
export function decide(run: RunState, observations: Observations, now: number): Action[] {
  if (run.status !== "PENDING" && run.status !== "RUNNING") return [];
  const actions: Action[] = run.status === "PENDING" ? [{ kind: "begin" }] : [];
  const byId = new Map(run.steps.map((step) => [step.id, step]));
  const succeeded = new Set(run.steps.filter((s) => s.status === "SUCCEEDED").map((s) => s.id));

  for (const step of run.steps) {
    const definition = stepDefinition(run, step.id);
    switch (step.status) {
      case "RUNNING": {
        const action = decideRunning(step, definition, observations, now);
        if (action) actions.push(action);
        break;
      }
      case "PENDING": {
        const waited = definition.waitsFor.map((id) => byId.get(id)!);
        if (!waited.every((dep) => isTerminalStep(dep.status))) break;
        const runs = definition.condition === null || evaluateWhen(definition.condition, succeeded);
        actions.push(
          runs ? { kind: "start", stepId: step.id, attemptNo: step.attemptNo + 1, resume: false } : {
            kind: "skip",
            stepId: step.id,
          },
        );
        break;
      }
      case "DELAYED":
        if (step.nextAttemptAt === null || now >= step.nextAttemptAt) {
          actions.push({ kind: "start", stepId: step.id, attemptNo: step.attemptNo + 1, resume: false });
        }
        break;
    }
  }

  if (run.steps.every((step) => isTerminalStep(step.status))) {
    actions.push({ kind: "finish", status: run.steps.some((s) => s.status === "FAILED") ? "FAILED" : "SUCCEEDED" });
  }
  return actions;
}

/**
 * A start that orchesjob refused (a missing binary, an error exit) is recorded as an error on an
 * attempt that has no job. A timeout records its error together with the job, so it never looks so.
 */
export function startRefused(step: StepState): boolean {
  return step.status === "RUNNING" && step.job === null && step.error !== null;
}

function decideRunning(
  step: StepState,
  definition: StepDefinition,
  observations: Observations,
  now: number,
): Action | null {
  const job = observations.get(step.id);
  if (!job) {
    if (startRefused(step)) return failedAttempt(step, definition, null, step.error!, now);
    // A job that started once (its start was confirmed and recorded) is never started again under
    // the same key: that it is unknown now means it was deleted (cleaned), and whether it ran is
    // unknown. Only a start that was never confirmed is started again.
    if (job === null && step.job !== null) return failedAttempt(step, definition, null, JOB_VANISHED, now);
    // orchesjob never heard of the run key: the start after the intent never reached it.
    if (job === null) return { kind: "start", stepId: step.id, attemptNo: step.attemptNo, resume: true };
    return null; // not observed this round
  }
  if (job.status === "SUCCEEDED") return { kind: "succeed", stepId: step.id, job };
  if (job.status === "LOST" && job.target_pid !== null) {
    // The command started and its result is unknown (it may have done its work): running it again
    // could do that work twice, so a lost attempt fails the step whatever its retries.
    return { kind: "fail", stepId: step.id, job, error: step.error ?? LOST_AFTER_START };
  }
  if (!isActiveJob(job.status)) {
    // A timeout recorded its reason before aborting; keep it rather than "ABORTED".
    const error = step.error ?? jobFailure(job);
    return failedAttempt(step, definition, job, error, now);
  }
  const timeout = definition.timeoutSec;
  if (timeout !== null && step.startedAt !== null && now - step.startedAt >= timeout) {
    return { kind: "timeout", stepId: step.id, job, error: `timed out after ${timeout} s` };
  }
  return sameJob(step.job, job) ? null : { kind: "observe", stepId: step.id, job };
}

/** The retry-or-fail decision after an attempt failed, and for a retry whether it waits. */
function failedAttempt(
  step: StepState,
  definition: StepDefinition,
  job: Job | null,
  error: string,
  now: number,
): Action {
  if (step.attemptNo <= definition.retries) {
    if (definition.retryDelaySec > 0) {
      return {
        kind: "retry",
        stepId: step.id,
        job,
        error,
        next: "DELAYED",
        nextAttemptAt: now + definition.retryDelaySec,
      };
    }
    return { kind: "retry", stepId: step.id, job, error, next: "PENDING", nextAttemptAt: null };
  }
  return { kind: "fail", stepId: step.id, job, error };
}

export const JOB_VANISHED = "job vanished from orchesjob (cleaned?)";

export const LOST_AFTER_START =
  "job LOST after its command started: its supervisor died without recording the result; the result is unknown, so the step is not retried";

function jobFailure(job: Job): string {
  return job.exit_code === null
    ? `orchesjob status ${job.status}`
    : `orchesjob status ${job.status} (exit code ${job.exit_code})`;
}

function sameJob(a: Job | null, b: Job): boolean {
  return a !== null && a.job_id === b.job_id && a.status === b.status && a.updated_at === b.updated_at &&
    a.target_pid === b.target_pid;
}

/** The earliest time something is due without any job changing (a delayed retry or a timeout), or null. */
export function nextDue(run: RunState): number | null {
  let due: number | null = null;
  const consider = (at: number) => {
    due = due === null ? at : Math.min(due, at);
  };
  for (const step of run.steps) {
    if (step.status === "DELAYED" && step.nextAttemptAt !== null) consider(step.nextAttemptAt);
    const timeout = stepDefinition(run, step.id).timeoutSec;
    if (step.status === "RUNNING" && timeout !== null && step.startedAt !== null) consider(step.startedAt + timeout);
  }
  return due;
}
