/**
 * The scheduler: what to do next, as a pure function of the run's recorded state, the latest
 * observations of running jobs, and the time. The loop applies the actions; nothing here does I/O.
 * This is the only place that decides whether a failed attempt is retried or fails the step, and
 * whether a retry waits (DELAYED) or not (PENDING): the driver only records what happened.
 */
import { evaluateWhen } from "../flow/mod.ts";
import { retryDelay } from "./retry_delay.ts";
import {
  executorUnavailableLimit,
  isActiveJob,
  isTerminalStep,
  type Job,
  type RunState,
  type RunStatus,
  type StepDefinition,
  type StepState,
} from "../domain/mod.ts";
import { RunIndex } from "./run_index.ts";

export type Action =
  /** The loop has begun: PENDING (or a SCHEDULED run at its time) → RUNNING. */
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
    /** The delay drawn for this retry (0 for none); stored with the attempt, so a resume never draws again. */
    delaySec: number;
    /** When the failure was decided: `nextAttemptAt` is this plus `delaySec` (to the millisecond). */
    failedAt: number;
    /** The attempt's job may still run (the executor stopped answering): abort it first, best effort. */
    abort?: true;
  }
  | { kind: "fail"; stepId: string; job: Job | null; error: string; abort?: true }
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

/** What a round's decisions depend on besides the run: the time, the jitter draw and the executor limit. */
interface Round {
  now: number;
  /** Values in [0, 1): draws retry jitter; tests pass a fixed one. */
  random: () => number;
  unavailableLimit: number;
}

/**
 * The actions that move `run` forward at time `now` (epoch seconds). `index` (the driver's, kept up
 * to date with its writes) limits the work to the steps that can have changed; without it every
 * step is looked at. `random` (values in [0, 1)) draws retry jitter; tests pass a fixed one.
 */
export function decide(
  run: RunState,
  observations: Observations,
  now: number,
  index = new RunIndex(run),
  random: () => number = Math.random,
): Action[] {
  if (run.status !== "SCHEDULED" && run.status !== "PENDING" && run.status !== "RUNNING") return [];
  // A deferred run does nothing before its time; then it begins like a created one.
  if (run.status === "SCHEDULED" && run.notBefore !== null && now < run.notBefore) {
    index.keepAll();
    return [];
  }
  const actions: Action[] = run.status === "RUNNING" ? [] : [{ kind: "begin" }];
  const round: Round = {
    now,
    random,
    unavailableLimit: executorUnavailableLimit(run.flow),
  };
  // Under max_parallel, ready steps are collected and granted slots in file order after the loop.
  const ready: StepState[] = [];
  const onReady = (step: StepState) => {
    if (run.flow.maxParallel === null) actions.push(startOf(step));
    else ready.push(step);
  };

  for (const step of index.candidates()) {
    const definition = index.definition(step.id);
    switch (step.status) {
      case "RUNNING": {
        const action = decideRunning(step, definition, observations, round);
        if (action) actions.push(action);
        break;
      }
      case "PENDING": {
        if (!definition.waitsFor.every((id) => isTerminalStep(index.step(id).status))) break;
        const runs = definition.condition === null || evaluateWhen(definition.condition, index.succeeded);
        if (runs) onReady(step);
        else actions.push({ kind: "skip", stepId: step.id });
        break;
      }
      case "DELAYED":
        if (step.nextAttemptAt === null || now >= step.nextAttemptAt) onReady(step);
        break;
    }
  }
  if (ready.length > 0) actions.push(...grantStarts(run.flow.maxParallel!, index, ready));

  if (index.allEnded) actions.push({ kind: "finish", status: index.anyFailed ? "FAILED" : "SUCCEEDED" });
  return actions;
}

function startOf(step: StepState): Action {
  return { kind: "start", stepId: step.id, attemptNo: step.attemptNo + 1, resume: false };
}

/**
 * Starts for the ready steps under `max_parallel`: as many as there are free slots, in file order; a
 * ready step left waiting is held by the index, so the next round looks at it again.
 */
