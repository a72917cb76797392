/** decide() as a pure function of recorded state, observations and time. */
import { stepState as pendingStep } from "../step_state.ts";
import assert from "node:assert/strict";
import { RunIndex } from "../../src/engine/run_index.ts";
import { attemptEnd, decide, LOST_AFTER_START, nextDue } from "../../src/engine/decide.ts";
import type { RunState, StepState, StepStatus } from "../../src/domain/mod.ts";
import type { Job, JobStatus } from "../../src/domain/mod.ts";
import { loadFlow } from "../../src/flow/load.ts";

import { loadYamlLibrary } from "../../src/flow/mod.ts";
// loadFlow needs the YAML library, which the CLI imports only when it reads a flow file.
await loadYamlLibrary();

const FLOW = loadFlow(
  `flow_id: f
steps:
  - {id: A, command: [a], retries: 2, retry_delay_sec: 10, timeout_sec: 60}
  - {id: B, when: A, command: [b]}
  - {id: C, when: "!A", command: [c]}
  - {id: D, depends_on: [B, C], command: [d]}
  - {id: E, depends_on: [B], when: C, command: [e]}
`,
  "f.yaml",
);

function stepState(id: string, status: StepStatus, extra: Partial<StepState> = {}): StepState {
  const started = status !== "PENDING";
  return pendingStep(id, { status, attemptNo: started ? 1 : 0, startedAt: started ? 1000 : null, ...extra });
}

function run(statuses: Record<string, StepStatus>, extra: Record<string, Partial<StepState>> = {}): RunState {
  return {
    runKey: "r",
    flow: FLOW,
    status: "RUNNING",
    startedAt: 1000,
    notBefore: null,
    finishedAt: null,
    error: null,
    steps: FLOW.steps.map((s) => stepState(s.id, statuses[s.id] ?? "PENDING", extra[s.id])),
  };
}

function job(status: JobStatus, exitCode: number | null = null): Job {
  return { job_id: "j", run_key: "r:A:1", status, exit_code: exitCode, updated_at: 1, target_pid: null } as Job;
}

Deno.test("a PENDING run begins and starts the steps that wait for nothing", () => {
  const state = { ...run({}), status: "PENDING" as const };
  assert.deepEqual(decide(state, new Map(), 1000), [
    { kind: "begin" },
    { kind: "start", stepId: "A", attemptNo: 1, resume: false },
  ]);
});

Deno.test("a step waits until every step it waits for is terminal, then runs or is skipped", () => {
  assert.deepEqual(decide(run({ A: "RUNNING" }), new Map(), 1001), []);
  assert.deepEqual(decide(run({ A: "SUCCEEDED" }), new Map(), 1001), [
    { kind: "start", stepId: "B", attemptNo: 1, resume: false },
    { kind: "skip", stepId: "C" },
  ]);
  assert.deepEqual(decide(run({ A: "FAILED" }), new Map(), 1001), [
    { kind: "skip", stepId: "B" },
    { kind: "start", stepId: "C", attemptNo: 1, resume: false },
  ]);
});

Deno.test("depends_on without when is a success chain; with when it only waits", () => {
  // D: depends_on [B, C] and no when → B && C. E: waits for B, runs if C.
  assert.deepEqual(decide(run({ A: "FAILED", B: "SKIPPED", C: "SUCCEEDED" }), new Map(), 1), [
    { kind: "skip", stepId: "D" },
    { kind: "start", stepId: "E", attemptNo: 1, resume: false },
  ]);
  assert.deepEqual(decide(run({ A: "FAILED", B: "RUNNING", C: "SUCCEEDED" }), new Map(), 1), []);
});

Deno.test("observations: success, failure with retries left (delayed), failure with none left", () => {
  const running = run({ A: "RUNNING" });
  assert.deepEqual(decide(running, new Map([["A", job("SUCCEEDED", 0)]]), 1010), [
    { kind: "succeed", stepId: "A", job: job("SUCCEEDED", 0) },
  ]);
  assert.deepEqual(decide(running, new Map([["A", job("FAILED", 2)]]), 1010), [
    {
      kind: "retry",
      stepId: "A",
      job: job("FAILED", 2),
      error: "orchesjob status FAILED (exit code 2)",
      next: "DELAYED",
      nextAttemptAt: 1020,
      delaySec: 10,
      failedAt: 1010,
    },
  ]);
  for (const status of ["LOST", "ABORTED", "CANCELLED"] as const) {
    const last = run({ A: "RUNNING" }, { A: { attemptNo: 3 } });
    assert.deepEqual(decide(last, new Map([["A", job(status)]]), 1010), [
      { kind: "fail", stepId: "A", job: job(status), error: `orchesjob status ${status}` },
    ]);
  }
});

