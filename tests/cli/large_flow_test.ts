/**
 * Issue 10: shapes that used to overflow the stack (a 6,000-term `when` chain, a `depends_on` list of
 * thousands of ids) run through `validate`, `start`, `status` and the table end to end.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { cli, tempDir, writeFile } from "../helpers.ts";

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
