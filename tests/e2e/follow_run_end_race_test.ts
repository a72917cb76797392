/**
 * A follower that read the run while its driver still held it, and asks for the driver only after
 * the driver ended the run and let go of its lock (a test-only stop point holds it in that window):
 * it must not say that nobody drives the run. `watch --no-advance` used to print "Driver: none;
 * resume with: …" for a run that had SUCCEEDED (seen on a loaded CI machine), and `logs --follow`
 * a hint to resume it before saying that the step would never start.
 */
import assert from "node:assert/strict";
import { eventually } from "../helpers.ts";
import { driverHolder } from "../../src/store/mod.ts";
import { type FlowEnv, flowTest } from "./flow_env.ts";
import { gatedRun as gatedRunOf } from "./fault_helpers.ts";
import { builtin } from "./operator_env.ts";
import { spawnStopped } from "./stop_point.ts";
import { stateFile } from "./write_lock.ts";

/** A run driven in the background whose step `hold` runs until the file `go` is made; `never` waits on its failure. */
async function gatedRun(env: FlowEnv, runKey: string): Promise<string> {
  return (await gatedRunOf(env, runKey, `{id: never, when: "!hold", command: ["true"]}`)).go;
}

/** Lets the run end, and waits until its driver has let go of the run. */
async function endRun(env: FlowEnv, runKey: string, go: string): Promise<void> {
  assert.notEqual(await driverHolder(stateFile(env), runKey), null, "a driver holds the run before it ends");
  Deno.writeTextFileSync(go, "");
  await env.waitFor(runKey, "the run's end", (run) => run.status === "SUCCEEDED");
  await eventually("the driver lets go of the run", async () => (await driverHolder(stateFile(env), runKey)) === null);
}

flowTest(builtin, "watch --no-advance that asks for the driver after the run ended says nothing of it", async (env) => {
  const go = await gatedRun(env, "w");
  const watch = await spawnStopped(
    env,
    ["watch", "--run-key", "w", "--interval", "0.1", "--no-advance", "--mode", "append"],
    "follow:run-read",
  );
  await endRun(env, "w", go);
  const result = await watch.finish();
  assert.equal(result.stderr, "");
  assert.equal(result.code, 0);
  assert.match(result.stdout, /SUCCEEDED/);
});

flowTest(
  builtin,
  "logs --follow of a step that will never start, asked after the run ended: no resume hint",
  async (env) => {
    const go = await gatedRun(env, "l");
    const logs = await spawnStopped(env, ["logs", "--run-key", "l", "--step", "never", "--follow"], "follow:run-read");
    await endRun(env, "l", go);
    const result = await logs.finish();
    assert.equal(result.code, 3, result.stderr);
    const lines = result.stderr.split("\n").filter(Boolean).map((line) => JSON.parse(line));
    assert.equal(lines.length, 1, result.stderr);
    assert.match(lines[0].error, /step never has not started, and will not: run l ended SUCCEEDED/);
  },
);

for (const format of ["json", "table"]) {
  flowTest(
    builtin,
    `status --format ${format} read as the run ends: no "Driver: none" for a run that ended`,
    async (env) => {
      const go = await gatedRun(env, "s");
      const status = await spawnStopped(env, ["status", "--run-key", "s", "--format", format], "status:run-read");
      await endRun(env, "s", go);
      const result = await status.finish();
      assert.equal(result.code, 0, result.stderr);
      assert.equal(result.stderr, "");
      if (format === "json") {
        const run = JSON.parse(result.stdout);
        assert.deepEqual([run.status, run.driver], ["SUCCEEDED", null]);
      } else {
        assert.doesNotMatch(result.stdout, /Driver: none/);
        assert.match(result.stdout, /SUCCEEDED/);
      }
    },
  );
}
