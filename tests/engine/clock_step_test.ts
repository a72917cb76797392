/** clock_step: telling a step of the wall clock, and the in-flight times moved or bounded by it. Pure. */
import assert from "node:assert/strict";
import { boundedSteps, ClockStepWatch, shiftedSteps } from "../../src/engine/clock_step.ts";
import type { Job } from "../../src/domain/mod.ts";
import { stepState } from "../step_state.ts";

/** The job an attempt recorded (only its presence matters here). */
const job = { job_id: "j", run_key: "r:r:1", status: "RUNNING", started_at: 990 } as Job;

Deno.test("a step is the wall clock moving a second or more apart from the monotonic one", () => {
  const watch = new ClockStepWatch();
  assert.equal(watch.look(1000, 0), null, "the first look has nothing to compare with");
  assert.equal(watch.look(1005.4, 5000), 0);
  assert.equal(watch.look(1010, 9700), 0, "0.1 s apart (slewing, reads not together): no step");
  assert.equal(watch.look(4611, 10700), 3600);
  assert.equal(watch.look(1012, 11700), -3600);
});

Deno.test("a step moves a running attempt's start and fault, and a delayed retry's time, not others", () => {
  const fault = { message: "m", exitCode: 1, stderrTail: "", firstAt: 1000, lastAt: 1010, count: 2 };
  const steps = [
    stepState("r", { status: "RUNNING", attemptNo: 2, startedAt: 990, executorError: fault, job }),
    stepState("d", { status: "DELAYED", attemptNo: 1, nextAttemptAt: 1020 }),
    stepState("p", { status: "PENDING" }),
    // Its job unknown: the intent's time tells its own job from an earlier run's. It moves back with the
    // clock (a job made after the step is the attempt's), not forward (its job made before would not be).
    stepState("u", { status: "RUNNING", attemptNo: 1, startedAt: 995, executorError: fault }),
  ];
  assert.deepEqual(shiftedSteps(steps, -3600), [
    {
      stepId: "r",
      attemptNo: 2,
      status: "RUNNING",
      // Its job's start as recorded too (a driver that takes over reads it).
      change: {
        startedAt: -2610,
        executorError: { ...fault, firstAt: -2600, lastAt: -2590 },
        job: { ...job, started_at: -2610 },
      },
    },
    { stepId: "d", attemptNo: 1, status: "DELAYED", change: { nextAttemptAt: -2580 } },
    {
      stepId: "u",
      attemptNo: 1,
      status: "RUNNING",
      change: { startedAt: -2605, executorError: { ...fault, firstAt: -2600, lastAt: -2590 } },
    },
  ]);
  assert.deepEqual(shiftedSteps([steps[3]], 3600), [
    {
      stepId: "u",
      attemptNo: 1,
      status: "RUNNING",
      change: { executorError: { ...fault, firstAt: 4600, lastAt: 4610 } },
    },
  ]);
});

Deno.test("times stored ahead of the clock are brought back to it; times within their bounds stay", () => {
  const fault = { message: "m", exitCode: 1, stderrTail: "", firstAt: 4600, lastAt: 4610, count: 2 };
  const history = (delay: number) => [{
    attempt_no: 1,
    started_at: 4500,
    failed_at: 4600,
    error: "e",
    delay_sec: delay,
    next_attempt_at: 4600 + delay,
  }];
  const steps = [
    stepState("r", { status: "RUNNING", attemptNo: 1, startedAt: 4500, executorError: fault, job }),
    // Its job unknown: its intent's time stays, whatever the clock says (see shiftedSteps).
    stepState("u", { status: "RUNNING", attemptNo: 1, startedAt: 4500 }),
    stepState("d", { status: "DELAYED", attemptNo: 1, nextAttemptAt: 4605, retryHistory: history(5) }),
    // Within its drawn delay of 10 s (and a second), also after an hour back: a retry time cannot say more.
    stepState("ok", { status: "DELAYED", attemptNo: 1, nextAttemptAt: 1010, retryHistory: history(10) }),
    stepState("in-time", { status: "RUNNING", attemptNo: 1, startedAt: 999 }),
  ];
  assert.deepEqual(boundedSteps(steps, 1000), [
    {
      stepId: "r",
      attemptNo: 1,
      status: "RUNNING",
      change: { startedAt: 1000, executorError: { ...fault, firstAt: 1000, lastAt: 1000 } },
    },
    { stepId: "d", attemptNo: 1, status: "DELAYED", change: { nextAttemptAt: 1005 } },
  ]);
});
