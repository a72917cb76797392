/**
 * Two state files in one directory (`--db /tmp/a.db`, `--db /tmp/b.db`) share `locks/` and `logs/`,
 * whose files are named by run key. A run key that one of them drives is refused to the other, rather
 * than created there undriven and reported as driven by the first file's driver.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { CLI, cli, errorLine, eventually, isStopped, tempDir, TEST_ENV, writeFile } from "../helpers.ts";

/**
 * Two state files in `dir` (the global options of each, `a` and `b`), and a one-step flow whose step
 * runs `before`, then waits until the file `go` appears.
 */
function twoStateFiles(dir: string, before = "") {
  const go = join(dir, "go");
  const flow = writeFile(
    dir,
    "flow.yaml",
    `flow_id: shared\nsteps:\n  - id: a\n    command: "${before}while [ ! -f '${go}' ]; do sleep 0.05; done"\n`,
  );
  const db = (file: string) => ["--db", join(dir, file), "--executor", "builtin", "--poll-interval", "0.1"];
  return { go, flow, a: db("a.sqlite3"), b: db("b.sqlite3") };
}

Deno.test("start of a run key that another state file of the directory drives: exit 2, nothing stored", async () => {
  using dir = tempDir();
  const marks = join(dir.path, "marks");
  const { go, flow, a, b } = twoStateFiles(dir.path, `echo run >> '${marks}'; `);
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

Deno.test("start -d of a run key created in two state files at once: the one whose driver lost says so, not detached: false", async () => {
  using dir = tempDir();
  const { go, flow, a, b } = twoStateFiles(dir.path);
  const stops = join(dir.path, "stops.log");
  const spawn = (args: string[], env: Record<string, string> = {}) =>
    new Deno.Command(CLI[0], {
      args: [...CLI.slice(1), ...args],
      env: { ...TEST_ENV, ...env },
      stdout: "piped",
      stderr: "piped",
    }).spawn();
  const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  // a's start -d has created its run X and stops under its launch gate, before it launches a driver.
  const first = spawn([...a, "start", "-d", "--run-key", "X", flow], {
    ORCHESJOB_FLOW_STOP_AT: "launch:gate-taken",
    ORCHESJOB_FLOW_CRASH_LOG: stops,
  });
  const firstOut = first.output();
  try {
    await eventually("a's start -d stopped under its launch gate", () => {
      try {
        return Deno.readTextFileSync(stops) === `launch:gate-taken ${first.pid}\n` && isStopped(first.pid);
      } catch {
        return false;
      }
    });
    // b's start -d finds no driver of X yet: it creates its own run X and waits for the launch gate,
    // which state files in one directory share by run key.
    const second = spawn([...b, "start", "-d", "--run-key", "X", flow]);
    const secondOut = second.output();
    await eventually("b stored its run X", async () => (await cli([...b, "status", "--run-key", "X"])).code === 0);
    Deno.kill(first.pid, "SIGCONT");
    const detached = await firstOut;
    assert.equal(detached.code, 0, decode(detached.stderr));
    const driver = JSON.parse(decode(detached.stdout)).pid;
    assert.equal(JSON.parse(decode(detached.stdout)).detached, true);
    // b gets the gate once a's driver holds X's lock: that driver drives a's run, not b's.
    const result = await secondOut;
    const [code, stdout, stderr] = [result.code, decode(result.stdout), decode(result.stderr)];
    assert.equal(code, 2, `b's start -d: ${stdout}${stderr}`);
    assert.match(
      JSON.parse(stderr.trim()).error,
      new RegExp(`^start: run key X is in use in .* by another state file: process ${driver} drives its run there`),
    );
  } finally {
    Deno.writeTextFileSync(go, "");
    try {
      Deno.kill(first.pid, "SIGCONT");
    } catch { /* ended */ }
    await eventually("no driver left", async () => {
      const runs = await cli([...a, "list"]);
      return JSON.parse(runs.stdout).every((run: { driver: unknown }) => run.driver === null);
    });
  }
});
