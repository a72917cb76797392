/** Cancelling a run: commit CANCELLED, then abort the jobs of its running steps. */
import {
  currentRound,
  isActiveJob,
  isLiveRun,
  isTerminalStep,
  type Job,
  madeBeforeIntent,
  type RunRecord,
  type RunState,
  stepDefinition,
  stepRunKey,
} from "../domain/mod.ts";
import { type Executor, ExecutorError } from "../executor/mod.ts";
import { type Clock, crashPoint, stopPoint, systemClock } from "../shared/mod.ts";
import type { RunRepository, StartGate } from "./ports.ts";
import { loadRun } from "./runs.ts";
import { moveRun, moveStep, RUN_TRANSITIONS, STEP_TRANSITIONS } from "./transitions.ts";
import { attemptEnd, endBeforeCancel } from "./decide.ts";

export const CANCEL_REASON = "flow cancelled";
/** How the error of a step whose cancel could not deliver its abort begins: a repeated cancel tries again. */
const UNDELIVERED = `${CANCEL_REASON}; abort failed: `;

/** What a cancel works with. */
interface CancelPorts {
  runs: RunRepository;
  gate: StartGate;
  /**
   * The executor of the aborts, or how to make the run's from its record as read once the cancel is
   * committed: the CLI's, so that a new binary recorded for the run (a `resume --orchesjob-bin`)
   * while the cancel waited for the start gate or the write lock is the one the aborts go through.
   */
  executor: Executor | ((record: RunRecord) => Executor);
  clock?: Clock;
  /** Told of each running step whose abort could not be delivered (it is CANCELLED all the same). */
  onAbortFailed?: (stepId: string, error: string) => void;
  /** Told once CANCELLED is committed, before the aborts: from then on only this call ends the jobs. */
  onCommitted?: () => void;
  /**
   * Told when a `retry` reopened the run after this cancel committed and its aborted steps ended (a
   * retry waits for that): the run is the retry's new round, which this cancel leaves alone.
   */
  onReopened?: (run: RunRecord) => void;
  /**
   * Makes each write after the commit: an abort (the built-in runner records it before it signals),
   * a step's end, the run's end time. The CLI's waits out another process's write lock in short tries,
   * where a signal is heard (a second cancel finishes what is left); by default it is just made. A try
   * that the lock stopped stored nothing, or, an abort, signalled nothing yet: it may be made again.
   */
  write?: <T>(work: () => Promise<T> | T) => Promise<T>;
}

/** What the abort of one step works with: the run's executor, made. */
type AbortPorts = CancelPorts & Required<Pick<CancelPorts, "write">> & { executor: Executor };

/**
 * Cancels `runKey` (a no-op for a run that already SUCCEEDED or FAILED) and returns its state, or null
 * when the run is gone. Safe to repeat: a second cancel aborts whatever steps a first one left
 * RUNNING, and tries again the aborts a first one could not deliver (the job may still run).
 */
export async function cancelRun(
  ports: CancelPorts,
  runKey: string,
  graceSeconds: number,
): Promise<RunState | null> {
  const { runs, gate } = ports;
  const clock = ports.clock ?? systemClock;
  const write = ports.write ?? (async (work) => await work());
  const transitions = {
    run: { from: RUN_TRANSITIONS.cancel.from, to: "CANCELLED" },
    steps: { from: STEP_TRANSITIONS.cancelWaiting.from, to: "CANCELLED" },
  } as const;
  // Committed under the start gate: once this commit is visible, no driver can start a job for the
  // run (the driver checks the run under the same gate before every start).
  const committed = await gate.withStartGate(
    runKey,
    () => runs.cancel(runKey, transitions, clock.now(), CANCEL_REASON),
  );
  crashPoint("cancel:after-commit");
  stopPoint("cancel:after-commit");
  ports.onCommitted?.();
  const record = loadRun(runs, runKey);
  if (record?.state.status !== "CANCELLED") {
    // Nothing is left to abort. Gone: a `clean` deleted the run, which had ended (a cancel repeated on
    // a CANCELLED run), after it looked for a cancel under way and before this one took its lock. Or
    // live again: only a retry takes a CANCELLED run back (possible at once when nothing was running).
    if (committed && record && isLiveRun(record.state.status)) ports.onReopened?.(record);
    return record?.state ?? null;
  }
  const run = record.state;
  // The round this cancel ended. A retry may reopen the run as soon as the last abort is recorded,
  // and its new driver starts steps at once: every later write of this cancel is for this round only.
  const round = currentRound(record.rounds);
  const aborted = run.steps.filter((step) => step.status === "RUNNING" || abortUndelivered(step));
  if (aborted.length > 0) {
    // Made only for steps to abort: made after the commit, an executor that cannot be made (the built-in
    // runner's jobs directory) failed a cancel that had nothing left to do, with the run CANCELLED.
    const executor = typeof ports.executor === "function" ? ports.executor(record) : ports.executor;
    await Promise.all(aborted.map((step) => abortStep({ ...ports, executor, clock, write }, run, step, graceSeconds)));
  }
  // The run ended when its last step did: running steps end after the cancel is committed.
  const ended = loadRun(runs, runKey)?.state;
  stopPoint("cancel:ended-read");
  if (!ended) return null;
  await recordEnd(runs, ended, round, write);
  const now = loadRun(runs, runKey);
  if (now && currentRound(now.rounds) !== round) ports.onReopened?.(now);
  return now?.state ?? null;
}

