/**
 * RunStore.load reads a run without its definition's text, which it reads only when asked: that text is
 * read by the hash the run was loaded with, so a run key removed and started again with another flow
 * in between cannot pass its definition off as the loaded run's.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { DamagedRunError } from "../../src/domain/mod.ts";
import { normalizeFlow } from "../../src/flow/normalize.ts";
import { openDatabase, RunStore } from "../../src/store/mod.ts";
import { tempDir } from "../helpers.ts";
import { chainFlow } from "../engine/flows.ts";

function newRun(runs: RunStore, steps: number, hash: string) {
  const flow = chainFlow(steps);
  runs.create({
    runKey: "r",
    definition: normalizeFlow(flow),
    definitionHash: hash,
    flowFile: null,
    executor: { kind: "builtin" },
  }, 1);
}

Deno.test("a loaded run reads its definition when asked, and only the definition of the hash it was loaded with", () => {
  using dir = tempDir();
  const path = join(dir.path, "state.sqlite3");
  const db = openDatabase(path);
  const other = openDatabase(path);
  try {
    const runs = new RunStore(db);
    newRun(runs, 3, "sha256:first");
    const loaded = runs.load("r")!;
    assert.deepEqual(loaded.steps.map((step) => step.id), ["s0", "s1", "s2"]);
    assert.deepEqual(loaded.definition().steps.map((step) => step.id), ["s0", "s1", "s2"]);

    // Another process removes the run and starts the key again with another flow.
    other.exec("DELETE FROM flow_runs WHERE run_key = 'r'");
    newRun(new RunStore(other), 2, "sha256:second");
    assert.equal(runs.load("r")!.definitionHash, "sha256:second", "the key now names the second run");
    assert.throws(
      () => loaded.definition(),
      (error) => error instanceof DamagedRunError && /flow_runs\.definition.*removed or replaced/.test(error.message),
    );
  } finally {
    other.close();
    db.close();
  }
});
