/**
 * A launch that fails is the failure of that launch only: the job may be claimed all the same, by a
 * supervisor launched another way (a launch server that read it after its driver gave the send up, a
 * reader that relaunched it). Such a job must not be recorded FAILED while its command runs. Seen at
 * scale: a 1000-step fan-out under `ulimit -n 256` whose driver, out of descriptors, recorded steps
 * FAILED ("cannot start the job: … Too many open files") that its launch server ran to exit 0.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { eventually } from "../helpers.ts";
import { FlowEnv } from "./flow_env.ts";
import { spawnStopped } from "./stop_point.ts";

Deno.test("a reader whose relaunch fails leaves a job that another supervisor claimed meanwhile to it", async () => {
  using env = new FlowEnv("builtin");
  const out = join(env.home, "out");
  const crashLog = join(env.home, "crash.log");
  const started = await env.run(
    ["job", "start", "--run-key", "k", "--", "sh", "-c", `echo ran > '${out}'`],
    { ORCHESJOB_FLOW_CRASH_AT: "runner:after-job-row", ORCHESJOB_FLOW_CRASH_LOG: crashLog },
  );
  // The starter died after committing the job row, before launching: any reader relaunches the job.
  assert.match(Deno.readTextFileSync(crashLog), /^runner:after-job-row \d+\n$/, started.stderr);
  const jobsDir = join(env.home, "jobs");
  const launchFile = [...Deno.readDirSync(jobsDir)].find((entry) => entry.name.endsWith(".launch"))!.name;
  const jobId = launchFile.slice(0, -".launch".length);
  const launchPath = join(jobsDir, launchFile);
  const launch = Deno.readTextFileSync(launchPath);
  // A spawn that fails for this reader alone (as one out of descriptors or processes would): a NUL in
  // a variable of the job's launch file, which no process can be given.
  const broken = JSON.parse(launch);
  broken.env = { ...broken.env, BROKEN: "a\0b" };
  Deno.writeTextFileSync(launchPath, JSON.stringify(broken));
  const failing = await spawnStopped(env, ["job", "status", "--run-key", "k"], "runner:launch-failed");
  // Stopped in the recording of its failed launch: its spawn really failed, and nothing claimed the job.
  for (const made of ["claim", "stderr", "exit"]) {
    assert.throws(() => Deno.statSync(join(jobsDir, `${jobId}.${made}`)), Deno.errors.NotFound, made);
  }

  // Meanwhile another reader's launch works: its supervisor claims the job and runs the command.
  Deno.writeTextFileSync(launchPath, launch);
  const other = await env.run(["job", "status", "--run-key", "k"]);
  assert.equal(other.code, 0, other.stderr);
  await eventually("the other reader's supervisor ran the job to its end", () => {
    try {
      return Deno.readTextFileSync(join(jobsDir, `${jobId}.exit`)) === "0\n";
    } catch {
      return false;
    }
  });
  assert.equal(Deno.readTextFileSync(out), "ran\n");

  const first = await failing.finish();
  assert.equal(first.code, 0, first.stderr);
  const status = await env.run(["job", "status", "--run-key", "k"]);
  const job = JSON.parse(status.stdout);
  assert.equal(job.status, "SUCCEEDED", `the job whose command ran to exit 0 is ${job.status}: ${status.stdout}`);
  assert.equal(job.exit_code, 0);
  assert.equal(Deno.readTextFileSync(join(jobsDir, `${jobId}.stderr`)), "");
});

Deno.test("a job whose launch fails, and that nobody else claimed, is FAILED and can never start", async () => {
  using env = new FlowEnv("builtin");
  const out = join(env.home, "out");
  const crashLog = join(env.home, "crash.log");
  await env.run(
    ["job", "start", "--run-key", "k", "--", "sh", "-c", `echo ran > '${out}'`],
    { ORCHESJOB_FLOW_CRASH_AT: "runner:after-job-row", ORCHESJOB_FLOW_CRASH_LOG: crashLog },
  );
  assert.match(Deno.readTextFileSync(crashLog), /^runner:after-job-row \d+\n$/);
  const jobsDir = join(env.home, "jobs");
  const launchFile = [...Deno.readDirSync(jobsDir)].find((entry) => entry.name.endsWith(".launch"))!.name;
  const launchPath = join(jobsDir, launchFile);
  const launch = Deno.readTextFileSync(launchPath);
  Deno.writeTextFileSync(launchPath, JSON.stringify({ ...JSON.parse(launch), env: { BROKEN: "a\0b" } }));
  // The read that relaunches answers what it found (STARTING); the next one, what it recorded.
  await env.run(["job", "status", "--run-key", "k"]);
  const failed = JSON.parse((await env.run(["job", "status", "--run-key", "k"])).stdout);
  assert.equal(failed.status, "FAILED");
  assert.equal(failed.exit_code, -1);
  assert.match(Deno.readTextFileSync(failed.stderr_file), /^orchesjob-flow: cannot start the job: .*nul byte/);
  // The failure is final: a later reader with a launch that would work launches nothing.
  Deno.writeTextFileSync(launchPath, launch);
  const again = JSON.parse((await env.run(["job", "status", "--run-key", "k"])).stdout);
  assert.equal(again.status, "FAILED");
  assert.throws(() => Deno.statSync(out), Deno.errors.NotFound);
});
