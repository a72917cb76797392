/**
 * A state home this process may not write (a read-only mount for root, file modes otherwise): the
 * commands that only read it work, and what must write it says so in one JSON line, with exit 2.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { CLI, type CliResult, collectText, errorLine, eventually, processAlive } from "../helpers.ts";
import { type FlowEnv, flowTest, type Json, step } from "./flow_env.ts";
import { asNobody, canMount, canRunAsNobody, readOnlyHome, waitForFile } from "./fault_helpers.ts";

const builtin = ["builtin"] as const;
/** Root cannot be kept from writing by file modes: without the right to mount, there is no read-only place. */
const ignore = Deno.uid() === 0 && !canMount();

/** Every file under `dir` with its size, modification time and mode: what a write would change. */
function snapshot(dir: string): Record<string, string> {
  const files: Record<string, string> = {};
  const walk = (path: string) => {
    for (const entry of Deno.readDirSync(path)) {
      const child = join(path, entry.name);
      const info = Deno.lstatSync(child);
      if (info.isDirectory) walk(child);
      else files[child] = `${info.size} ${info.mtime?.getTime()} ${info.mode}`;
    }
  };
  walk(dir);
  return files;
}

/** The one JSON error line of a refused command, with the exit code of one that must write. */
async function refused(env: FlowEnv, args: string[]): Promise<string> {
  const result = await env.run(args);
  assert.equal(result.code, 2, `${args.join(" ")}: ${result.stdout}${result.stderr}`);
  const lines = result.stderr.split("\n").filter(Boolean);
  assert.equal(lines.length, 1, result.stderr);
  const state = join(env.home, "orchesjob-flow.sqlite3");
  const error: string = JSON.parse(lines[0]).error;
  assert.ok(error.startsWith(`${args[0]}: state database ${state} is read-only here (`), error);
  return error;
}

/** A run nobody drives whose step b has ended, which only the files of b's job supervisor know yet. */
async function abandonedRun(env: FlowEnv): Promise<void> {
  const go = join(env.home, "go");
  const hold = `while [ ! -f '${go}' ]; do sleep 0.05; done; echo err-b >&2; exit 4`;
  const file = env.flow(
    "held.yaml",
    `flow_id: held\nsteps:\n  - {id: a, command: "echo out-a"}\n  - {id: b, when: a, command: ${
      JSON.stringify(hold)
    }}\n`,
  );
  await env.json(["start", "--run-key", "k", "-d", file]);
  const run: Json = await env.waitFor("k", "b's job running", (run) => step(run, "b").orchesjob_status !== null);
  const driver = run.driver.pid;
  Deno.kill(driver, "SIGKILL");
  await eventually("the driver is dead", () => !processAlive(driver));
  Deno.writeTextFileSync(go, "");
  const exit = join(env.home, "jobs", `${step(run, "b").orchesjob_status.job_id}.exit`);
  await eventually("b's job ended", () => {
    try {
      return Deno.readTextFileSync(exit).endsWith("\n");
    } catch {
      return false;
    }
  });
}

flowTest(builtin, "a read-only state home: wait, watch --no-advance, logs and job status read it", async (env) => {
  await abandonedRun(env);
  const before = snapshot(env.home);
  {
    using _home = readOnlyHome(env.home);
    assert.throws(() => Deno.writeTextFileSync(join(env.home, "probe"), ""), "the home is read-only");
    const wait = await env.run(["wait", "--run-key", "k", "--timeout", "0.3"]);
    assert.deepEqual([wait.code, wait.stderr], [124, ""]);
    assert.equal(JSON.parse(wait.stdout).status, "RUNNING");
    const logs = await env.run(["logs", "--run-key", "k", "--step", "b"]);
    assert.deepEqual([logs.code, logs.stdout, logs.stderr], [0, "", "err-b\n"]);
    const job = await env.run(["job", "status", "--run-key", "k:b:1"]);
    assert.equal(job.code, 0, job.stderr);
    assert.deepEqual([JSON.parse(job.stdout).status, JSON.parse(job.stdout).exit_code], ["FAILED", 4]);
    const dry = await env.run(["clean", "--older-than", "0", "--dry-run"]);
    assert.equal(dry.code, 0, dry.stderr);

    const watcher = env.spawn(["watch", "--run-key", "k", "--no-advance", "--mode", "append", "--interval", "0.1"]);
    const shown = collectText(watcher.stdout);
    const said = collectText(watcher.stderr);
    await eventually("watch shows the run", () => /\nb +/.test(shown.text), 60);
    watcher.kill("SIGTERM");
    assert.equal((await watcher.status).code, 130, await said.done);
    assert.deepEqual((await said.done).split("\n").filter(Boolean).map((line) => JSON.parse(line).advancing), [false]);

    const advance = await refused(env, ["wait", "--run-key", "k", "--advance", "--timeout", "5"]);
    assert.match(advance, /; wait --advance cannot drive run k, which no process drives/);
    assert.match(await refused(env, ["watch", "--run-key", "k"]), /; watch cannot drive run k, /);
    for (const command of ["cancel", "resume", "tick"]) {
      assert.match(await refused(env, [command, "--run-key", "k"]), /; this command writes to it /);
    }
  }
  assert.deepEqual(snapshot(env.home), before, "nothing was written");
  // Writable again, the run goes on from where its files say it is.
  assert.equal((await env.run(["resume", "--run-key", "k"])).code, 1);
  assert.equal(step(await env.status("k"), "b").error, "orchesjob status FAILED (exit code 4): err-b");
}, { ignore });

