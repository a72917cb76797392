/** Cancelling a run: commit CANCELLED, then abort the jobs of its running steps. */
import { type RunState, stepRunKey } from "../domain/mod.ts";
import type { Executor } from "../executor/mod.ts";
import { type Clock, crashPoint, systemClock } from "../shared/mod.ts";
import type { RunRepository, StartGate } from "./ports.ts";
import { loadRun } from "./runs.ts";
import { moveStep, RUN_TRANSITIONS, STEP_TRANSITIONS } from "./transitions.ts";

export const CANCEL_REASON = "flow cancelled";

/**
 * Cancels `runKey` (a no-op for a run that already SUCCEEDED or FAILED) and returns its state.
 * Safe to repeat: a second cancel aborts whatever steps a first one left RUNNING.
 */
export async function cancelRun(
  ports: { runs: RunRepository; gate: StartGate; executor: Executor; clock?: Clock },
  runKey: string,
  graceSeconds: number,
): Promise<RunState> {
  const { runs, gate, executor } = ports;
  const clock = ports.clock ?? systemClock;
  const transitions = {
    run: { from: RUN_TRANSITIONS.cancel.from, to: "CANCELLED" },
    steps: { from: STEP_TRANSITIONS.cancelWaiting.from, to: "CANCELLED" },
  } as const;
  // Committed under the start gate: once this commit is visible, no driver can start a job for the
  // run (the driver checks the run under the same gate before every start).
  await gate.withStartGate(runKey, () => runs.cancel(runKey, transitions, clock.now(), CANCEL_REASON));
  crashPoint("cancel:after-commit");
  const run = loadRun(runs, runKey)!.state;
  if (run.status !== "CANCELLED") return run;
  await Promise.all(
    run.steps.filter((step) => step.status === "RUNNING").map(async (step) => {
      const job = await executor.abort(stepRunKey(runKey, step.id, step.attemptNo), {
        graceSeconds,
        reason: CANCEL_REASON,
      });
      const succeeded = job?.status === "SUCCEEDED";
      const where = { runKey, stepId: step.id, attemptNo: step.attemptNo, evenIfRunEnded: true };
      moveStep(runs, where, STEP_TRANSITIONS.cancelRunning, succeeded ? "SUCCEEDED" : "CANCELLED", {
        finishedAt: clock.now(),
        error: succeeded ? null : CANCEL_REASON,
        job: job ?? step.job,
      });
    }),
  );
  return loadRun(runs, runKey)!.state;
}
