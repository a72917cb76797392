/**
 * Steps of the wall clock under a living driver (an NTP correction, a VM resumed or restored, a
 * `date -s`). The run's times are stored as wall-clock epochs, which other processes read, so they
 * stay on the wall clock; but the lengths measured from them (a running attempt's timeout_sec, a
 * delayed retry's delay, executor_unavailable_sec) must not grow or shrink by a step. A driver sees a
 * step as the wall clock moving more or less than its monotonic clock between two looks, and then
 * moves the in-flight times by the step, so that each length keeps what it had left. The monotonic
 * clock stands still while the machine is suspended (Linux CLOCK_MONOTONIC), so a suspended hour
 * counts for no timer: the step's command did not run during it either. Pure but for its own memory.
 */
import type { ExecutorFault, StepState } from "../domain/mod.ts";
import type { StepChange } from "./ports.ts";

/**
 * The least gap between the wall and monotonic clocks taken for a step, in seconds. NTP slews the two
 * alike (at most 0.05 %), and both are read together, so a real step is the only way to a second.
 */
export const CLOCK_STEP_TOLERANCE_SEC = 1;

/**
 * The most time between the two monotonic reads around a wall-clock read for a pair to count
 * (milliseconds): a pause between the reads (a SIGSTOP, a loaded machine) would otherwise read as a
 * step the size of the pause, and move every in-flight time by it, for good.
 */
export const CLOCK_READ_SLACK_MS = 100;

/**
 * The wall clock (epoch seconds) and the monotonic one (milliseconds) read together: the wall read
 * between two monotonic ones that lie within {@link CLOCK_READ_SLACK_MS}, else null (three tries).
 */
export function readClocks(wall: () => number, monoMs: () => number): { wall: number; monoMs: number } | null {
  for (let attempt = 0; attempt < 3; attempt++) {
    const before = monoMs();
    const at = wall();
    const after = monoMs();
    if (after - before <= CLOCK_READ_SLACK_MS) return { wall: at, monoMs: (before + after) / 2 };
  }
  return null;
}

/** Compares the wall clock with the monotonic one at each look. */
export class ClockStepWatch {
  private last: { wall: number; monoMs: number } | null = null;

  /**
   * The wall clock's step since the previous look (seconds, negative when it went back), 0 when it
   * kept with the monotonic clock, null at the first look. `wall` is epoch seconds, `monoMs`
   * performance.now().
   */
  look(wall: number, monoMs: number): number | null {
    const last = this.last;
    this.last = { wall, monoMs };
    if (last === null) return null;
    const step = (wall - last.wall) - (monoMs - last.monoMs) / 1000;
    return Math.abs(step) >= CLOCK_STEP_TOLERANCE_SEC ? step : 0;
  }
}

/** One in-flight step's times moved by a clock step: a write guarded by its status and attempt. */
export interface ShiftedStep {
  stepId: string;
  attemptNo: number;
  status: "RUNNING" | "DELAYED";
  change: StepChange;
}

/**
 * Whether a running attempt's start (its intent's time) may move with a clock step of `shift` seconds
 * (null: bounded at a first round, by an unknown step back). Once its job is recorded, always. Until
 * then the intent's time also tells the attempt's own job from an earlier run's under the same run key
 * (made before the intent, see madeBeforeIntent). Moved forward past its own job's start, the attempt
 * took its job for an earlier run's and unlocked and started the key again, running the command twice:
 * it stays, and its timeout keeps the step for as long as the start is unknown. A step back moves it
 * back all the same: a job its start makes after the step has a start earlier than the intent by up to
 * the step, and read as an earlier run's, which ran the command twice in the same way. The doubt left
 * is an earlier run's job made within the step before the intent, which reads as the attempt's (see
 * README, "Steps of the wall clock"). Bounded, by a step of unknown size, it stays.
 */
function intentMovable(step: StepState, shift: number | null): boolean {
  return step.startedAt !== null && (step.job !== null || (shift !== null && shift < 0));
}

/** `at` moved by `shift` seconds, to the millisecond as flow times are. */
export function shifted(at: number, shift: number): number {
  return Math.round((at + shift) * 1000) / 1000;
}

function shiftedFault(fault: ExecutorFault, shift: number): ExecutorFault {
  return { ...fault, firstAt: shifted(fault.firstAt, shift), lastAt: shifted(fault.lastAt, shift) };
}

/**
 * The writes that keep the in-flight lengths of `run` across a wall-clock step of `shift` seconds:
 * a running attempt's start (its timeout counts from it) and its executor fault's times, a delayed
 * retry's time. A SCHEDULED run's not-before time is a wall-clock time the operator chose, and stays.
 */
export function shiftedSteps(
  steps: Iterable<StepState>,
  shift: number,
): ShiftedStep[] {
  const writes: ShiftedStep[] = [];
  for (const step of steps) {
    const { id: stepId, attemptNo } = step;
    if (step.status === "RUNNING") {
      const change: StepChange = {};
      if (intentMovable(step, shift)) change.startedAt = shifted(step.startedAt!, shift);
      // Its job's start as recorded moves too: a driver that takes over tells the step from it (see
      // Driver.withJobStartsShifted), as the executor reports the start on the clock of that time.
      if (step.job !== null && typeof step.job.started_at === "number") {
        change.job = { ...step.job, started_at: shifted(step.job.started_at, shift) };
      }
      if (step.executorError !== null) change.executorError = shiftedFault(step.executorError, shift);
      if (Object.keys(change).length > 0) writes.push({ stepId, attemptNo, status: "RUNNING", change });
    } else if (step.status === "DELAYED" && step.nextAttemptAt !== null) {
      writes.push({
        stepId,
        attemptNo,
        status: "DELAYED",
        change: { nextAttemptAt: shifted(step.nextAttemptAt, shift) },
      });
    }
  }
  return writes;
}

/**
 * The writes that bound in-flight times stored further ahead of `now` than they can be: the clock
 * stepped back since they were written, with no driver to see the step (its driver died, the run
 * waited for a `resume`). How much of the wait had passed is unknown, so it starts again, whole: a
 * delayed retry waits its drawn delay from now (not an hour more), a running attempt's timeout and
 * executor fault count from now. A step forward meanwhile cannot be told from time that passed: a
 * delayed retry then starts at once, an attempt past its timeout is aborted.
 */
export function boundedSteps(steps: Iterable<StepState>, now: number): ShiftedStep[] {
  const writes: ShiftedStep[] = [];
  const ahead = (at: number, by = 0) => at > now + by + CLOCK_STEP_TOLERANCE_SEC;
  for (const step of steps) {
    const { id: stepId, attemptNo } = step;
    if (step.status === "RUNNING") {
      const change: StepChange = {};
      if (intentMovable(step, null) && ahead(step.startedAt!)) change.startedAt = now;
      const fault = step.executorError;
      if (fault !== null && ahead(fault.lastAt)) change.executorError = { ...fault, firstAt: now, lastAt: now };
      if (Object.keys(change).length > 0) writes.push({ stepId, attemptNo, status: "RUNNING", change });
    } else if (step.status === "DELAYED" && step.nextAttemptAt !== null) {
      const drawn = step.retryHistory.findLast((entry) => entry.attempt_no === attemptNo)?.delay_sec ?? 0;
      if (ahead(step.nextAttemptAt, drawn)) {
        writes.push({ stepId, attemptNo, status: "DELAYED", change: { nextAttemptAt: shifted(now, drawn) } });
      }
    }
  }
  return writes;
}
