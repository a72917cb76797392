/**
 * `orchesjob-flow job` commands racing one another on one run key: whatever the interleaving, a run key
 * has at most one active job, so its command never runs twice at once.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { CLI, cli, eventually, isStopped, tempDir, TEST_ENV } from "../helpers.ts";
import { readLog } from "./stop_point.ts";

Deno.test({
  name: "a rerun that found its key's job finished, and a start then made one, is refused: one job runs",
  ignore: Deno.build.os !== "linux",
  sanitizeResources: false,
  async fn() {
    using home = tempDir();
    const env = { ORCHESJOB_FLOW_HOME: home.path };
    const runs = join(home.path, "runs");
    // Each run of the command notes its PID; NAP (from the environment of whoever starts it) says how long it runs.
    const command = ["sh", "-c", `echo "$$" >> '${runs}'; exec sleep "$NAP"`];
    const first = await cli(["job", "start", "--sync", "--run-key", "k", "--", ...command], {
      env: { ...env, NAP: "0" },
    });
    assert.equal(JSON.parse(first.stdout).status, "SUCCEEDED", first.stderr);

    // The rerun finds the key's job finished, then stops before the transaction that stores its job.
    const log = join(home.path, "stop.log");
    const rerun = new Deno.Command(CLI[0], {
      args: [...CLI.slice(1), "job", "rerun", "--run-key", "k"],
      env: {
        ...TEST_ENV,
        ...env,
        NAP: "30",
        ORCHESJOB_FLOW_STOP_AT: "runner:launch-written",
        ORCHESJOB_FLOW_CRASH_LOG: log,
      },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const rerunOutput = rerun.output();
    await eventually(
      "the rerun stopped before storing its job",
      () => readLog(log) === `runner:launch-written ${rerun.pid}\n` && isStopped(rerun.pid),
    );
    // Meanwhile a start of the key (finished, so it may) makes a job that runs.
    const started = await cli(["job", "start", "--run-key", "k", "--", ...command], { env: { ...env, NAP: "30" } });
    const running = JSON.parse(started.stdout);
    assert.equal(running.accepted, true, started.stderr);
    assert.equal(running.status, "RUNNING");

    Deno.kill(rerun.pid, "SIGCONT");
    const output = await rerunOutput;
    const stderr = new TextDecoder().decode(output.stderr);
    try {
      assert.equal(output.code, 4, `the rerun made a second job beside the running one: ${stderr}`);
      assert.deepEqual(JSON.parse(stderr), { error: "Cannot rerun active job: status=RUNNING" });
      const active = JSON.parse((await cli(["job", "status", "--running"], { env })).stdout);
      assert.deepEqual(active.map((job: { job_id: string }) => job.job_id), [running.job_id]);
      assert.equal(JSON.parse((await cli(["job", "status", "--run-key", "k", "--all"], { env })).stdout).length, 2);
    } finally {
      for (const job of JSON.parse((await cli(["job", "status", "--running"], { env })).stdout)) {
        await cli(["job", "abort", "--job-id", job.job_id, "--grace-seconds", "0"], { env });
      }
    }
    assert.equal(Deno.readTextFileSync(runs).trim().split("\n").length, 2, "the first job and the start's");
  },
});