Deno.test("a job LOST after its command started fails the step even with retries left: it may have done its work", () => {
  const lost = { ...job("LOST"), target_pid: 4242 };
  assert.deepEqual(decide(run({ A: "RUNNING" }), new Map([["A", lost]]), 1010), [
    { kind: "fail", stepId: "A", job: lost, error: LOST_AFTER_START },
  ]);
  // Lost before its command started: nothing ran, so it is an ordinary failed attempt.
  assert.equal(decide(run({ A: "RUNNING" }), new Map([["A", job("LOST")]]), 1010)[0].kind, "retry");
});

Deno.test("a RUNNING step whose run key orchesjob does not know is started again with the same attempt", () => {
  assert.deepEqual(decide(run({ A: "RUNNING" }), new Map([["A", null]]), 1001), [
    { kind: "start", stepId: "A", attemptNo: 1, resume: true },
  ]);
});

Deno.test("a refused start (an error and no job) is retried or fails, observed or not", () => {
  const refused = { error: "start failed: orchesjob not found: /nope" };
  for (const observations of [new Map(), new Map([["A", null]])]) {
    assert.deepEqual(decide(run({ A: "RUNNING" }, { A: refused }), observations, 1001), [
      {
        kind: "retry",
        stepId: "A",
        job: null,
        error: refused.error,
        next: "DELAYED",
        nextAttemptAt: 1011,
        delaySec: 10,
        failedAt: 1001,
      },
    ]);
    assert.deepEqual(decide(run({ A: "RUNNING" }, { A: { ...refused, attemptNo: 3 } }), observations, 1001), [
      { kind: "fail", stepId: "A", job: null, error: refused.error },
    ]);
  }
  // Without a retry delay the retry is PENDING at once; without retries the step fails.
  const state = run({ A: "SUCCEEDED", B: "RUNNING", C: "SKIPPED" }, { B: refused });
  assert.deepEqual(decide(state, new Map(), 1001), [{ kind: "fail", stepId: "B", job: null, error: refused.error }]);
  const retried = {
    ...state,
    flow: { ...FLOW, steps: FLOW.steps.map((s) => s.id === "B" ? { ...s, retries: 1 } : s) },
  };
  assert.deepEqual(decide(retried, new Map(), 1001), [
    {
      kind: "retry",
      stepId: "B",
      job: null,
      error: refused.error,
      next: "PENDING",
      nextAttemptAt: null,
      delaySec: 0,
      failedAt: 1001,
    },
  ]);
});

Deno.test("timeouts, delayed retries and their due times", () => {
  const running = run({ A: "RUNNING" }, { A: { job: job("RUNNING") } });
  assert.deepEqual(decide(running, new Map([["A", job("RUNNING")]]), 1059), []);
  assert.deepEqual(decide(running, new Map([["A", job("RUNNING")]]), 1060), [
    { kind: "timeout", stepId: "A", job: job("RUNNING"), error: "timed out after 60 s" },
  ]);
  assert.equal(nextDue(running), 1060);
  // A step whose abort is under way is due when that abort ends, not at its (past) timeout.
  assert.equal(nextDue(running, undefined, new Map([["A", null]])), null);
  const delayed = run({ A: "DELAYED" }, { A: { nextAttemptAt: 1100 } });
  assert.deepEqual(decide(delayed, new Map(), 1099), []);
  assert.deepEqual(decide(delayed, new Map(), 1100), [{ kind: "start", stepId: "A", attemptNo: 2, resume: false }]);
  assert.equal(nextDue(delayed), 1100);
  // Unobserved (its status call failed this round): the limit holds on the job last seen.
  assert.deepEqual(decide(running, new Map(), 1059), []);
  assert.deepEqual(decide(running, new Map(), 1060), [
    { kind: "timeout", stepId: "A", job: job("RUNNING"), error: "timed out after 60 s" },
  ]);
  // A start never answered (no job seen) is not timed: it is started again, bounded by
  // executor_unavailable_sec, and its timeout is due at no time (a past one would spin the driver).
  const unanswered = run({ A: "RUNNING" }, { A: { job: null } });
  assert.deepEqual(decide(unanswered, new Map(), 1070), []);
  assert.equal(nextDue(unanswered), null);
  // A job start later than now (milliseconds where seconds belong) does not put the limit off: the
  // attempt's own start counts.
  const later = { ...job("RUNNING"), started_at: 1_000_000 };
  assert.deepEqual(decide(running, new Map([["A", later]]), 1060), [
    { kind: "timeout", stepId: "A", job: later, error: "timed out after 60 s" },
  ]);
  // A timed-out attempt keeps its reason when its ABORTED job is seen.
  const timedOut = run({ A: "RUNNING" }, { A: { error: "timed out after 60 s", attemptNo: 3 } });
  assert.deepEqual(decide(timedOut, new Map([["A", job("ABORTED")]]), 1070), [
    { kind: "fail", stepId: "A", job: job("ABORTED"), error: "timed out after 60 s" },
  ]);
});

