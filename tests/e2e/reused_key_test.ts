/**
 * A run key used again after `clean`, with an external orchesjob: orchesjob keeps its jobs, so the new
 * run's attempt keys (`<run>:<step>:<n>`) name the earlier run's jobs too. An attempt whose start is
 * unknown (its driver killed after the intent, or the start's answer lost) asks its key, and must not
 * take the earlier run's job, made before its intent, for its own.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { type FlowEnv, flowTest, type Json, step } from "./flow_env.ts";
import { eventually, TEST_ENV, writeJobWrapper } from "../helpers.ts";
import { countLines, jobsOf, logged, runCrashingAt } from "./fault_helpers.ts";

/** `orchesjob status --run-key KEY` through the wrapper. */
async function jobStatus(bin: string, key: string): Promise<Json> {
  const out = await new Deno.Command(bin, { args: ["status", "--run-key", key], env: TEST_ENV, stdout: "piped" })
    .output();
  assert.equal(out.code, 0, `status --run-key ${key} exited ${out.code}`);
  return JSON.parse(new TextDecoder().decode(out.stdout));
}

/** A flow of one step `a` that logs each run to `log`; orchesjob of its own, whose jobs the flow's clean does not reach. */
function setUp(env: FlowEnv, strict: boolean) {
  const jobHome = join(env.home, "orchesjob");
  Deno.mkdirSync(jobHome);
  const bin = writeJobWrapper(jobHome, jobHome);
  const log = join(env.home, "ran");
  const file = env.flow(
    "one.yaml",
    `flow_id: one\nsteps:\n  - {id: a, strict: ${strict}, command: ${logged(log, "a")}}\n`,
  );
  return { bin, log, start: ["--orchesjob-bin", bin, "start", "-q", "--run-key", "k", file] };
}

/**
 * The first run of key k, cleaned; then the same key again, its driver killed after the attempt's intent,
 * before orchesjob heard of it. Checks that the attempt is RUNNING with no job while its orchesjob key
 * still names the earlier run's job, which it returns.
 */
async function reusedAndCrashedAfterIntent(env: FlowEnv, bin: string, start: string[]): Promise<string> {
  const earlier = await firstRunCleaned(env, bin, start);
  await runCrashingAt(env, "driver:after-intent", start);
  const crashed = step(await env.status("k"), "a");
  assert.deepEqual([crashed.status, crashed.attempt_no, crashed.orchesjob_status], ["RUNNING", 1, null]);
  assert.equal((await jobStatus(bin, "k:a:1")).job_id, earlier, "the attempt's key names the earlier job");
  return earlier;
}

/** Runs `k` to SUCCEEDED, cleans it, and waits for a later second than its job's start (orchesjob's times are whole seconds). */
async function firstRunCleaned(env: FlowEnv, bin: string, start: string[]): Promise<string> {
  const first = await env.json(start);
  assert.equal(first.status, "SUCCEEDED", JSON.stringify(first));
  const earlier = step(first, "a").orchesjob_status.job_id;
  const cleaned = await env.json(["clean", "--older-than", "0"]);
  assert.deepEqual(cleaned.runs.map((r: Json) => r.run_key), ["k"]);
  const kept = await jobStatus(bin, "k:a:1");
  assert.deepEqual([kept.job_id, kept.status], [earlier, "SUCCEEDED"], "orchesjob keeps the earlier run's job");
  await eventually("a second has passed since the earlier job", () => Date.now() / 1000 >= kept.started_at + 1);
  return earlier;
}

flowTest(
  ["builtin"],
  "a run key used again after clean, strict step: orchesjob's earlier job is not taken as the attempt's (FAILED, saying why)",
  async (env) => {
    const { bin, log, start } = setUp(env, true);
    const earlier = await firstRunCleaned(env, bin, start);
    const again = await env.json(start, 1);
    assert.equal(again.status, "FAILED", JSON.stringify(again));
    const a = step(again, "a");
    assert.equal(a.orchesjob_status, null, "no job of an earlier run is recorded");
    assert.match(
      a.error,
      new RegExp(`^start refused: orchesjob has run key k:a:1 from before this attempt \\(job ${earlier}, SUCCEEDED`),
    );
    assert.deepEqual(
      countLines(log),
      { a: 1 },
      "the command ran in the first run only, and orchesjob was not made to run it",
    );
    assert.equal(
      (await jobStatus(bin, "k:a:1")).job_id,
      earlier,
      "orchesjob's job of the key is still the earlier one",
    );
  },
);

flowTest(
  ["builtin"],
  "a run key used again after clean: an attempt killed after its intent does not take the earlier run's job",
  async (env) => {
    const { bin, log, start } = setUp(env, false);
    const earlier = await reusedAndCrashedAfterIntent(env, bin, start);

    const final = await env.json(start);
    assert.equal(final.status, "SUCCEEDED", JSON.stringify(final));
    const job = step(final, "a").orchesjob_status;
    assert.notEqual(job.job_id, earlier, "the attempt has a job of its own");
    // Every start is strict: the job is made with the unlock the driver stored for the earlier run's key.
    assert.match(job.rerun_reason, new RegExp(`step a attempt 1 \\(not strict\\): job ${earlier} of this run key`));
    assert.equal(job.rerun_of_job_id, earlier);
    assert.deepEqual(countLines(log), { a: 2 }, "the command ran once in each run");
  },
);

flowTest(
  ["builtin"],
  "a run key used again after clean: a cancel of an attempt killed after its intent does not take the earlier run's job's end",
  async (env) => {
    const { bin, log, start } = setUp(env, true);
    await reusedAndCrashedAfterIntent(env, bin, start);

    // The abort by the attempt's key reaches the earlier run's job, which ended SUCCEEDED.
    const cancelled = await env.json(["cancel", "--run-key", "k"]);
    assert.equal(cancelled.status, "CANCELLED", JSON.stringify(cancelled));
    const a = step(cancelled, "a");
    assert.deepEqual([a.status, a.orchesjob_status], ["CANCELLED", null], JSON.stringify(a));
    assert.deepEqual(countLines(log), { a: 1 }, "the command ran in the first run only");
  },
);

flowTest(
  ["builtin"],
  "a run key used again after clean, step not strict: a driver killed between the unlock and the start leaves one job",
  async (env) => {
    const { bin, log, start } = setUp(env, false);
    const earlier = await firstRunCleaned(env, bin, start);
    await runCrashingAt(env, "driver:after-unlock", start);
    const crashed = step(await env.status("k"), "a");
    assert.deepEqual([crashed.status, crashed.attempt_no, crashed.orchesjob_status], ["RUNNING", 1, null]);
    assert.equal(
      (await jobStatus(bin, "k:a:1")).job_id,
      earlier,
      "the unlock made no job: the key names the earlier one",
    );
    assert.deepEqual(countLines(log), { a: 1 }, "nothing ran between the unlock and the crash");

    const final = await env.json(start);
    assert.equal(final.status, "SUCCEEDED", JSON.stringify(final));
    const job = step(final, "a").orchesjob_status;
    assert.notEqual(job.job_id, earlier, "the attempt has a job of its own");
    assert.equal(job.rerun_of_job_id, earlier);
    assert.deepEqual(countLines(log), { a: 2 }, "the command ran once in each run");
    // A second look changes nothing: the attempt's key has two jobs, the earlier run's and this one.
    assert.equal((await env.json(start)).status, "SUCCEEDED");
    const history = await jobsOf(bin, "k:a:1");
    assert.deepEqual(history.map((j: Json) => j.job_id).sort(), [earlier, job.job_id].sort());
    assert.deepEqual(countLines(log), { a: 2 });
  },
);
