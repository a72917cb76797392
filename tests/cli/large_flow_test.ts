/**
 * Issue 10: shapes that used to overflow the stack (a 6,000-term `when` chain, a `depends_on` list of
 * thousands of ids) run through `validate`, `start`, `status` and the table end to end; and at 10k
 * steps, in-process, the store, the scheduler and the renderers.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { cli, tempDir, writeFile } from "../helpers.ts";
import {
  definitionHash,
  denormalizeFlow,
  loadFlow,
  loadYamlLibrary,
  normalizeFlow,
  referencedIds,
} from "../../src/flow/mod.ts";
import { openDatabase, RunStore } from "../../src/store/mod.ts";
import { createRun, decide, loadRun } from "../../src/engine/mod.ts";
import { renderRunList, renderRunTable, runJson } from "../../src/cli/render/mod.ts";

Deno.test("a 6,000-term when chain and a wide depends_on run end to end", async () => {
  using dir = tempDir();
  const env = { ORCHESJOB_FLOW_HOME: join(dir.path, "home") };
  const chain = Array.from({ length: 3000 }, () => "a && !z").join(" && ");
  const wide = Array.from({ length: 5000 }, (_, i) => (i % 2 ? "a" : "z")).join(", ");
  const flow = writeFile(
    dir.path,
    "large.yaml",
    `flow_id: large
steps:
  - id: a
    command: [sh, -c, "exit 0"]
  - id: z
    when: !a
    command: [sh, -c, "exit 0"]
  - id: b
    when: ${chain}
    command: [sh, -c, "exit 0"]
  - id: c
    depends_on: [${wide}]
    when: !z
    command: [sh, -c, "exit 0"]
`,
  );
  const validated = await cli(["validate", flow], { env });
  assert.equal(validated.code, 0, validated.stderr);
  const steps = JSON.parse(validated.stdout).steps;
  assert.equal(steps[2].condition.operands.length, 6000);
  assert.deepEqual(steps[3].waits_for, ["z", "a"]);

  const base = ["--executor", "builtin", "--poll-interval", "0.1"];
  const started = await cli([...base, "start", "-q", "--run-key", "large", flow], { env });
  assert.equal(started.code, 0, started.stderr);
  const statuses = Object.fromEntries(
    JSON.parse(started.stdout).steps.map((s: { id: string; status: string }) => [s.id, s.status]),
  );
  assert.deepEqual(statuses, { a: "SUCCEEDED", z: "SKIPPED", b: "SUCCEEDED", c: "SUCCEEDED" });
  const table = await cli([...base, "status", "--run-key", "large", "--format", "table"], { env });
  assert.equal(table.code, 0, table.stderr);
  assert.match(table.stdout, /Steps: 4\/4 done/);
});

Deno.test("10k steps: a 10k fan-in, an 8k reversed chain and a 6,000-term when are stored, decided and shown", async () => {
  await loadYamlLibrary();
  const n = 10_000;
  const lines = ["flow_id: wide", "steps:"];
  // s0…s7999 written in reverse dependency order: each waits for the one written after it.
  for (let i = 0; i < n; i++) {
    const waits = i < 7999 ? `, depends_on: [s${i + 1}]` : "";
    lines.push(`  - {id: s${i}, command: [x]${waits}}`);
  }
  const ids = Array.from({ length: n }, (_, i) => `s${i}`);
  lines.push(`  - id: fan_in`, `    command: [x]`, `    depends_on: [${ids.join(", ")}]`);
  // 6,000 distinct terms, unquoted and starting with "!", continued over many lines.
  const terms = ids.slice(2000, 8000).map((id, i) => i % 2 ? id : `!${id}`);
  lines.push(`  - id: chain`, `    command: [x]`, `    when: ${terms.slice(0, 100).join(" || ")}`);
  for (let i = 100; i < terms.length; i += 100) lines.push(`      || ${terms.slice(i, i + 100).join(" || ")}`);
  const flow = loadFlow(lines.join("\n") + "\n", "wide.yaml");
  assert.equal(flow.steps.length, n + 2);
  const chain = flow.steps.at(-1)!;
  assert.equal(referencedIds(chain.condition!).length, 6000);
  // The stored form read back, as a new process (status, a resumed driver) would.
  const normalized = normalizeFlow(flow);
  const reread = denormalizeFlow(normalized);
  assert.equal(referencedIds(reread.steps.at(-1)!.condition!).length, 6000);
  assert.deepEqual(normalizeFlow(reread), normalized);

  using dir = tempDir();
  const db = openDatabase(join(dir.path, "state.sqlite3"));
  try {
    const runs = new RunStore(db);
    createRun(runs, {
      runKey: "wide",
      flow,
      definitionHash: definitionHash(flow),
      flowFile: null,
      executor: { kind: "builtin" },
    }, 0);
    const record = loadRun(runs, "wide")!;
    assert.equal(record.state.steps.length, n + 2);
    // Only the step written last (s7999) and the independent ones can start first.
    const first = decide(record.state, new Map(), 1);
    const starts = first.filter((action) => action.kind === "start").map((action) =>
      (action as { stepId: string }).stepId
    );
    assert.deepEqual(starts.sort(), ids.slice(7999).sort());
    // Every s* succeeded: the fan-in starts, and the chain (its odd terms succeeded) starts too.
    const ended = { ...record.state, status: "RUNNING" as const };
    ended.steps = ended.steps.map((step) => step.id.startsWith("s") ? { ...step, status: "SUCCEEDED" as const } : step);
    const next = decide(ended, new Map(), 2).map((action) => action.kind === "start" ? action.stepId : action.kind);
    assert.deepEqual(next.sort(), ["chain", "fan_in"]);
    const json = runJson(record);
    assert.equal(json.steps.length, n + 2);
    const table = renderRunTable(ended, 3, false, record.rounds, null);
    assert.match(table, new RegExp(`Steps: ${n}/${n + 2} done`));
    // `list --limit 0` of 200k runs (of one step each): widths are found without spreading every row.
    const small = { ...record, state: { ...record.state, steps: record.state.steps.slice(0, 1) } };
    const listed = renderRunList(Array.from({ length: 200_000 }, () => ({ record: small, driver: null })), 3);
    assert.equal(listed.split("\n").length, 200_000 + 5);
  } finally {
    db.close();
  }
});
