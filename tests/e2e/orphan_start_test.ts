/**
 * An external orchesjob's call orphaned by its driver's death: calls with a time limit run in their own
 * process group, so a SIGKILLed driver leaves its call running (e.g. waiting for orchesjob's write
 * lock). The next driver finds no job of the attempt under its key and starts it; the orphan's call
 * arrives after that job ended. Without `--strict`, orchesjob makes a new job of a key whose job is
 * terminal: the attempt's command ran twice (found by `deno task chaos --external`).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { type FlowEnv, flowTest, type Json, step } from "./flow_env.ts";
import { eventually, processAlive, writeJobWrapper } from "../helpers.ts";
import { countLines, jobsOf, logged, waitForFile } from "./fault_helpers.ts";

/**
 * orchesjob (the `job` wrapper, with a home of its own) behind a wrapper whose `nth` call of
 * `subcommand` writes its PID to `pidFile` and waits for `release` before it goes on: a call held
 * back, which outlives its driver.
 */
function heldCall(env: FlowEnv, subcommand: "start" | "unlock", nth: number) {
  const jobHome = join(env.home, "orchesjob");
  Deno.mkdirSync(jobHome);
  const inner = writeJobWrapper(jobHome, jobHome);
  const [calls, callLog, pidFile, release, failStarts] = ["calls", "calls.log", "held.pid", "release", "fail-starts"]
    .map((
      name,
    ) => join(env.home, name));
  Deno.mkdirSync(calls);
  const bin = join(env.home, "held-orchesjob");
  Deno.writeTextFileSync(
    bin,
    "#!/bin/sh\n" +
      `echo "$1" >> '${callLog}'\n` +
      // While `failStarts` exists, a new start fails as orchesjob's "database is locked" does (exit 1).
      `if [ "$1" = start ] && [ -e '${failStarts}' ]; then echo 'database is locked' >&2; exit 1; fi\n` +
      `if [ "$1" = ${subcommand} ]; then\n` +
      // Numbers the calls: mkdir makes each number once, whatever runs at the same time.
      `  i=1; while ! mkdir '${calls}'/$i 2>/dev/null; do i=$((i + 1)); done\n` +
      `  if [ $i = ${nth} ]; then\n` +
      `    echo $$ > '${pidFile}.tmp' && mv '${pidFile}.tmp' '${pidFile}'\n` +
      `    ${waitForFile(release)}\n` +
      "  fi\n" +
      "fi\n" +
      `exec '${inner}' "$@"\n`,
  );
  Deno.chmodSync(bin, 0o755);
  return { bin, inner, callLog, pidFile, release, failStarts };
}

/** A flow of one step `a`, not strict, that logs each run of its command to the returned `log`. */
function oneStep(env: FlowEnv): { file: string; log: string } {
  const log = join(env.home, "ran");
  const file = env.flow("one.yaml", `flow_id: one\nsteps:\n  - {id: a, strict: false, command: ${logged(log, "a")}}\n`);
  return { file, log };
}

/**
 * Driver A starts run k and is SIGKILLed while its held call waits (that call goes on without it);
 * returns the held call's PID.
 */
async function killedDuringHeldCall(env: FlowEnv, held: ReturnType<typeof heldCall>, file: string): Promise<number> {
  const driverA = env.spawn(["--orchesjob-bin", held.bin, "start", "-q", "--run-key", "k", file]);
  await eventually("driver A's call is under way (held)", () => {
    try {
      return Deno.readTextFileSync(held.pidFile).trim() !== "";
    } catch {
      return false;
    }
  });
  driverA.kill("SIGKILL");
  assert.equal((await driverA.status).signal, "SIGKILL");
  return Number(Deno.readTextFileSync(held.pidFile).trim());
}

/**
 * Driver A starts run k and is SIGKILLed while its held call waits; the call outlives it. Driver B
 * resumes the run to SUCCEEDED while the call still waits; then the call goes on, and returns.
 * Returns the subcommands called (in order) when A was killed.
 */
async function orphanedCallArrivesLate(env: FlowEnv, held: ReturnType<typeof heldCall>, file: string) {
  const orphan = await killedDuringHeldCall(env, held, file);
  const calledByA = Deno.readTextFileSync(held.callLog).split("\n").filter(Boolean);
  assert.ok(processAlive(orphan), "driver A's call outlives driver A (an orphan)");
  const crashed = step(await env.status("k"), "a");
  assert.deepEqual([crashed.status, crashed.attempt_no, crashed.orchesjob_status], ["RUNNING", 1, null]);

  const resumed = await env.json(["resume", "-q", "--run-key", "k"]);
  assert.equal(resumed.status, "SUCCEEDED", JSON.stringify(resumed));
  assert.ok(processAlive(orphan), "the orphaned call was still held when driver B's job ended");

  Deno.writeTextFileSync(held.release, "");
  await eventually("the orphaned call has returned", () => !processAlive(orphan));
  await eventually(
    "no job of k:a:1 is active",
    async () => (await jobsOf(held.inner, "k:a:1")).every((job) => !["STARTING", "RUNNING"].includes(job.status)),
  );
  return calledByA;
}

