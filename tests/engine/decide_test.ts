/** decide() as a pure function of recorded state, observations and time. */
import assert from "node:assert/strict";
import { decide, JOB_VANISHED, LOST_AFTER_START, nextDue } from "../../src/engine/decide.ts";
import type { RunState, StepState, StepStatus } from "../../src/domain/mod.ts";
import type { Job, JobStatus } from "../../src/domain/mod.ts";
import { loadFlow } from "../../src/flow/load.ts";

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
  return {
    id,
    status,
    attemptNo: status === "PENDING" ? 0 : 1,
    nextAttemptAt: null,
    startedAt: status === "PENDING" ? null : 1000,
    finishedAt: null,
    error: null,
    job: null,
    ...extra,
  };
}

function run(statuses: Record<string, StepStatus>, extra: Record<string, Partial<StepState>> = {}): RunState {
  return {
    runKey: "r",
    flow: FLOW,
    status: "RUNNING",
    startedAt: 1000,
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
      { kind: "retry", stepId: "A", job: null, error: refused.error, next: "DELAYED", nextAttemptAt: 1011 },
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
    { kind: "retry", stepId: "B", job: null, error: refused.error, next: "PENDING", nextAttemptAt: null },
  ]);
});

Deno.test("timeouts, delayed retries and their due times", () => {
  const running = run({ A: "RUNNING" }, { A: { job: job("RUNNING") } });
  assert.deepEqual(decide(running, new Map([["A", job("RUNNING")]]), 1059), []);
  assert.deepEqual(decide(running, new Map([["A", job("RUNNING")]]), 1060), [
    { kind: "timeout", stepId: "A", job: job("RUNNING"), error: "timed out after 60 s" },
  ]);
  assert.equal(nextDue(running), 1060);
  const delayed = run({ A: "DELAYED" }, { A: { nextAttemptAt: 1100 } });
  assert.deepEqual(decide(delayed, new Map(), 1099), []);
  assert.deepEqual(decide(delayed, new Map(), 1100), [{ kind: "start", stepId: "A", attemptNo: 2, resume: false }]);
  assert.equal(nextDue(delayed), 1100);
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

Deno.test("a step whose recorded job is now unknown is a failed attempt, never started again under its key", () => {
  const started = run({ A: "RUNNING" }, { A: { job: job("RUNNING") } });
  assert.deepEqual(decide(started, new Map([["A", null]]), 1010), [
    { kind: "retry", stepId: "A", job: null, error: JOB_VANISHED, next: "DELAYED", nextAttemptAt: 1020 },
  ]);
});
