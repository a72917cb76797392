/** A step state for pure tests: a step that never started, with `fields` laid over it. */
import { neverStartedStep, type StepState } from "../src/domain/mod.ts";

export function stepState(id: string, fields: Partial<StepState> = {}): StepState {
  return { ...neverStartedStep(id), ...fields };
}
