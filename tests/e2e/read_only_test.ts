/**
 * A state home this process may not write (a read-only mount for root, file modes otherwise): the
 * commands that only read it work, and what must write it says so in one JSON line, with exit 2.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { collectText, eventually, processAlive } from "../helpers.ts";
import { type FlowEnv, flowTest, type Json, step } from "./flow_env.ts";
import { canMount, readOnlyHome } from "./fault_helpers.ts";

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