flowTest(
  ["builtin"],
  "external orchesjob: a start orphaned by its killed driver, arriving after the next driver's job ended, does not run the command again",
  async (env) => {
    const held = heldCall(env, "start", 1);
    const { file, log } = oneStep(env);
    await orphanedCallArrivesLate(env, held, file);
    assert.deepEqual(countLines(log), { a: 1 }, "the attempt's command ran once");
    const jobs = await jobsOf(held.inner, "k:a:1");
    assert.equal(jobs.length, 1, `one job under the attempt's key: ${JSON.stringify(jobs)}`);
    assert.equal(step(await env.status("k"), "a").orchesjob_status.job_id, jobs[0].job_id);
  },
);

/** Runs k to SUCCEEDED (call numbers: start 1), cleans it, and waits for a later second than its job's start. */
async function firstRunCleaned(env: FlowEnv, bin: string, file: string): Promise<Json> {
  const first = await env.json(["--orchesjob-bin", bin, "start", "-q", "--run-key", "k", file]);
  assert.equal(first.status, "SUCCEEDED", JSON.stringify(first));
  await env.json(["clean", "--older-than", "0"]);
  const earlier = step(first, "a").orchesjob_status;
  await eventually("a second has passed since the earlier job", () => Date.now() / 1000 >= earlier.started_at + 1);
  return earlier;
}

for (
  // The calls other than status up to the held one, last: the first run's start, then driver A's
  // start (the earlier run's job back), its unlock, and its start after the unlock.
  const [subcommand, nth, what, calls] of [
    ["unlock", 1, "its unlock", ["start", "start", "unlock"]],
    ["start", 3, "its start after the unlock", ["start", "start", "unlock", "start"]],
  ] as const
) {
  flowTest(
    ["builtin"],
    `external orchesjob, a run key used again after clean, step not strict: ${what} orphaned by its killed driver makes no second job`,
    async (env) => {
      const held = heldCall(env, subcommand, nth);
      const { file, log } = oneStep(env);
      const earlier = await firstRunCleaned(env, held.bin, file);
      const calledByA = await orphanedCallArrivesLate(env, held, file);
      assert.deepEqual(calledByA.filter((call) => call !== "status"), calls, "driver A was killed in the call held");
      assert.deepEqual(countLines(log), { a: 2 }, "the command ran once in each run");
      const jobs = await jobsOf(held.inner, "k:a:1");
      assert.deepEqual(jobs.map((job) => job.job_id).slice(1), [earlier.job_id]);
      assert.equal(jobs.length, 2, `the earlier run's job and this attempt's: ${JSON.stringify(jobs)}`);
      assert.equal(step(await env.status("k"), "a").orchesjob_status.job_id, jobs[0].job_id);
    },
  );
}

flowTest(
  ["builtin"],
  "external orchesjob: a start orphaned by its killed driver, arriving after a cancel of the run, does not run the command",
  async (env) => {
    const held = heldCall(env, "start", 1);
    const { file, log } = oneStep(env);
    const orphan = await killedDuringHeldCall(env, held, file);
    assert.ok(processAlive(orphan), "driver A's call outlives driver A (an orphan)");

    const cancelled = await env.json(["cancel", "--run-key", "k", "--grace-seconds", "1"]);
    assert.equal(cancelled.status, "CANCELLED", JSON.stringify(cancelled));
    assert.equal(step(cancelled, "a").status, "CANCELLED");
    assert.ok(processAlive(orphan), "the orphaned call was still held when the cancel ended");

    Deno.writeTextFileSync(held.release, "");
    await eventually("the orphaned call has returned", () => !processAlive(orphan));
    await eventually(
      "no job of k:a:1 is active",
      async () => (await jobsOf(held.inner, "k:a:1")).every((job) => !["STARTING", "RUNNING"].includes(job.status)),
    );
    assert.deepEqual(countLines(log), {}, "nothing of the cancelled run started after its cancel");
    // The cancel took the key with a job that does nothing, which the late strict start got back.
    const jobs = await jobsOf(held.inner, "k:a:1");
    assert.equal(jobs.length, 1, `one job under the attempt's key: ${JSON.stringify(jobs)}`);
    assert.equal(jobs[0].command[0], "true", JSON.stringify(jobs[0]));
    assert.equal(step(await env.status("k"), "a").orchesjob_status, null, "the attempt made no job of its own");
    // A retry of the cancelled run runs the step once, as attempt 2.
    const retried = await env.json(["retry", "-q", "--run-key", "k"]);
    assert.equal(retried.status, "SUCCEEDED", JSON.stringify(retried));
    assert.deepEqual(countLines(log), { a: 1 }, "the step's command ran once in all");
  },
);

