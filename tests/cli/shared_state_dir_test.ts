/**
 * Two state files in one directory (`--db /tmp/a.db`, `--db /tmp/b.db`) share `locks/` and `logs/`,
 * whose files are named by run key. A run key that one of them drives is refused to the other, rather
 * than created there undriven and reported as driven by the first file's driver.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { cli, errorLine, eventually, tempDir, writeFile } from "../helpers.ts";

Deno.test("start of a run key that another state file of the directory drives: exit 2, nothing stored", async () => {
  using dir = tempDir();
  const go = join(dir.path, "go");
  const marks = join(dir.path, "marks");
  const flow = writeFile(
    dir.path,
    "flow.yaml",
    `flow_id: shared\nsteps:\n  - id: a\n    command: "echo run >> '${marks}'; while [ ! -f '${go}' ]; do sleep 0.05; done"\n`,
  );
  const a = ["--db", join(dir.path, "a.sqlite3"), "--executor", "builtin", "--poll-interval", "0.1"];
  const b = ["--db", join(dir.path, "b.sqlite3"), "--executor", "builtin", "--poll-interval", "0.1"];
  try {
    const detached = await cli([...a, "start", "-d", "--run-key", "X", flow]);
    assert.equal(detached.code, 0, detached.stderr);
    const driver = JSON.parse(detached.stdout).pid;
    assert.equal(JSON.parse(detached.stdout).detached, true);
    // The situation under test: a's driver holds run X's lock, in the directory b's file shares.
    const aStatus = await cli([...a, "status", "--run-key", "X"]);
    assert.deepEqual(JSON.parse(aStatus.stdout).driver, { pid: driver });

    for (const args of [["-d"], ["-q"]]) {
      const refused = await cli([...b, "start", ...args, "--run-key", "X", flow]);
      assert.equal(refused.code, 2, refused.stderr);
      assert.equal(refused.stdout, "");
      assert.match(
        errorLine(refused).error,
        new RegExp(
          `^start: run key X is in use in .* by another state file: process ${driver} drives its run there, holding the driver lock`,
        ),
      );
      const bStatus = await cli([...b, "status", "--run-key", "X"]);
      assert.equal(bStatus.code, 3, `b.sqlite3 stored run X: ${bStatus.stdout}`);
    }
    // Another run key of b runs beside it; a's run goes on and ends, its step run once.
    const other = await cli([...b, "start", "-d", "--run-key", "Y", flow]);
    assert.equal(JSON.parse(other.stdout).detached, true, other.stderr);
    Deno.writeTextFileSync(go, "");
    for (const [db, key] of [[a, "X"], [b, "Y"]] as const) {
      const waited = await cli([...db, "wait", "--run-key", key, "--timeout", "120"]);
      assert.equal(waited.code, 0, waited.stderr);
    }
    assert.equal(Deno.readTextFileSync(marks), "run\nrun\n");
  } finally {
    Deno.writeTextFileSync(go, "");
    await eventually("no driver left", async () => {
      const runs = await cli([...a, "list"]);
      return JSON.parse(runs.stdout).every((run: { driver: unknown }) => run.driver === null);
    });
  }
});