function grantStarts(limit: number, index: RunIndex, ready: StepState[]): Action[] {
  let slots = limit - index.running.size;
  ready.sort((a, b) => index.position(a.id) - index.position(b.id));
  const starts: Action[] = [];
  for (const step of ready) {
    if (slots <= 0) {
      index.hold(step.id);
      continue;
    }
    slots--;
    starts.push(startOf(step));
  }
  return starts;
}

/**
 * A start that orchesjob refused (a missing binary, invalid arguments, a launch that failed) is
 * recorded as an error on an attempt that has no job. A timeout records its error together with the job, so it never looks so.
 */
export function startRefused(step: StepState): boolean {
  return step.status === "RUNNING" && step.job === null && step.error !== null;
}

function decideRunning(
  step: StepState,
  definition: StepDefinition,
  observations: Observations,
  round: Round,
): Action | null {
  const { now, unavailableLimit } = round;
  const observed = observations.get(step.id);
  // A job recorded as ended (a timeout's abort records what it ended) is decided on without a status
  // call (while status calls fail, the step would otherwise wait for one), and is final: a job
  // cleaned since then is not taken for a forgotten one. Otherwise the observation as it is: null (no
  // such job) and undefined (not observed this round) mean different things below.
  const recordedEnd = step.job !== null && !isActiveJob(step.job.status) ? step.job : undefined;
  const job = observed ?? recordedEnd ?? observed;
  if (!job) {
    if (startRefused(step)) return failedAttempt(step, definition, null, step.error!, round);
    if (job === null && step.job !== null) {
      // orchesjob knew this run key and has forgotten it (its job was cleaned, its state directory
      // replaced, or this is another orchesjob): starting it again could run the step twice, and so
      // could a retry under a new key, beside a command that may still run and that no abort can
      // reach by the forgotten key. As a LOST job, the step fails whatever its retries.
      const error = `orchesjob no longer knows run key ${step.job.run_key ?? step.job.job_id} ` +
        `(job ${step.job.job_id}, last seen ${step.job.status}); it may have been cleaned while running; ` +
        "not retried, as its command may still run";
      return { kind: "fail", stepId: step.id, job: null, error };
    }
    const fault = step.executorError;
    // Unobserved, the time since the first failed call counts. When orchesjob answered that there is
    // no job (a start failed, and is to be tried again), only the span over which calls failed does:
    // time no driver ran (a resume after an outage) is not time orchesjob was unusable.
    const unusable = fault === null ? 0 : (job === null ? fault.lastAt : now) - fault.firstAt;
    if (fault !== null && unusable >= unavailableLimit) {
      const error = `orchesjob unusable for ${Math.round(unusable)} s ` +
        `(${fault.count} failed calls; limit ${unavailableLimit} s): ${fault.message}`;
      return { ...failedAttempt(step, definition, step.job, error, round), abort: true };
    }
    // orchesjob never heard of the run key: the start after the intent never reached it, or failed
    // before the job existed (a start that failed for a passing reason is a fault, bounded above).
    if (job === null) return { kind: "start", stepId: step.id, attemptNo: step.attemptNo, resume: true };
    // Not observed this round (its status call failed): the time limit holds all the same, on the job
    // last seen; the abort goes by run key and needs no status.
    return step.job === null ? null : timeoutOf(step, definition, step.job, now);
  }
  if (!isActiveJob(job.status)) return decideEnded(step, definition, job, round);
  return timeoutOf(step, definition, job, now) ??
    (sameJob(step.job, job) ? null : { kind: "observe", stepId: step.id, job });
}

/**
 * How a cancel ends a RUNNING step whose job its abort found already ended on its own (not ABORTED by
 * it): as a driver that had seen the end first would have. SUCCEEDED, or FAILED (with the attempt's
 * error) when the attempt may not be retried; null when a retry was due, which the cancel forgoes
 * (the step is CANCELLED). Without this, a job that failed for good while no driver looked was
 * recorded as cancelled, and a cancelled run whose last job had failed ended CANCELLED, not FAILED.
 */
