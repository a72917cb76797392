/** Cancelling a run: commit CANCELLED, then abort the jobs of its running steps. */
import type { Executor } from "../executor/executor.ts";
import { withStartGate } from "../store/locks.ts";
import type { RunStore } from "../store/runs.ts";
import { type RunState, stepRunKey } from "../domain/mod.ts";
import { epochNow } from "../shared/time.ts";

export const CANCEL_REASON = "flow cancelled";

/**
 * Cancels `runKey` (a no-op for a run that already SUCCEEDED or FAILED) and returns its state.
 * Safe to repeat: a second cancel aborts whatever steps a first one left RUNNING.
 */
export async function cancelRun(
  store: RunStore,
  executor: Executor,
  dbPath: string,
  runKey: string,
  graceSeconds: number,
): Promise<RunState> {
  // Committed under the start gate: once this commit is visible, no driver can start a job for the
  // run (the driver checks the run under the same gate before every start).
  await withStartGate(dbPath, runKey, () => store.cancel(runKey, epochNow()));
  const run = store.get(runKey)!.state;
  if (run.status !== "CANCELLED") return run;
  await Promise.all(
    run.steps.filter((step) => step.status === "RUNNING").map(async (step) => {
      const job = await executor.abort(stepRunKey(runKey, step.id, step.attemptNo), {
        graceSeconds,
        reason: CANCEL_REASON,
      });
      const succeeded = job?.status === "SUCCEEDED";
      store.updateStep(runKey, step.id, ["RUNNING"], {
        status: succeeded ? "SUCCEEDED" : "CANCELLED",
        finished_at: epochNow(),
        error: succeeded ? null : CANCEL_REASON,
        orchesjob_status: job ?? step.job,
      }, { attemptNo: step.attemptNo, evenIfRunEnded: true });
    }),
  );
  return store.get(runKey)!.state;
}
