/** A job whose starter died between its row and its supervisor is launched by the next reader, as the starter would have. */
import assert from "node:assert/strict";
import { join } from "node:path";
import { cli, eventually, tempDir } from "../helpers.ts";

Deno.test("a reader relaunches an unlaunched job in the starter's directory and environment, not its own", async () => {
  using home = tempDir();
  using first = tempDir();
  using second = tempDir();
  const out = join(home.path, "out");
  const crashLog = join(home.path, "crash.log");
  const command = ["sh", "-c", `printf '%s %s' "$MARK" "$(pwd)" > '${out}'`];
  const started = await cli(["job", "start", "--run-key", "k", "--", ...command], {
    cwd: first.path,
    env: {
      ORCHESJOB_FLOW_HOME: home.path,
      MARK: "first",
      ORCHESJOB_FLOW_CRASH_AT: "runner:after-job-row",
      ORCHESJOB_FLOW_CRASH_LOG: crashLog,
    },
  });
  // The starter really died after committing the job row and before launching anything.
  assert.match(Deno.readTextFileSync(crashLog), /^runner:after-job-row \d+\n$/);
  assert.equal(started.stdout, "");
  assert.throws(() => Deno.statSync(out), Deno.errors.NotFound);
  const read = await cli(["job", "status", "--run-key", "k"], {
    cwd: second.path,
    env: { ORCHESJOB_FLOW_HOME: home.path, MARK: "second" },
  });
  assert.equal(read.code, 0, read.stderr);
  await eventually("the relaunched job wrote its marker", () => {
    try {
      return Deno.readTextFileSync(out) !== "";
    } catch {
      return false;
    }
  });
  assert.equal(Deno.readTextFileSync(out), `first ${Deno.realPathSync(first.path)}`);
  await eventually("the job is SUCCEEDED", async () => {
    const status = await cli(["job", "status", "--run-key", "k"], { env: { ORCHESJOB_FLOW_HOME: home.path } });
    return JSON.parse(status.stdout).status === "SUCCEEDED";
  });
});