export function endBeforeCancel(
  step: StepState,
  definition: StepDefinition,
  job: Job,
  now: number,
): { status: "SUCCEEDED"; error: null } | { status: "FAILED"; error: string } | null {
  if (isActiveJob(job.status) || job.status === "ABORTED") return null;
  const action = decideEnded(step, definition, job, { now, random: () => 0, unavailableLimit: Infinity });
  if (action.kind === "succeed") return { status: "SUCCEEDED", error: null };
  return action.kind === "fail" ? { status: "FAILED", error: action.error } : null;
}

/** The decision on an attempt whose job (`job`) ended. */
function decideEnded(step: StepState, definition: StepDefinition, job: Job, round: Round): Action {
  if (job.status === "SUCCEEDED") {
    const late = ranPastTimeout(step, definition, job);
    return late === null
      ? { kind: "succeed", stepId: step.id, job }
      : failedAttempt(step, definition, job, late, round);
  }
  if (job.status === "LOST" && job.target_pid !== null) {
    // The command started and its result is unknown (it may have done its work): running it again
    // could do that work twice, so a lost attempt fails the step whatever its retries.
    return { kind: "fail", stepId: step.id, job, error: step.error ?? LOST_AFTER_START };
  }
  // A timeout recorded its reason before aborting; keep it rather than "ABORTED".
  return failedAttempt(step, definition, job, step.error ?? jobFailure(job), round);
}

/** The timeout of an attempt whose job (`job`, active) has run past timeout_sec at `now`, else null. */
function timeoutOf(
  step: StepState,
  definition: StepDefinition,
  job: Job,
  now: number,
): Extract<Action, { kind: "timeout" }> | null {
  const timeout = definition.timeoutSec;
  const began = timedFrom(step, job, now);
  if (timeout === null || began === null || now - began < timeout) return null;
  return { kind: "timeout", stepId: step.id, job, error: timeoutError(timeout) };
}

function timeoutError(timeoutSec: number): string {
  return `timed out after ${timeoutSec} s`;
}

/**
 * Why a job that ended SUCCEEDED after its attempt timed out counts as failed all the same, or null
 * when it does not. That happens when the timeout's abort did not reach the job (orchesjob refused or
 * hung) and the job ran on. The attempt failed its limit as an aborted one does, so it is retried or
 * fails the same way. A job whose own times say it ended within the limit (it ended as the abort was
 * sent) succeeds, and so does one that reports no times. orchesjob's times are whole seconds, so the
 * doubt goes to the job.
 */
function ranPastTimeout(step: StepState, definition: StepDefinition, job: Job): string | null {
  const timeout = definition.timeoutSec;
  if (timeout === null || step.error !== timeoutError(timeout)) return null;
  if (typeof job.started_at !== "number" || typeof job.finished_at !== "number") return null;
  const ran = job.finished_at - job.started_at;
  if (ran <= timeout) return null;
  return `${timeoutError(timeout)}; its abort did not end the job, which ran on for ${ran} s and ended SUCCEEDED`;
}

/**
 * The retry-or-fail decision after an attempt failed, and for a retry how long it waits (drawn here
 * once, then stored with the attempt).
 */
