/**
 * The engine: `decide` (pure: the next actions from recorded state, observations and the time), the
 * one table of status transitions, the driver that applies them, cancel, and the ports it needs from
 * outside (RunRepository, DriverLock, StartGate), which src/store/ implements.
 */
export {
  type Action,
  attemptEnd,
  decide,
  LOST_AFTER_START,
  nextDue,
  type Observations,
  startRefused,
} from "./decide.ts";
export { Driver, type DriverOptions, type TickResult, TIMEOUT_GRACE_SECONDS } from "./driver.ts";
export { abortUndelivered, CANCEL_REASON, cancelRun } from "./cancel.ts";
export { createRun, loadRun } from "./runs.ts";
export { downstreamOf, reopenRun, type RetryScope, stepsToRetry } from "./retry.ts";
export type { DriverLock, NewRun, RunRepository, StartGate, StepChange } from "./ports.ts";
export { moveRun, moveStep, RUN_TRANSITIONS, STEP_TRANSITIONS, type Transition } from "./transitions.ts";