flowTest(builtin, "a read-only state home without its -shm file: read as it is", async (env) => {
  const file = env.flow("one.yaml", `flow_id: one\nsteps:\n  - {id: a, command: "echo out-a; exit 3"}\n`);
  assert.equal((await env.run(["start", "--run-key", "k", file])).code, 1);
  const state = join(env.home, "orchesjob-flow.sqlite3");
  assert.ok(!Deno.readDirSync(env.home).some((entry) => entry.name.endsWith("-shm")), "no -shm left");
  using _home = readOnlyHome(env.home);
  for (
    const args of [["wait", "--run-key", "k"], ["watch", "--run-key", "k", "--no-advance"], ["watch", "--run-key", "k"]]
  ) {
    const result = await env.run(args);
    assert.deepEqual([result.code, result.stderr], [1, ""], args.join(" "));
  }
  const logs = await env.run(["logs", "--run-key", "k", "--step", "a"]);
  assert.deepEqual([logs.code, logs.stdout, logs.stderr], [0, "out-a\n", ""]);
  const job = await env.run(["job", "logs", "--run-key", "k:a:1"]);
  assert.deepEqual([job.code, job.stdout], [0, "out-a\n"], job.stderr);
  const started = await refused(env, ["start", "--run-key", "k2", file]);
  assert.ok(started.includes(state));
}, { ignore });

/** Runs `orchesjob-flow GLOBALS ARGS…` as user nobody, who may read the state file but not locks/ or jobs/. */
function spawnAsReader(env: FlowEnv, args: string[]): Deno.ChildProcess {
  return new Deno.Command("setpriv", asNobody([...CLI, ...env.globals(), ...args], env.env())).spawn();
}

async function asReader(env: FlowEnv, args: string[]): Promise<CliResult> {
  const output = await spawnAsReader(env, args).output();
  const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  return { code: output.code, stdout: decode(output.stdout), stderr: decode(output.stderr) };
}

const UNKNOWN = /^cannot tell whether a process drives the run: .*\/locks\/\w+\.driver\.lock: permission denied$/;

flowTest(builtin, "a reader kept out of locks/ and jobs/: the driver is unknown, output unreadable", async (env) => {
  const done = env.flow("done.yaml", `flow_id: done\nsteps:\n  - {id: a, command: "echo done"}\n`);
  assert.equal((await env.run(["start", "--run-key", "done", done])).code, 0);
  const go = join(env.home, "go");
  const file = env.flow("held.yaml", `flow_id: held\nsteps:\n  - {id: a, command: "echo out-a; ${waitForFile(go)}"}\n`);
  await env.json(["start", "--run-key", "k", "-d", file]);
  await env.waitFor("k", "a's job running", (run) => step(run, "a").orchesjob_status?.status === "RUNNING");
  // The state file readable by all, as an operator might make it; locks/, jobs/ and logs/ stay 0700.
  Deno.chmodSync(env.home, 0o755);
  for (const entry of Deno.readDirSync(env.home)) {
    if (entry.name.startsWith("orchesjob-flow.sqlite3")) Deno.chmodSync(join(env.home, entry.name), 0o644);
  }

  const status = await asReader(env, ["status", "--run-key", "k"]);
  assert.deepEqual([status.code, status.stderr], [0, ""]);
  assert.equal(JSON.parse(status.stdout).driver.pid, null);
  assert.match(JSON.parse(status.stdout).driver.unknown, UNKNOWN);
  const table = await asReader(env, ["status", "--run-key", "k", "--format", "table"]);
  assert.match(table.stdout, /\nDriver: unknown \(cannot tell whether a process drives the run: .*\)\n/, table.stderr);
  const list = await asReader(env, ["list"]);
  assert.equal(list.code, 0, list.stderr);
  assert.deepEqual(JSON.parse(list.stdout).map((run: Json) => [run.run_key, run.driver?.unknown !== undefined]), [
    ["k", true],
    ["done", false],
  ]);
  assert.match((await asReader(env, ["list", "--format", "table"])).stdout, /\nk +held +RUNNING .* unknown\n/);
  const dry = await asReader(env, ["clean", "--older-than", "0", "--dry-run"]);
  assert.equal(dry.code, 0, dry.stderr);
  assert.deepEqual(JSON.parse(dry.stdout).runs, []);
  assert.deepEqual(JSON.parse(dry.stdout).skipped.map((run: Json) => run.run_key), ["done"]);
  assert.match(JSON.parse(dry.stdout).skipped[0].reason, UNKNOWN);

  // A file that may well be there but cannot be read is said so, not taken for a gone one.
  const logs = await asReader(env, ["logs", "--run-key", "k", "--step", "a"]);
  assert.equal(logs.code, 1, logs.stderr);
  assert.match(errorLine(logs).error, /^logs: cannot read .*\/jobs\/[\w-]+\.stdout: permission denied$/);
  const ended = await asReader(env, ["logs", "--run-key", "done", "--step", "a"]);
  assert.equal(ended.code, 1, ended.stderr);
  assert.match(errorLine(ended).error, /^logs: cannot read .*\/jobs\/[\w-]+\.stdout: permission denied$/);
  const job = await asReader(env, ["job", "logs", "--run-key", "k:a:1"]);
  assert.equal(job.code, 1, job.stderr);
  assert.match(errorLine(job).error, /^cannot read .*\/jobs\/[\w-]+\.stdout: permission denied$/);

  // watch --no-advance follows the run to its end without claiming that nobody drives it.
  const watcher = spawnAsReader(env, ["watch", "--run-key", "k", "--no-advance", "--mode", "append"]);
  const shown = collectText(watcher.stdout);
  const said = collectText(watcher.stderr);
  await eventually("watch shows the run", () => /\na +/.test(shown.text), 60);
  Deno.writeTextFileSync(go, "");
  assert.deepEqual([(await watcher.status).code, await said.done], [0, ""]);
}, { ignore: !canRunAsNobody() });
