/** A step state for pure tests: a step that never started, with `fields` laid over it. */
import type { StepState } from "../src/domain/mod.ts";

export function stepState(id: string, fields: Partial<StepState> = {}): StepState {
  return {
    id,
    status: "PENDING",
    attemptNo: 0,
    attemptBase: 0,
    nextAttemptAt: null,
    startedAt: null,
    finishedAt: null,
    error: null,
    job: null,
    executorError: null,
    retryHistory: [],
    ...fields,
  };
}
