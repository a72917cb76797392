/**
 * RunStore.load reads a run without its definition's text, which it reads only when asked: that text is
 * read by the hash the run was loaded with, so a run key removed and started again with another flow
 * in between cannot pass its definition off as the loaded run's. A long text is stored in parts
 * (src/store/definition_text.ts) and read back whole.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { DamagedRunError, type NormalizedFlow } from "../../src/domain/mod.ts";
import { normalizeFlow } from "../../src/flow/normalize.ts";
import { type Database, openDatabase, openDatabaseReadOnly, RunStore } from "../../src/store/mod.ts";
import { DEFINITION_PART_CHARS } from "../../src/store/definition_text.ts";
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

/** Runs `test` with two connections to one new state file, as two processes would have. */
function withTwoConnections(test: (db: Database, other: Database) => void): void {
  using dir = tempDir();
  const path = join(dir.path, "state.sqlite3");
  const db = openDatabase(path);
  const other = openDatabase(path);
  try {
    test(db, other);
  } finally {
    other.close();
    db.close();
  }
}

Deno.test("a loaded run reads its definition when asked, and only the definition of the hash it was loaded with", () => {
  withTwoConnections((db, other) => {
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
  });
});

/** A two-step chain whose first command is `echo TEXT`, stored as run `runKey`. */
function createWithEcho(runs: RunStore, runKey: string, text: string, hash: string): NormalizedFlow {
  const definition = normalizeFlow(chainFlow(2));
  definition.steps[0].command = ["echo", text];
  runs.create({ runKey, definition, definitionHash: hash, flowFile: null, executor: { kind: "builtin" } }, 1);
  return definition;
}

function count(db: Database, sql: string, ...params: string[]): number {
  return (db.prepare(sql).get(...params) as { n: number }).n;
}

Deno.test("a definition longer than one part is stored in parts, reads back whole elsewhere, and goes with its run", () => {
  withTwoConnections((db, other) => {
    const runs = new RunStore(db);
    // Two runs whose emoji sit one character apart, so a part boundary falls inside a pair in one of them.
    for (const pad of ["", "p"]) {
      const definition = createWithEcho(runs, `r${pad}`, pad + "😀".repeat(DEFINITION_PART_CHARS), `h${pad}`);
      const parts = count(other, "SELECT count(*) AS n FROM flow_definition_parts WHERE run_key = ?", `r${pad}`);
      assert.ok(parts >= 2, `run r${pad} has ${parts} parts beyond the first`);
      assert.deepEqual(new RunStore(other).load(`r${pad}`)!.definition(), definition);
    }
    // SQLite's length() counts code points: the JavaScript lengths of the parts tell where the cuts fell.
    const texts = other.prepare(
      "SELECT definition AS text FROM flow_runs UNION ALL SELECT text FROM flow_definition_parts",
    )
      .all() as { text: string }[];
    const shortened = texts.filter((row) => row.text.length === DEFINITION_PART_CHARS - 1).length;
    assert.ok(shortened > 0, "no part was cut short before a surrogate pair");

    assert.equal(runs.delete("r", ["PENDING"]), true);
    const left = count(other, "SELECT count(*) AS n FROM flow_definition_parts WHERE run_key = 'r'");
    assert.equal(left, 0, "the deleted run's parts are gone with it");
  });
});

Deno.test("parts left behind by a run deleted without foreign keys are not read into a new run of its key", () => {
  withTwoConnections((db, other) => {
    const runs = new RunStore(db);
    createWithEcho(runs, "r", "x".repeat(DEFINITION_PART_CHARS * 2), "h1");
    // What an admin's `sqlite3` shell does: foreign keys are off there, so nothing cascades.
    db.exec("PRAGMA foreign_keys = OFF");
    db.exec("DELETE FROM flow_steps WHERE run_key = 'r'; DELETE FROM flow_runs WHERE run_key = 'r'");
    assert.ok(count(db, "SELECT count(*) AS n FROM flow_definition_parts") > 0, "the deletion left parts behind");
    db.exec("PRAGMA foreign_keys = ON");
    const small = createWithEcho(runs, "r", "small", "h2");
    assert.deepEqual(new RunStore(other).load("r")!.definition(), small);
  });
});

Deno.test("a reader of a file of schema 6 (no parts table) reads its runs, and a long one once a writer migrated it", () => {
  using dir = tempDir();
  const path = join(dir.path, "state.sqlite3");
  const writer = openDatabase(path);
  const short = createWithEcho(new RunStore(writer), "old", "short", "h1");
  // The file as the release of schema 6 left it.
  writer.exec("DROP TABLE flow_definition_parts; UPDATE schema_meta SET value = '6' WHERE key = 'schema_version'");
  writer.close();
  const reader = openDatabaseReadOnly(path);
  try {
    const runs = new RunStore(reader);
    assert.deepEqual(runs.load("old")!.definition(), short);
    // Another process migrates the file and stores a long definition while the reader keeps it open.
    const migrating = openDatabase(path);
    const long = createWithEcho(new RunStore(migrating), "new", "x".repeat(DEFINITION_PART_CHARS * 2), "h2");
    migrating.close();
    assert.deepEqual(runs.load("new")!.definition(), long, "the parts are read once the table is there");
    assert.deepEqual(runs.load("old")!.definition(), short);
  } finally {
    reader.close();
  }
});