Deno.test("the run finishes when every step is terminal: FAILED if any step failed", () => {
  const all = (status: StepStatus) => Object.fromEntries(FLOW.steps.map((s) => [s.id, status]));
  assert.deepEqual(decide(run({ ...all("SKIPPED"), A: "SUCCEEDED" }), new Map(), 1), [{
    kind: "finish",
    status: "SUCCEEDED",
  }]);
  assert.deepEqual(decide(run({ ...all("SUCCEEDED"), C: "FAILED" }), new Map(), 1), [{
    kind: "finish",
    status: "FAILED",
  }]);
  assert.deepEqual(decide({ ...run(all("SUCCEEDED")), status: "CANCELLED" }, new Map(), 1), []);
});

Deno.test("max_parallel: starts are granted in file order while slots remain; retries wait for a slot too", () => {
  const flow = loadFlow(
    `flow_id: f
max_parallel: 2
steps:
  - {id: a, command: [x]}
  - {id: b, command: [x]}
  - {id: c, command: [x]}
  - {id: d, command: [x]}
`,
    "f.yaml",
  );
  const state = (statuses: StepStatus[], extra: Partial<StepState> = {}): RunState => ({
    ...run({}),
    flow,
    steps: flow.steps.map((s, i) => stepState(s.id, statuses[i], i === 0 ? extra : {})),
  });
  const starts = (actions: ReturnType<typeof decide>) => actions.filter((a) => a.kind === "start").map((a) => a.stepId);
  assert.deepEqual(starts(decide(state(["PENDING", "PENDING", "PENDING", "PENDING"]), new Map(), 1000)), ["a", "b"]);
  assert.deepEqual(starts(decide(state(["RUNNING", "PENDING", "PENDING", "PENDING"]), new Map(), 1000)), ["b"]);
  assert.deepEqual(starts(decide(state(["RUNNING", "RUNNING", "PENDING", "PENDING"]), new Map(), 1000)), []);
  assert.deepEqual(starts(decide(state(["SUCCEEDED", "RUNNING", "PENDING", "PENDING"]), new Map(), 1000)), ["c"]);
  // A due retry of an earlier step comes first in file order.
  const delayed = state(["DELAYED", "RUNNING", "PENDING", "PENDING"], { nextAttemptAt: 999 });
  assert.deepEqual(starts(decide(delayed, new Map(), 1000)), ["a"]);
  assert.equal(nextDue(delayed), 999);
  // With every slot taken the retry waits for a step to end, not for its (past) time: due then, the
  // driver decided again at once, round after round, spinning until a slot freed.
  const full = state(["DELAYED", "RUNNING", "RUNNING", "PENDING"], { nextAttemptAt: 999 });
  assert.deepEqual(starts(decide(full, new Map(), 1000)), []);
  assert.equal(nextDue(full), null);
});

