/** A state file written before this build's fields existed still reads back, and its runs still resume. */
import assert from "node:assert/strict";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { definitionHash, denormalizeFlow, loadFlow, normalizeFlow } from "../../src/flow/mod.ts";
import { MIGRATIONS } from "../../src/store/schema.ts";
import { openDatabase, RunStore } from "../../src/store/mod.ts";
import { REPO, tempDir } from "../helpers.ts";
import { loadYamlLibrary } from "../../src/flow/mod.ts";

await loadYamlLibrary();

Deno.test("a run stored at schema version 2 reads back with the new fields at their defaults and its hash", () => {
  using dir = tempDir();
  const path = join(dir.path, "old.sqlite3");
  const old = new DatabaseSync(path);
  old.exec("CREATE TABLE schema_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)");
  for (const sql of MIGRATIONS.slice(0, 2)) old.exec(sql);
  old.exec("INSERT INTO schema_meta VALUES ('schema_version', '2')");
  // What the previous build stored for examples/daily-import.yaml.
  const flow = loadFlow(Deno.readTextFileSync(join(REPO, "examples", "daily-import.yaml")), "daily-import.yaml");
  const stored = {
    flow_id: "daily-import",
    steps: flow.steps.map((s) => ({
      id: s.id,
      command: s.command,
      when: normalizeFlow(flow).steps.find((n) => n.id === s.id)!.when,
      depends_on: s.dependsOn,
      waits_for: s.waitsFor,
      retries: s.retries,
      retry_delay_sec: s.retryDelaySec,
      timeout_sec: s.timeoutSec,
      strict: s.strict,
      start_timeout_sec: s.startTimeoutSec,
    })),
  };
  old.prepare(
    `INSERT INTO flow_runs (run_key, flow_id, status, definition, definition_hash, executor, started_at)
     VALUES ('r', 'daily-import', 'RUNNING', ?, 'h', '{"kind":"builtin"}', 1)`,
  ).run(JSON.stringify(stored));
  old.prepare("INSERT INTO flow_steps (run_key, step_id, position, status) VALUES ('r', 'download', 0, 'PENDING')")
    .run();
  old.close();

  const db = openDatabase(path);
  const run = new RunStore(db).load("r")!;
  assert.equal(run.notBefore, null);
  assert.deepEqual(run.steps[0].retryHistory, []);
  const definition = denormalizeFlow(run.definition());
  assert.deepEqual(definition.steps[0].env, {});
  assert.equal(definition.steps[0].cwd, null);
  assert.equal(definition.maxParallel, null);
  // The same file loaded by this build hashes as the stored definition did.
  assert.deepEqual(normalizeFlow(definition), stored);
  assert.equal(definitionHash(definition), definitionHash(flow));
  db.close();
});