/**
 * The cancelled run's end: as its steps say when none was cancelled, else the time its last step
 * ended. Both writes are guarded by the run's `round` (the one the cancel ended), in the statement
 * itself: `run`, as read, may be stale already. Unguarded, the end time set a run a retry had just
 * reopened back to CANCELLED, with its new driver's steps RUNNING and nobody left to record or abort
 * their jobs.
 */
async function recordEnd(
  runs: RunRepository,
  run: RunState,
  round: number,
  write: Required<CancelPorts>["write"],
): Promise<void> {
  const last = Math.max(...run.steps.map((step) => step.finishedAt ?? 0));
  const settled = settledOutcome(run);
  if (settled !== null) {
    // Nothing was cancelled (say, a driver died and its last job finished before this cancel): the
    // run is not CANCELLED, which `retry` would have nothing to reopen in, but ends as its steps say.
    await write(() =>
      moveRun(runs, run.runKey, RUN_TRANSITIONS.settleCancel, settled, {
        finishedAt: Math.max(last, run.startedAt),
        error: null,
      }, round)
    );
  } else if (run.finishedAt !== null && last > run.finishedAt) {
    await write(() => moveRun(runs, run.runKey, RUN_TRANSITIONS.stampCancel, "CANCELLED", { finishedAt: last }, round));
  }
}

/** SUCCEEDED or FAILED when every step of the cancelled run ended otherwise than CANCELLED; else null. */
export function settledOutcome(run: RunState): "SUCCEEDED" | "FAILED" | null {
  if (run.status !== "CANCELLED" || run.steps.length === 0) return null;
  if (run.steps.some((step) => !isTerminalStep(step.status) || step.status === "CANCELLED")) return null;
  return run.steps.some((step) => step.status === "FAILED") ? "FAILED" : "SUCCEEDED";
}

/** A step a cancel ended without delivering its abort: its job may still be running. */
export function abortUndelivered(step: RunState["steps"][number]): boolean {
  return step.status === "CANCELLED" && (step.error?.startsWith(UNDELIVERED) ?? false);
}

/**
 * Aborts the job of one RUNNING step of the cancelled run (or of one whose abort a cancel could not
 * deliver) and ends the step with what the abort says.
 */
async function abortStep(
  ports: AbortPorts & { clock: Clock },
  run: RunState,
  step: RunState["steps"][number],
  graceSeconds: number,
): Promise<void> {
  const { runs, clock, write } = ports;
  const runKey = run.runKey;
  const key = stepRunKey(runKey, step.id, step.attemptNo);
  const where = { runKey, stepId: step.id, attemptNo: step.attemptNo, evenIfRunEnded: true };
  const again = step.status === "CANCELLED";
  const transition = again ? STEP_TRANSITIONS.reabort : STEP_TRANSITIONS.cancelRunning;
  const { job, failure } = await abortJobOf(ports, key, step, graceSeconds);
  if (failure !== null) {
    // The cancel completes even when the abort did not get through: the step is CANCELLED and says
    // that its job may still be running, under which run key, so the operator can stop it.
    const message = `${UNDELIVERED}${failure}; the job may still be running (orchesjob run key ${key})`;
    await write(() =>
      moveStep(runs, where, transition, "CANCELLED", {
        finishedAt: again ? step.finishedAt : clock.now(),
        error: message,
      })
    );
    ports.onAbortFailed?.(step.id, message);
    return;
  }
  if (again) {
    // The step stays CANCELLED (the run was cancelled while it ran), now with its job's end known.
    await write(() => moveStep(runs, where, transition, "CANCELLED", { error: CANCEL_REASON, job: job ?? step.job }));
    return;
  }
  const end = clock.now();
  // A job that ended on its own before the abort reached it ends the step as it would have without
  // the cancel (SUCCEEDED, or FAILED with no retry left); one the abort ended, or that was due a
  // retry, is CANCELLED.
  const own = job === null ? null : endBeforeCancel(step, stepDefinition(run, step.id), job, end);
  await write(() =>
    moveStep(runs, where, transition, own?.status ?? "CANCELLED", {
      finishedAt: attemptEnd(step, job, end),
      error: own === null ? CANCEL_REASON : own.error,
      job: job ?? step.job,
    })
  );
}

