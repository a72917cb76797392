/**
 * An external orchesjob's `start` call orphaned by its driver's death: calls with a time limit run in
 * their own process group, so a SIGKILLed driver leaves its call running (e.g. waiting for orchesjob's
 * write lock). The next driver finds no job under the attempt's key and starts it; the orphan's call
 * arrives after that job ended. Without `--strict`, orchesjob makes a new job of a key whose job is
 * terminal: the attempt's command ran twice (found by `deno task chaos --external`).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { type FlowEnv, flowTest, type Json, step } from "./flow_env.ts";
import { eventually, processAlive, TEST_ENV, writeJobWrapper } from "../helpers.ts";
import { countLines, logged, waitForFile } from "./fault_helpers.ts";

/**
 * orchesjob (the `job` wrapper, with a home of its own) behind a wrapper whose first `start` writes its
 * PID to `pidFile` and waits for `release` before it goes on: a call held back, which outlives its driver.
 */
function heldFirstStart(env: FlowEnv) {
  const jobHome = join(env.home, "orchesjob");
  Deno.mkdirSync(jobHome);
  const inner = writeJobWrapper(jobHome, jobHome);
  const [claim, pidFile, release] = ["first-start", "held.pid", "release"].map((name) => join(env.home, name));
  const bin = join(env.home, "held-orchesjob");
  Deno.writeTextFileSync(
    bin,
    "#!/bin/sh\n" +
      `if [ "$1" = start ] && mkdir '${claim}' 2>/dev/null; then\n` +
      `  echo $$ > '${pidFile}.tmp' && mv '${pidFile}.tmp' '${pidFile}'\n` +
      `  ${waitForFile(release)}\n` +
      "fi\n" +
      `exec '${inner}' "$@"\n`,
  );
  Deno.chmodSync(bin, 0o755);
  return { bin, inner, pidFile, release };
}

/** Every job orchesjob has under `key`, newest first. */
async function jobsOf(bin: string, key: string): Promise<Json[]> {
  const out = await new Deno.Command(bin, {
    args: ["status", "--run-key", key, "--all"],
    env: TEST_ENV,
    stdout: "piped",
  })
    .output();
  assert.equal(out.code, 0, `status --run-key ${key} --all exited ${out.code}`);
  return JSON.parse(new TextDecoder().decode(out.stdout));
}

flowTest(
  ["builtin"],
  "external orchesjob: a start orphaned by its killed driver, arriving after the next driver's job ended, does not run the command again",
  async (env) => {
    const { bin, inner, pidFile, release } = heldFirstStart(env);
    const log = join(env.home, "ran");
    const file = env.flow(
      "one.yaml",
      `flow_id: one\nsteps:\n  - {id: a, strict: false, command: ${logged(log, "a")}}\n`,
    );

    // Driver A commits the intent and calls start, which is held: A is SIGKILLed, its call lives on.
    const driverA = env.spawn(["--orchesjob-bin", bin, "start", "-q", "--run-key", "k", file]);
    await eventually("driver A's start call is under way (held)", () => {
      try {
        return Deno.readTextFileSync(pidFile).trim() !== "";
      } catch {
        return false;
      }
    });
    const orphan = Number(Deno.readTextFileSync(pidFile).trim());
    driverA.kill("SIGKILL");
    assert.equal((await driverA.status).signal, "SIGKILL");
    assert.ok(processAlive(orphan), "driver A's start call outlives driver A (an orphan)");
    const crashed = step(await env.status("k"), "a");
    assert.deepEqual([crashed.status, crashed.attempt_no, crashed.orchesjob_status], ["RUNNING", 1, null]);

    // Driver B finds no job under k:a:1, starts it, and the run ends while the orphan still waits.
    const resumed = await env.json(["resume", "-q", "--run-key", "k"]);
    assert.equal(resumed.status, "SUCCEEDED", JSON.stringify(resumed));
    assert.ok(processAlive(orphan), "the orphaned call was still held when driver B's job ended");
    assert.deepEqual(countLines(log), { a: 1 });

    // The orphan's call now reaches orchesjob, whose job of the key has ended.
    Deno.writeTextFileSync(release, "");
    await eventually("the orphaned start call has returned", () => !processAlive(orphan));
    await eventually(
      "no job of k:a:1 is active",
      async () => (await jobsOf(inner, "k:a:1")).every((job) => !["STARTING", "RUNNING"].includes(job.status)),
    );
    assert.deepEqual(countLines(log), { a: 1 }, "the attempt's command ran once");
    const jobs = await jobsOf(inner, "k:a:1");
    assert.equal(jobs.length, 1, `one job under the attempt's key: ${JSON.stringify(jobs)}`);
    assert.equal(step(await env.status("k"), "a").orchesjob_status.job_id, jobs[0].job_id);
  },
);
