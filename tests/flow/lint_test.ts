import assert from "node:assert/strict";
import { loadFlow } from "../../src/flow/load.ts";
import { lintFlow, satisfiable } from "../../src/flow/lint.ts";
import { parseWhen } from "../../src/flow/when.ts";
import { join } from "node:path";
import { REPO } from "../helpers.ts";
import { loadYamlLibrary } from "../../src/flow/mod.ts";

await loadYamlLibrary();

function lint(steps: string): string[] {
  return lintFlow(loadFlow(`flow_id: f\nsteps:\n${steps}`, "f.yaml")).map((w) => `${w.stepId}: ${w.message}`);
}

Deno.test("satisfiable: enumerates the free step ids, with some fixed as never succeeding", () => {
  assert.equal(satisfiable(parseWhen("A && !A")), false);
  assert.equal(satisfiable(parseWhen("(A || B) && !A && !B")), false);
  assert.equal(satisfiable(parseWhen("A || !A")), true);
  assert.equal(satisfiable(parseWhen("A && B")), true);
  assert.equal(satisfiable(parseWhen("A && B"), new Set(["B"])), false);
  assert.equal(satisfiable(parseWhen("A || !B"), new Set(["B"])), true);
});

Deno.test("a when that can never be true, and the steps that then never run, are warned about", () => {
  assert.deepEqual(
    lint(`  - {id: A, command: [x]}
  - {id: B, when: A && !A, command: [x]}
  - {id: C, when: B, command: [x]}
  - {id: D, depends_on: [C], command: [x]}
  - {id: E, when: "!C", command: [x]}
`),
    [
      'B: when "A && !A" can never be true: the step is always SKIPPED',
      'C: unreachable: its when "B" needs "B" to succeed, which can never run',
      'D: unreachable: its when "C" needs "C" to succeed, which can never run',
    ],
  );
});

Deno.test("depends_on entries a when already waits for are warned about; depends_on alone is not", () => {
  assert.deepEqual(
    lint(`  - {id: A, command: [x]}
  - {id: B, command: [x]}
  - {id: C, depends_on: [A, B], command: [x]}
  - {id: D, depends_on: [A, B], when: A || C, command: [x]}
`),
    ['D: depends_on "A" is already implied by its when "A || C" (a step waits for every step its when names)'],
  );
});

Deno.test("a when that means what its depends_on alone would, in any order or repetition, is not warned about", () => {
  const steps = `  - {id: A, command: [x]}
  - {id: B, command: [x]}
  - {id: C, command: [x]}
`;
  for (const when of ["A && B", "B && A", "(B && A)", "B && A && B"]) {
    assert.deepEqual(lint(`${steps}  - {id: D, depends_on: [A, B], when: "${when}", command: [x]}\n`), [], when);
  }
  // Not the same: one more step, one less, or not a plain "all of these succeeded".
  for (const when of ["B && A && C", "A", "B && !A", "(B || A) && A"]) {
    assert.notDeepEqual(lint(`${steps}  - {id: D, depends_on: [A, B], when: "${when}", command: [x]}\n`), [], when);
  }
});

Deno.test("timeout_sec shorter than start_timeout_sec is warned about; the examples are clean", () => {
  assert.deepEqual(lint("  - {id: A, command: [x], timeout_sec: 2, start_timeout_sec: 10}\n"), [
    "A: timeout_sec (2) is shorter than start_timeout_sec (10): the attempt may time out before it has started",
  ]);
  assert.deepEqual(lint("  - {id: A, command: [x], timeout_sec: 10, start_timeout_sec: 10}\n"), []);
  for (const entry of Deno.readDirSync(join(REPO, "examples"))) {
    if (!entry.name.endsWith(".yaml")) continue;
    const flow = loadFlow(Deno.readTextFileSync(join(REPO, "examples", entry.name)), entry.name);
    assert.deepEqual(lintFlow(flow), [], entry.name);
  }
});

Deno.test("satisfiable: a condition too costly to enumerate counts as satisfiable, and a flow's checks share a budget", () => {
  const ids = Array.from({ length: 16 }, (_, i) => `s${i}`);
  const wide = parseWhen(`${ids.join(" && ")} && !s0`);
  const budget = { left: 2 ** 24 };
  // 2^16 assignments of 32 nodes: over one check's budget, so not enumerated (though it is false).
  assert.equal(satisfiable(wide, new Set(), budget), true);
  assert.equal(budget.left, 2 ** 24);
  const narrow = parseWhen("A && !A");
  assert.equal(satisfiable(narrow, new Set(), budget), false);
  assert.equal(budget.left, 2 ** 24 - 2 ** 1 * 4);
  // A spent flow budget: no more enumeration.
  assert.equal(satisfiable(narrow, new Set(), { left: 3 }), true);
});
