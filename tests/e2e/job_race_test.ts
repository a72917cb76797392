/**
 * `orchesjob-flow job` commands racing one another on one run key: whatever the interleaving, a run key
 * has at most one active job, so its command never runs twice at once.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { eventually, isStopped } from "../helpers.ts";
import { FlowEnv, type Json, step } from "./flow_env.ts";
import { spawnStopped } from "./stop_point.ts";

Deno.test({
  name: "a rerun that found its key's job finished, and a start then made one, is refused: one job runs",
  ignore: Deno.build.os !== "linux",
  sanitizeResources: false,
  async fn() {
    using env = new FlowEnv("builtin");
    const job = async (args: string[], extraEnv: Record<string, string> = {}) =>
      await env.run(["job", ...args], extraEnv);
    const runs = join(env.home, "runs");
    // Each run of the command notes its PID; NAP (from the environment of whoever starts it) says how long it runs.
    const command = ["sh", "-c", `echo "$$" >> '${runs}'; exec sleep "$NAP"`];
    const first = await job(["start", "--sync", "--run-key", "k", "--", ...command], { NAP: "0" });
    assert.equal(JSON.parse(first.stdout).status, "SUCCEEDED", first.stderr);

    // The rerun finds the key's job finished, then stops before the transaction that stores its job.
    const rerun = await spawnStopped(env, ["job", "rerun", "--run-key", "k"], "runner:launch-written", { NAP: "30" });
    // Meanwhile a start of the key (finished, so it may) makes a job that runs.
    const started = await job(["start", "--run-key", "k", "--", ...command], { NAP: "30" });
    const running = JSON.parse(started.stdout);
    assert.equal(running.accepted, true, started.stderr);
    assert.equal(running.status, "RUNNING");

    const output = await rerun.finish();
    try {
      assert.equal(output.code, 4, `the rerun made a second job beside the running one: ${output.stderr}`);
      assert.deepEqual(JSON.parse(output.stderr), { error: "Cannot rerun active job: status=RUNNING" });
      const active = JSON.parse((await job(["status", "--running"])).stdout);
      assert.deepEqual(active.map((row: { job_id: string }) => row.job_id), [running.job_id]);
      assert.equal(JSON.parse((await job(["status", "--run-key", "k", "--all"])).stdout).length, 2);
    } finally {
      for (const { job_id } of JSON.parse((await job(["status", "--running"])).stdout)) {
        await job(["abort", "--job-id", job_id, "--grace-seconds", "0"]);
      }
    }
    assert.equal(Deno.readTextFileSync(runs).trim().split("\n").length, 2, "the first job and the start's");
  },
});

Deno.test({
  name: "an unlock that found its key's job finished, and a start then made one, is refused: no unlock is stored",
  ignore: Deno.build.os !== "linux",
  sanitizeResources: false,
  async fn() {
    using env = new FlowEnv("builtin");
    const job = async (args: string[]) => await env.run(["job", ...args]);
    const first = await job(["start", "--sync", "--strict", "--run-key", "k", "--", "true"]);
    assert.equal(JSON.parse(first.stdout).status, "SUCCEEDED", first.stderr);

    // The unlock stops right before the write that stores it (before the fix, after its look at the job).
    const unlock = await spawnStopped(
      env,
      ["job", "unlock", "--run-key", "k", "--reason", "again"],
      "admin:unlock-write",
    );
    // Meanwhile a plain start of the key (finished, so it may) makes a job that runs.
    const started = await job(["start", "--run-key", "k", "--", "sleep", "30"]);
    const running = JSON.parse(started.stdout);
    assert.equal(running.accepted, true, started.stderr);
    assert.equal(running.status, "RUNNING");

    const output = await unlock.finish();
    try {
      assert.equal(output.code, 4, `the unlock was stored while the key's job runs: ${output.stdout}`);
      assert.deepEqual(JSON.parse(output.stderr), { error: "Cannot unlock active job: status=RUNNING" });
      assert.equal(output.stdout, "");
    } finally {
      await job(["abort", "--job-id", running.job_id, "--grace-seconds", "0"]);
    }
    // Nothing was stored: the key's job has ended, and a strict start still finds no unlock to use.
    const strict = JSON.parse((await job(["start", "--strict", "--run-key", "k", "--", "true"])).stdout);
    assert.equal(strict.accepted, false, "a strict start used an unlock stored while the job ran");
    assert.equal(strict.job_id, running.job_id);
  },
});

Deno.test({
  name: "a job clean that chose its jobs after a retry reopened their run keeps the run's ended, unrecorded job",
  ignore: Deno.build.os !== "linux",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    using env = new FlowEnv("builtin");
    const ok = join(env.home, "ok");
    const go = join(env.home, "go");
    // Fails until `ok` exists; then runs until `go` does.
    const command = `[ -f '${ok}' ] || exit 1; while [ ! -f '${go}' ]; do sleep 0.05; done`;
    const flow = env.flow("one.yaml", `flow_id: one\nsteps:\n  - {id: s, command: ${JSON.stringify(command)}}\n`);
    assert.equal((await env.json(["start", "--run-key", "r", flow], 1)).status, "FAILED");
    Deno.writeTextFileSync(ok, "");

    // The clean stops before it chooses its jobs (before the fix, after its look at which runs are unfinished).
    const clean = await spawnStopped(env, ["job", "clean", "--all"], "job-clean:select");
    // Meanwhile a retry reopens the run; its attempt 2 runs, and its driver is stopped before it sees the end.
    const retry = env.spawn(["retry", "--run-key", "r"]);
    const retryOutput = retry.output();
    await env.waitFor("r", "attempt 2's job running", (run: Json) => {
      const s = step(run, "s");
      return s.attempt_no === 2 && s.orchesjob_status?.status === "RUNNING";
    });
    Deno.kill(retry.pid, "SIGSTOP");
    await eventually("the retry's driver is stopped", () => isStopped(retry.pid));
    Deno.writeTextFileSync(go, "");
    await eventually("attempt 2's job has ended", async () => (await env.jobs("r:s:2"))[0]?.status === "SUCCEEDED");
    const ran = await env.status("r");
    assert.equal(step(ran, "s").status, "RUNNING", "the situation under test: an ended job its step has not recorded");

    const cleaned = await clean.finish();
    Deno.kill(retry.pid, "SIGCONT");
    const retried = await retryOutput;
    assert.equal(cleaned.code, 0, cleaned.stderr);
    const report = JSON.parse(cleaned.stdout);
    assert.deepEqual(
      (report.items ?? []).map((item: Json) => item.run_key),
      [],
      "the clean deleted jobs of a run a retry had reopened",
    );
    assert.deepEqual(report.skipped.map((item: Json) => item.run_key).sort(), ["r:s:1", "r:s:2"]);
    assert.equal(retried.code, 0, new TextDecoder().decode(retried.stderr));
    const final = await env.status("r");
    assert.equal(final.status, "SUCCEEDED");
    assert.equal(step(final, "s").orchesjob_status.status, "SUCCEEDED");
  },
});
