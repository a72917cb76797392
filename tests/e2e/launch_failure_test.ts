/**
 * A launch that fails is the failure of that launch only: the job may be claimed all the same, by a
 * supervisor launched another way (a launch server that read it after its driver gave the send up, a
 * reader that relaunched it). Such a job must not be recorded FAILED while its command runs. Seen at
 * scale: a 1000-step fan-out under `ulimit -n 256` whose driver, out of descriptors, recorded steps
 * FAILED ("cannot start the job: … Too many open files") that its launch server ran to exit 0.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { CLI, eventually, isStopped, REPO } from "../helpers.ts";
import { FlowEnv, statuses } from "./flow_env.ts";
import { countLines, logged } from "./fault_helpers.ts";
import { readLog, spawnStopped } from "./stop_point.ts";
import { bashPath } from "../../src/executor/builtin/supervisor.ts";

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

/** The CLI with `args` under `ulimit -n files` (soft and hard: Deno raises its soft limit to the hard one). */
function spawnWithFiles(env: FlowEnv, files: number, args: string[], extraEnv: Record<string, string>) {
  return new Deno.Command("bash", {
    args: ["-c", `ulimit -n ${files} && exec "$@"`, "bash", ...CLI, ...env.globals(), ...args],
    cwd: REPO,
    env: env.env(extraEnv),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

Deno.test({
  name: "a reader whose relaunch runs out of descriptors leaves the job to the live launch server that holds it",
  ignore: Deno.build.os !== "linux" || bashPath() === null,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    using env = new FlowEnv("builtin");
    const ran = join(env.home, "ran");
    const steps = Array.from({ length: 60 }, (_, i) => `  - {id: s${i}, command: ${logged(ran, `s${i}`)}}`);
    const file = env.flow("fan.yaml", `flow_id: fan\nsteps:\n${steps.join("\n")}\n`);
    // The driver stops once its launch server has the whole fan-out (one batch, one write), and the
    // server before it launches any: a backlog the driver's own relaunches leave alone.
    const log = join(env.home, "stops.log");
    const driver = env.spawn(["start", "--run-key", "k", file], {
      ORCHESJOB_FLOW_STOP_AT: "runner:sent-to-server,server:before-launch",
      ORCHESJOB_FLOW_CRASH_LOG: log,
    });
    const output = driver.output();
    const stopped = () => [...readLog(log).matchAll(/^(\S+) (\d+)$/gm)].map((line) => [line[1], Number(line[2])]);
    await eventually("the driver and its server stopped", () => {
      const seen = new Map(stopped() as [string, number][]);
      return seen.size === 2 && [...seen.values()].every(isStopped);
    });
    const server = new Map(stopped() as [string, number][]).get("server:before-launch")!;
    const jobsDir = join(env.home, "jobs");
    const claims = () => [...Deno.readDirSync(jobsDir)].filter((entry) => entry.name.endsWith(".claim")).length;
    assert.equal(claims(), 0, "nothing launched yet");

    // A reader meanwhile, short of descriptors: each supervisor it spawns holds one until it is reaped,
    // so its relaunches of the 60 jobs nobody claimed run out of them partway.
    const readerLog = join(env.home, "reader.log");
    const reader = spawnWithFiles(env, 64, ["job", "status", "--running"], {
      ORCHESJOB_FLOW_STOP_AT: "runner:launch-failed",
      ORCHESJOB_FLOW_CRASH_LOG: readerLog,
    });
    const readerOutput = reader.output();
    await eventually("the reader's relaunch failed", () => /^runner:launch-failed \d+$/m.test(readLog(readerLog)));
    Deno.kill(reader.pid, "SIGCONT");
    const read = await readerOutput;
    assert.equal(read.code, 0, new TextDecoder().decode(read.stderr));

    // The server goes on with its backlog, and the driver with its run.
    Deno.kill(server, "SIGCONT");
    Deno.kill(driver.pid, "SIGCONT");
    const result = await output;
    const final = JSON.parse(new TextDecoder().decode(result.stdout));
    const failed = Object.entries(statuses(final)).filter(([, status]) => status !== "SUCCEEDED");
    assert.deepEqual(failed, [], `steps a failed relaunch failed, that the server would have run: ${failed.length}`);
    assert.equal(result.code, 0);
    assert.deepEqual(Object.values(countLines(ran)), Array(60).fill(1), "each step ran once");
  },
});