Deno.test("backoff: the drawn delay is in the action; retry_on_exit_codes fails other codes at once", () => {
  const flow = loadFlow(
    `flow_id: f
steps:
  - id: a
    command: [x]
    retries: 5
    retry_delay_sec: 2
    retry_backoff: exponential
    retry_max_delay_sec: 5
    retry_jitter: 0.5
    retry_on_exit_codes: [75]
`,
    "f.yaml",
  );
  const state = (attemptNo: number): RunState => ({
    ...run({}),
    flow,
    steps: [stepState("a", "RUNNING", { attemptNo })],
  });
  const failed = (attemptNo: number, exitCode: number, random: number) =>
    decide(state(attemptNo), new Map([["a", job("FAILED", exitCode)]]), 1000, undefined, () => random)[0];
  assert.deepEqual(failed(1, 75, 0), {
    kind: "retry",
    stepId: "a",
    job: job("FAILED", 75),
    error: "orchesjob status FAILED (exit code 75)",
    next: "DELAYED",
    nextAttemptAt: 1002,
    delaySec: 2,
    failedAt: 1000,
  });
  assert.equal((failed(2, 75, 0.5) as { delaySec: number }).delaySec, 3); // 4 less a quarter
  assert.equal((failed(3, 75, 0) as { delaySec: number }).delaySec, 5); // 8 capped at 5
  const other = failed(1, 1, 0);
  assert.equal(other.kind, "fail");
  assert.match((other as { error: string }).error, /exit code 1\); not retried: exit code not in retry_on_exit_codes/);
  // Without an exit code of the command's own (LOST), the retry still happens.
  const lost = decide(state(1), new Map([["a", job("LOST")]]), 1000, undefined, () => 0)[0];
  assert.equal(lost.kind, "retry");
});

Deno.test("a SCHEDULED run does nothing before its time, then begins like a created one", () => {
  const scheduled: RunState = { ...run({}), status: "SCHEDULED", notBefore: 2000 };
  assert.deepEqual(decide(scheduled, new Map(), 1999.999), []);
  assert.equal(nextDue(scheduled), 2000);
  assert.deepEqual(decide(scheduled, new Map(), 2000), [
    { kind: "begin" },
    { kind: "start", stepId: "A", attemptNo: 1, resume: false },
  ]);
  // With one index kept across rounds (as the driver does), the rounds before the time forget no step.
  const index = new RunIndex(scheduled);
  assert.deepEqual(decide(scheduled, new Map(), 1999, index), []);
  index.settle();
  assert.deepEqual(decide(scheduled, new Map(), 1999.5, index), []);
  index.settle();
  assert.deepEqual(decide(scheduled, new Map(), 2000, index).map((a) => a.kind), ["begin", "start"]);
});

Deno.test("max_parallel: a ready step denied a slot is looked at again once one frees (one index across rounds)", () => {
  const flow = loadFlow(
    "flow_id: f\nmax_parallel: 1\nsteps:\n  - {id: a, command: [x]}\n  - {id: b, command: [x]}\n",
    "f.yaml",
  );
  const state: RunState = {
    ...run({}),
    status: "RUNNING",
    flow,
    steps: flow.steps.map((s) => stepState(s.id, "PENDING")),
  };
  const index = new RunIndex(state);
  assert.deepEqual(decide(state, new Map(), 1000, index).map((a) => a.kind === "start" && a.stepId), ["a"]);
  index.settle();
  index.update("a", { status: "RUNNING", attemptNo: 1 });
  assert.deepEqual(decide(state, new Map(), 1001, index), [], "b waits: the slot is taken");
  index.settle();
  index.update("a", { status: "SUCCEEDED" });
  assert.deepEqual(decide(state, new Map(), 1002, index).map((a) => a.kind === "start" && a.stepId), ["b"]);
});

Deno.test("an executor unusable past executor_unavailable_sec fails the attempt, with an abort first", () => {
  const fault = {
    message: "orchesjob status exited 1: locked",
    exitCode: 1,
    stderrTail: "",
    firstAt: 1000,
    lastAt: 1500,
    count: 9,
  };
  const seen = job("RUNNING");
  const state = run({ A: "RUNNING" }, { A: { executorError: fault, job: seen, startedAt: 1590 } });
  assert.deepEqual(decide(state, new Map(), 1599.9), [], "within the default 600 s");
  assert.equal(nextDue(state), 1600);
  const [action] = decide(state, new Map(), 1600);
  assert.equal(action.kind, "retry");
  assert.ok(action.kind === "retry" && action.abort && action.job === seen);
  assert.match(
    (action as { error: string }).error,
    /^orchesjob unusable for 600 s \(9 failed calls; limit 600 s\): .*locked$/,
  );
  // An answer this round wins over the recorded error.
  assert.deepEqual(decide(state, new Map([["A", seen]]), 1600), []);
  // The flow's own bound.
  const short = { ...state, flow: { ...state.flow, executorUnavailableSec: 5 } };
  assert.equal(decide(short, new Map(), 1005)[0].kind, "retry");
});