function failedAttempt(
  step: StepState,
  definition: StepDefinition,
  job: Job | null,
  error: string,
  round: Round,
): Extract<Action, { kind: "retry" | "fail" }> {
  const codes = definition.retryOnExitCodes;
  const exitCode = job?.status === "FAILED" ? job.exit_code : null;
  if (codes !== null && exitCode !== null && !codes.includes(exitCode)) {
    return { kind: "fail", stepId: step.id, job, error: `${error}; not retried: exit code not in retry_on_exit_codes` };
  }
  // The budget counts the attempts of this round only: a retried run gets its retries afresh, and
  // its backoff starts again from the first delay.
  const attemptOfRound = step.attemptNo - step.attemptBase;
  if (attemptOfRound > definition.retries) return { kind: "fail", stepId: step.id, job, error };
  const policy = {
    backoff: definition.retryBackoff,
    delaySec: definition.retryDelaySec,
    maxDelaySec: definition.retryMaxDelaySec,
    jitter: definition.retryJitter,
  };
  const delaySec = retryDelay(policy, attemptOfRound, round.random());
  const retry = { kind: "retry", stepId: step.id, job, error, failedAt: round.now } as const;
  if (delaySec > 0) {
    const nextAttemptAt = Math.round((round.now + delaySec) * 1000) / 1000;
    return { ...retry, next: "DELAYED", nextAttemptAt, delaySec };
  }
  return { ...retry, next: "PENDING", nextAttemptAt: null, delaySec: 0 };
}

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

/**
 * The earliest time something is due without any job changing (a deferred run's start, a delayed
 * retry or a timeout), or null. Steps in `waiting` (timed out, their abort under way) are due when
 * that abort ends, not at any time.
 */
export function nextDue(
  run: RunState,
  index = new RunIndex(run),
  waiting: ReadonlyMap<string, unknown> = new Map(),
): number | null {
  let due: number | null = null;
  const consider = (at: number) => {
    due = due === null ? at : Math.min(due, at);
  };
  if (run.status === "SCHEDULED" && run.notBefore !== null) consider(run.notBefore);
  // With every max_parallel slot taken, a delayed retry cannot start at its time: it waits for a
  // running step to end, and that end is a change the driver wakes for. Its time, once passed, made
  // every round due at once: the driver spun on a core until a slot freed.
  const slotFree = run.flow.maxParallel === null || index.running.size < run.flow.maxParallel;
  for (const id of slotFree ? index.delayed : []) {
    const step = index.step(id);
    if (step.nextAttemptAt !== null) consider(step.nextAttemptAt);
  }
  for (const id of index.running) {
    if (waiting.has(id)) continue;
    const step = index.step(id);
    const timeout = index.definition(id).timeoutSec;
    // Only an attempt with a job seen can time out (see decideRunning): a start never answered is
    // tried again, bounded by executor_unavailable_sec below, not timed.
    const began = step.job === null ? null : timedFrom(step, step.job);
    if (timeout !== null && began !== null) consider(began + timeout);
    if (step.executorError !== null) {
      consider(step.executorError.firstAt + executorUnavailableLimit(run.flow));
    }
  }
  return due;
}

/**
 * Where an attempt's `timeout_sec` counts from: its job's own start when that came later than the
 * attempt's intent (a driver killed between the two and resumed later: the outage is no time the
 * command ran), else the intent. Null before the attempt began. A job start after `now` cannot be
 * (a runner's clock far ahead, or milliseconds where seconds belong): it would put the limit off for
 * ever, so the intent counts then.
 */
function timedFrom(step: StepState, job: Job | null, now = Infinity): number | null {
  if (step.startedAt === null) return null;
  const jobStart = job !== null && typeof job.started_at === "number" && job.started_at <= now ? job.started_at : null;
  return jobStart === null ? step.startedAt : Math.max(step.startedAt, jobStart);
}

/**
 * When an attempt ended, as the job itself reports it, not when the driver noticed (which may be a
 * poll interval, or a driver outage, later). orchesjob's times are whole seconds, so the job's own
 * duration is laid from the attempt's start (or the job's, if it started later, as after a resumed
 * start). Never before the attempt began and never after `now`; `now` when the job reports no end.
 */
export function attemptEnd(step: StepState, job: Job | null, now: number): number {
  if (job === null || job.finished_at === null || typeof job.started_at !== "number") return now;
  const began = Math.max(step.startedAt ?? job.started_at, job.started_at);
  const duration = Math.max(0, job.finished_at - job.started_at);
  return Math.min(now, began + duration);
}
