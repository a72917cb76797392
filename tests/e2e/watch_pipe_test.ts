/**
 * `watch … | head -1`: once its reader is gone, watch ends at the next table it would print (130: the
 * run has not ended and goes on), as `logs --follow` does, instead of following the run to its end.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { CLI, eventually, processAlive, tempDir, TEST_ENV, writeFile } from "../helpers.ts";

Deno.test("watch whose stdout pipe was closed ends at its next table; the run goes on", async () => {
  using dir = tempDir();
  const [goA, goB] = [join(dir.path, "go-a"), join(dir.path, "go-b")];
  const wait = (file: string) => `"while [ ! -f '${file}' ]; do sleep 0.05; done"`;
  const flow = writeFile(
    dir.path,
    "flow.yaml",
    `flow_id: piped\nsteps:\n  - {id: a, command: ${wait(goA)}}\n  - {id: b, depends_on: [a], command: ${wait(goB)}}\n`,
  );
  const db = ["--db", join(dir.path, "state", "s.sqlite3"), "--executor", "builtin", "--poll-interval", "0.1"];
  const run = async (args: string[]) => {
    const out = await new Deno.Command(CLI[0], { args: [...CLI.slice(1), ...db, ...args], env: TEST_ENV }).output();
    return { code: out.code, stdout: new TextDecoder().decode(out.stdout) };
  };
  try {
    assert.equal((await run(["start", "-d", "--run-key", "w1", flow])).code, 0);
    // watch, its stdout a pipe that `head -1` closes after the first line of the first table.
    const shell = new Deno.Command("/bin/bash", {
      args: [
        "-c",
        // "closed" is made once head has exited and nothing else reads the pipe.
        '"$@" --mode append --interval 0.1 | { head -1 > "$D/head"; exec 0<&-; : > "$D/closed"; }; ' +
        'echo "${PIPESTATUS[0]}" > "$D/rc.tmp"; mv "$D/rc.tmp" "$D/rc"',
        "bash",
        ...CLI,
        ...db,
        "watch",
        "--run-key",
        "w1",
      ],
      env: { ...TEST_ENV, D: dir.path },
    }).spawn();
    await eventually("the pipe was closed", () => {
      try {
        Deno.statSync(join(dir.path, "closed"));
        return true;
      } catch {
        return false;
      }
    });
    assert.match(Deno.readTextFileSync(join(dir.path, "head")), /^Flow: piped/);
    // Something changes (a ends, b starts): watch prints a table into the closed pipe.
    Deno.writeTextFileSync(goA, "");
    await eventually("watch ended", () => {
      try {
        return Deno.readTextFileSync(join(dir.path, "rc")).trim() !== "";
      } catch {
        return false;
      }
    });
    assert.equal(Deno.readTextFileSync(join(dir.path, "rc")).trim(), "130");
    await shell.status;
    // The situation under test: the run had not ended, and its driver still drives it.
    const status = JSON.parse((await run(["status", "--run-key", "w1"])).stdout);
    assert.equal(status.status, "RUNNING");
    assert.ok(status.driver?.pid && processAlive(status.driver.pid), JSON.stringify(status.driver));
  } finally {
    Deno.writeTextFileSync(goA, "");
    Deno.writeTextFileSync(goB, "");
  }
  assert.equal((await run(["wait", "--run-key", "w1", "--timeout", "120"])).code, 0);
});
