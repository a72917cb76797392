/** stepsToRetry: which steps a retry reopens, as a pure function of the ended run. */
import { stepState } from "../step_state.ts";
import assert from "node:assert/strict";
import type { RunState, StepState, StepStatus } from "../../src/domain/mod.ts";
import { stepsToRetry } from "../../src/engine/mod.ts";
import { loadFlow, loadYamlLibrary } from "../../src/flow/mod.ts";

// loadFlow needs the YAML library, which the CLI imports only when it reads a flow file.
await loadYamlLibrary();

// a → b → c → d, plus e (waits on a) and alarm (runs when b did not succeed).
const FLOW = loadFlow(
  `flow_id: f
steps:
  - {id: a, command: [a]}
  - {id: b, when: a, command: [b]}
  - {id: c, when: b, command: [c]}
  - {id: d, depends_on: [c], command: [d]}
  - {id: e, when: a, command: [e]}
  - {id: alarm, when: "!b", command: [alarm]}
`,
  "f.yaml",
);

function ended(statuses: Record<string, StepStatus>, status: RunState["status"] = "FAILED"): RunState {
  const step = (id: string): StepState =>
    stepState(id, { status: statuses[id], attemptNo: statuses[id] === "SKIPPED" ? 0 : 1 });
  return {
    runKey: "r",
    flow: FLOW,
    status,
    startedAt: 0,
    notBefore: null,
    finishedAt: 1,
    error: null,
    steps: FLOW.steps.map((s) => step(s.id)),
  };
}

const middleFailed = ended({
  a: "SUCCEEDED",
  b: "FAILED",
  c: "SKIPPED",
  d: "SKIPPED",
  e: "SUCCEEDED",
  alarm: "SUCCEEDED",
});

Deno.test("by default: the failures and the steps they skipped, through chains of skips; nothing that succeeded", () => {
  assert.deepEqual(stepsToRetry(middleFailed, { kind: "failures" }), ["b", "c", "d"]);
});

Deno.test("cancelled steps are retried like failures; a skip that no failure caused stays", () => {
  const cancelled = ended({
    a: "SUCCEEDED",
    b: "SUCCEEDED",
    c: "CANCELLED",
    d: "CANCELLED",
    e: "SUCCEEDED",
    alarm: "SKIPPED",
  }, "CANCELLED");
  assert.deepEqual(stepsToRetry(cancelled, { kind: "failures" }), ["c", "d"]);
});

Deno.test("--step: only that step; --downstream: also everything that waits on it, whatever its status", () => {
  const succeeded = ended({
    a: "SUCCEEDED",
    b: "SUCCEEDED",
    c: "SUCCEEDED",
    d: "SUCCEEDED",
    e: "SUCCEEDED",
    alarm: "SKIPPED",
  }, "SUCCEEDED");
  assert.deepEqual(stepsToRetry(succeeded, { kind: "step", stepId: "b", downstream: false }), ["b"]);
  assert.deepEqual(stepsToRetry(succeeded, { kind: "step", stepId: "b", downstream: true }), ["b", "c", "d", "alarm"]);
  assert.deepEqual(stepsToRetry(succeeded, { kind: "step", stepId: "a", downstream: true }), [
    "a",
    "b",
    "c",
    "d",
    "e",
    "alarm",
  ]);
  assert.deepEqual(stepsToRetry(middleFailed, { kind: "step", stepId: "d", downstream: true }), ["d"]);
});