/**
 * The command of the job a cancel makes under the key of an attempt whose start was never answered:
 * it does nothing (`true` ignores its arguments, which say in orchesjob's job list why it is there).
 */
const FENCE_COMMAND = ["true", "orchesjob-flow: cancelled before its start reached orchesjob"] as const;

/**
 * An attempt with its intent committed, no job seen and none under its key: its start may still be on
 * its way to orchesjob, in a call orphaned by its killed driver (calls outlive their caller, see
 * Executor.startsOutliveCaller). Once this cancel ended, nothing would stop that call: its command
 * ran for a step recorded CANCELLED with no job, and a `retry` then ran the step again as attempt 2.
 * So the cancel takes the key first, before it says the attempt made nothing: a strict start of
 * {@link FENCE_COMMAND}. Every start is strict, so a late call then gets that ended job back and runs
 * nothing. orchesjob makes one job per key, whichever call comes first: if the late call came first,
 * the answer is its job (made after the intent), which is aborted like any other and returned. Null:
 * the attempt made nothing (the fence's own job, or an earlier run's job under the key, which a late
 * strict call gets back as well).
 */
async function fenceUnansweredStart(
  ports: AbortPorts,
  key: string,
  step: RunState["steps"][number],
  graceSeconds: number,
): Promise<Job | null> {
  const { executor, write } = ports;
  const fence = await write(() => executor.start(key, FENCE_COMMAND, { strict: true, noWait: true }));
  if (fence.accepted || madeBeforeIntent(fence, step.startedAt)) return null;
  return await write(() => executor.abort(key, { graceSeconds, reason: CANCEL_REASON }));
}

/** The abort of one step's job: what it says of the job, or why it did not get through (`failure`). */
async function abortJobOf(
  ports: AbortPorts,
  key: string,
  step: RunState["steps"][number],
  graceSeconds: number,
): Promise<{ job: Job | null; failure: string | null }> {
  const { executor, write } = ports;
  let job: Job | null;
  let failure: string | null = null;
  try {
    // Made again whole when another process's write lock stops it: the built-in runner records the
    // abort before it signals, and a try that the lock stopped has signalled nothing.
    job = await write(() => executor.abort(key, { graceSeconds, reason: CANCEL_REASON }));
    // A job of this key that orchesjob made before the attempt's intent, for an attempt with no job
    // recorded, is an earlier run's under the same run key (deleted by clean; an external orchesjob
    // keeps its jobs): its end is not this step's, which it made SUCCEEDED although its command never
    // ran. This attempt's start never reached orchesjob: nothing of it to abort.
    if (job !== null && step.job === null && madeBeforeIntent(job, step.startedAt)) job = null;
    if (job === null && step.job === null && executor.startsOutliveCaller) {
      job = await fenceUnansweredStart(ports, key, step, graceSeconds);
    }
    // "No such job" for a job this run has seen does not mean nothing runs: orchesjob lost or cleaned
    // its record, or this is another orchesjob. Only a start never answered (no job seen) may have
    // made nothing.
    if (job === null && step.job !== null) failure = `orchesjob no longer knows run key ${key}`;
    // An answer that leaves the job active ended nothing (a runner out of its contract).
    if (job !== null && isActiveJob(job.status)) failure = `orchesjob abort left job ${job.job_id} ${job.status}`;
  } catch (error) {
    if (!(error instanceof ExecutorError)) throw error;
    job = null;
    failure = error.message;
  }
  return { job, failure };
}