Deno.test("a job orchesjob forgot (cleaned) fails the attempt rather than starting the step again", () => {
  const state = run({ A: "RUNNING" }, { A: { job: job("RUNNING"), attemptNo: 3 } });
  const [action] = decide(state, new Map([["A", null]]), 1001);
  assert.equal(action.kind, "fail");
  assert.match((action as { error: string }).error, /^orchesjob no longer knows run key r:A:1 /);
  // Not retried either, retries left or not: a retry would run beside the forgotten job's command,
  // which may still run and which no abort can reach by a key orchesjob has forgotten.
  const first = run({ A: "RUNNING" }, { A: { job: job("RUNNING"), attemptNo: 1 } });
  const [forgotten] = decide(first, new Map([["A", null]]), 1001);
  assert.equal(forgotten.kind, "fail");
  assert.match((forgotten as { error: string }).error, /not retried, as its command may still run$/);
});

Deno.test("after a retry round, the step's retries count from the round's first attempt", () => {
  // A has retries: 2 (see FLOW). Round 1 used attempts 1-3; the retry reopened it with attemptBase 3.
  const second = run({ A: "RUNNING" }, { A: { attemptNo: 4, attemptBase: 3 } });
  const [action] = decide(second, new Map([["A", job("FAILED", 2)]]), 1010);
  assert.equal(action.kind, "retry", "attempt 4 is the first of its round: two retries are left");
  const last = run({ A: "RUNNING" }, { A: { attemptNo: 6, attemptBase: 3 } });
  assert.equal(decide(last, new Map([["A", job("FAILED", 2)]]), 1010)[0].kind, "fail");
  // Attempt numbers go on: the next start after a reopened step is attempt 7, never a used one.
  const reopened = run({ A: "PENDING" }, { A: { attemptNo: 6, attemptBase: 6 } });
  assert.deepEqual(decide(reopened, new Map(), 1020).find((a) => a.kind === "start"), {
    kind: "start",
    stepId: "A",
    attemptNo: 7,
    resume: false,
  });
});

Deno.test("an attempt ends when its job says, laid from the attempt's start, never after now", () => {
  const ended = { ...job("SUCCEEDED", 0), started_at: 1000, finished_at: 1003 };
  const step = { startedAt: 1000.4 } as StepState;
  assert.equal(attemptEnd(step, ended, 1017), 1003.4, "a driver back 14 s later");
  assert.equal(attemptEnd(step, ended, 1003.1), 1003.1, "never after now");
  assert.equal(attemptEnd(step, { ...ended, started_at: 1010, finished_at: 1012 }, 1020), 1012, "a later start");
  assert.equal(attemptEnd(step, job("RUNNING"), 1017), 1017, "no end reported");
  assert.equal(attemptEnd(step, null, 1017), 1017);
});

Deno.test("the index finds definitions and waiters by place, and by id when the run's steps are in another order", () => {
  const flow = loadFlow(
    "flow_id: f\nsteps:\n  - {id: a, command: [x]}\n  - {id: b, command: [y], depends_on: [a]}\n" +
      "  - {id: c, command: [z], depends_on: [a, b]}\n",
    "f.yaml",
  );
  for (const order of [["a", "b", "c"], ["c", "a", "b"]]) {
    const state: RunState = { ...run({}), status: "RUNNING", flow, steps: order.map((id) => stepState(id, "PENDING")) };
    const index = new RunIndex(state);
    for (const id of order) {
      assert.equal(index.definition(id).id, id);
      assert.equal(index.step(id).id, id);
    }
    const starts = () => decide(state, new Map(), 1000, index).flatMap((a) => a.kind === "start" ? [a.stepId] : []);
    assert.deepEqual(starts(), ["a"], order.join());
    index.settle();
    index.update("a", { status: "SUCCEEDED", attemptNo: 1 });
    assert.deepEqual(starts(), ["b"], `${order}: a's end makes b ready, c still waits for b`);
    index.settle();
    index.update("b", { status: "SUCCEEDED", attemptNo: 1 });
    assert.deepEqual(starts(), ["c"], order.join());
  }
});