flowTest(
  ["builtin"],
  "external orchesjob: a cancel whose fence start fails exits 5, retry is refused, and a second cancel fences the key before the orphaned start arrives",
  async (env) => {
    const held = heldCall(env, "start", 1);
    const { file, log } = oneStep(env);
    const orphan = await killedDuringHeldCall(env, held, file);

    // orchesjob cannot make the fence: the cancel ends all the same, and says the job may still run.
    Deno.writeTextFileSync(held.failStarts, "");
    const first = await env.run(["cancel", "--run-key", "k", "--grace-seconds", "1"]);
    assert.equal(first.code, 5, first.stderr);
    const errors = first.stderr.split("\n").filter(Boolean).map((line) => JSON.parse(line));
    assert.ok(errors.length >= 1 && errors.every((e) => typeof e === "object"), first.stderr);
    const a1 = step(JSON.parse(first.stdout), "a");
    assert.equal(a1.status, "CANCELLED");
    assert.match(a1.error, /^flow cancelled; abort failed: .*database is locked.*orchesjob run key k:a:1/, a1.error);
    assert.ok(processAlive(orphan), "the orphaned call was still held when the cancel ended");
    // A retry now could run attempt 2 beside the orphan's job: refused until a cancel gets through.
    const refused = await env.run(["retry", "-q", "--run-key", "k"]);
    assert.equal(refused.code, 2, refused.stderr);
    assert.match(refused.stderr, /cancel the run again first/);

    Deno.removeSync(held.failStarts);
    const second = await env.json(["cancel", "--run-key", "k", "--grace-seconds", "1"]);
    assert.equal(second.status, "CANCELLED", JSON.stringify(second));
    assert.equal(step(second, "a").error, "flow cancelled");

    Deno.writeTextFileSync(held.release, "");
    await eventually("the orphaned call has returned", () => !processAlive(orphan));
    const jobs = await jobsOf(held.inner, "k:a:1");
    assert.equal(jobs.length, 1, `one job under the attempt's key: ${JSON.stringify(jobs)}`);
    assert.equal(jobs[0].command[0], "true", "the second cancel's fence, which the late start got back");
    assert.deepEqual(countLines(log), {}, "nothing of the cancelled run ran");
    const retried = await env.json(["retry", "-q", "--run-key", "k"]);
    assert.equal(retried.status, "SUCCEEDED", JSON.stringify(retried));
    assert.equal(step(retried, "a").attempt_no, 2);
    assert.deepEqual(countLines(log), { a: 1 }, "the step's command ran once in all");
  },
);

for (
  const [subcommand, nth, what] of [["unlock", 1, "its unlock"], ["start", 3, "its start after the unlock"]] as const
) {
  flowTest(
    ["builtin"],
    `external orchesjob, a run key used again after clean, step not strict: ${what} orphaned by its killed driver, arriving after a cancel, runs nothing`,
    async (env) => {
      const held = heldCall(env, subcommand, nth);
      const { file, log } = oneStep(env);
      const earlier = await firstRunCleaned(env, held.bin, file);
      const orphan = await killedDuringHeldCall(env, held, file);
      assert.ok(processAlive(orphan), "driver A's call outlives driver A (an orphan)");

      const cancelled = await env.json(["cancel", "--run-key", "k", "--grace-seconds", "1"]);
      assert.equal(step(cancelled, "a").status, "CANCELLED", JSON.stringify(cancelled));
      assert.ok(processAlive(orphan), "the orphaned call was still held when the cancel ended");
      Deno.writeTextFileSync(held.release, "");
      await eventually("the orphaned call has returned", () => !processAlive(orphan));
      const jobs = await jobsOf(held.inner, "k:a:1");
      assert.ok(jobs.every((job) => job.job_id === earlier.job_id || job.command[0] === "true"), JSON.stringify(jobs));
      assert.deepEqual(countLines(log), { a: 1 }, "only the first run's command ran: the cancelled attempt's did not");
      // A late unlock stays unused: attempt 2 has a key of its own, and runs once.
      const retried = await env.json(["retry", "-q", "--run-key", "k"]);
      assert.equal(retried.status, "SUCCEEDED", JSON.stringify(retried));
      assert.equal(step(retried, "a").attempt_no, 2);
      assert.deepEqual(countLines(log), { a: 2 }, "once in each run");
    },
  );
}
