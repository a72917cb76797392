/**
 * Operator commands racing each other: `retry`, `clean`, `status`, `cancel` at the moment another
 * command changes the run. Each test stops one process (a test-only stop point, SIGSTOP) where the
 * race window is, acts in it, and asserts that the window really was hit.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { type CliResult, errorLine, eventually, hasOpen, isStopped, processAlive } from "../helpers.ts";
import { type FlowEnv, flowTest, statuses, step } from "./flow_env.ts";
import { spawnStopped } from "./stop_point.ts";
import { builtin, lines, logged, SLEEPING, TWO_STEPS, undrivenRun } from "./operator_env.ts";

/** `args` spawned and stopped at `store:load-run-read`: in its first read of a run, between the run row and the steps. */
function stoppedInFirstLoad(env: FlowEnv, args: string[]) {
  return spawnStopped(env, args, "store:load-run-read");
}

/** `clean` deletes run r, and only it, while `reader` is stopped in its read of that run. */
async function cleanWhileReading(env: FlowEnv, reader: { pid: number }, what: string): Promise<void> {
  const cleaned = await env.json(["clean", "--older-than", "0"]);
  assert.deepEqual(cleaned.runs.map((run: { run_key: string }) => run.run_key), ["r"]);
  assert.ok(isStopped(reader.pid), what);
}

/** `command` ended as one whose run r was deleted under it: exit 3, one JSON line, nothing on stdout. */
function assertDeletedUnder(result: CliResult, command: string): void {
  assert.equal(result.code, 3, result.stderr);
  assert.match(errorLine(result).error, new RegExp(`^${command}: run r was deleted while this command followed it`));
  assert.equal(result.stdout, "");
}

flowTest(
  builtin,
  "a second retry that read the run before a first one ran it to SUCCEEDED is refused, and the fixed step does not run again",
  async (env) => {
    const log = join(env.home, "ran");
    const fixed = join(env.home, "fixed");
    const file = env.flow(
      "fix.yaml",
      `flow_id: fix
steps:
  - {id: f, command: ${logged(log, "f", `[ -f '${fixed}' ]`)}}
  - {id: s, when: f, command: ${logged(log, "s")}}
`,
    );
    await env.json(["start", "-q", "--run-key", "r", file], 1);
    Deno.writeTextFileSync(fixed, "");
    // The hurried operator's second terminal: its retry has read the run FAILED...
    const second = await stoppedInFirstLoad(env, ["retry", "-q", "--run-key", "r"]);
    // ... when the first retry runs it to its end.
    const first = await env.json(["retry", "-q", "--run-key", "r"]);
    assert.equal(first.status, "SUCCEEDED");
    assert.ok(isStopped(second.pid), "the second retry was still stopped with its read of the FAILED run");
    const result = await second.finish();
    // Before the fix: exit 0, a third round that ran f (SUCCEEDED) and s again.
    assert.equal(result.code, 2, result.stdout + result.stderr);
    assert.equal(errorLine(result).error, "retry: run r SUCCEEDED: name the step to run again with --step");
    const done = await env.status("r");
    assert.deepEqual(statuses(done), { f: "SUCCEEDED", s: "SUCCEEDED" });
    assert.equal(step(done, "f").attempt_no, 2);
    assert.equal(done.rounds.length, 1);
    assert.deepEqual(lines(log), ["f", "f", "s"], "f failed once and succeeded once; s ran once");
  },
  { ignore: Deno.build.os !== "linux" }, // the stop is watched in /proc
);

flowTest(
  builtin,
  "status of a run that clean deletes while status reads it shows the run as read, not a damaged record",
  async (env) => {
    await env.json([
      "start",
      "-q",
      "--run-key",
      "r",
      env.flow("one.yaml", 'flow_id: one\nsteps:\n  - {id: a, command: ["true"]}\n'),
    ]);
    const reader = await stoppedInFirstLoad(env, ["status", "--run-key", "r"]);
    await cleanWhileReading(env, reader, "clean deleted the run while status was reading it");
    const result = await reader.finish();
    // Before the fix: exit 65, `run "r" is damaged in the state file: flow_runs.definition was removed ...`.
    assert.equal(result.code, 0, result.stderr);
    const seen = JSON.parse(result.stdout);
    assert.deepEqual([seen.status, statuses(seen)], ["SUCCEEDED", { a: "SUCCEEDED" }]);
    assert.equal((await env.run(["status", "--run-key", "r"])).code, 3, "the run is gone for the next reader");
  },
  { ignore: Deno.build.os !== "linux" },
);

flowTest(
  builtin,
  "a cancel repeated on a CANCELLED run that clean deletes meanwhile exits 3 with one JSON line",
  async (env) => {
    const go = join(env.home, "go");
    const file = env.flow(
      "hold.yaml",
      `flow_id: hold\nsteps:\n  - {id: a, command: ${JSON.stringify(`while [ ! -f '${go}' ]; do sleep 0.05; done`)}}\n`,
    );
    const started = await env.json(["start", "-d", "--run-key", "r", file]);
    await env.waitFor("r", "a running", (run) => step(run, "a").status === "RUNNING");
    assert.equal((await env.json(["cancel", "--run-key", "r", "--grace-seconds", "1"])).status, "CANCELLED");
    await eventually("the cancelled run's driver exits", () => !processAlive(started.pid));
    // The operator cancels again, and the cancel has read the run when clean deletes it.
    const cancel = await stoppedInFirstLoad(env, ["cancel", "--run-key", "r"]);
    await cleanWhileReading(env, cancel, "clean deleted the run while the cancel was reading it");
    // Before the fix: exit 70, `cancel: internal error: Cannot read properties of undefined (reading 'state')`.
    assertDeletedUnder(await cancel.finish(), "cancel");
  },
  { ignore: Deno.build.os !== "linux" },
);

flowTest(
  builtin,
  "a Ctrl-C while retry waits for a held run's driver to let go stops it at once (130), the run unchanged",
  async (env) => {
    await env.json([
      "start",
      "-q",
      "--run-key",
      "f",
      env.flow("bad.yaml", 'flow_id: bad\nsteps:\n  - {id: a, command: ["false"]}\n'),
    ], 1);
    const before = await env.status("f");
    // Held as by the run's driver on its way out; the test holds it for as long as the retry lives.
    using _held = await env.holdDriverLock("f");
    // Stopped once it has opened the state file: the signal comes after that, so it is the lock wait's.
    const retry = await spawnStopped(env, ["retry", "-q", "--run-key", "f"], "session:opened");
    Deno.kill(retry.pid, "SIGINT");
    const result = await retry.finish();
    // Before the fix: the signal went unheard until the wait ended, then exit 2 "held by another process".
    assert.equal(result.code, 130, result.stderr);
    assert.equal(
      errorLine(result).error,
      "retry: interrupted while waiting for run f's driver lock; run f is unchanged",
    );
    assert.deepEqual(await env.status("f"), before);
  },
);

flowTest(
  builtin,
  "resume of a run that is cancelled and cleaned after resume read it exits 3 with one JSON line",
  async (env) => {
    await undrivenRun(env, "r", env.flow("two.yaml", TWO_STEPS));
    // The operator resumes the run nobody drives; it has read the run PENDING when another operator
    // cancels it and cleans it away.
    const resume = await stoppedInFirstLoad(env, ["resume", "-q", "--run-key", "r"]);
    assert.equal((await env.json(["cancel", "--run-key", "r"])).status, "CANCELLED");
    await cleanWhileReading(env, resume, "the run went while resume was reading it");
    // Before the fix: exit 70, `resume: internal error: run r disappeared` (its driver found no run).
    assertDeletedUnder(await resume.finish(), "resume");
  },
  { ignore: Deno.build.os !== "linux" },
);

flowTest(
  builtin,
  "retry -d keeps the run's driver lock until its driver is launched: a retry passing by is not taken for a driver",
  async (env) => {
    const log = join(env.home, "ran");
    const fixed = join(env.home, "fixed");
    const file = env.flow(
      "fix.yaml",
      `flow_id: fix\nsteps:\n  - {id: f, command: ${logged(log, "f", `[ -f '${fixed}' ]`)}}\n`,
    );
    await env.json(["start", "-q", "--run-key", "r", file], 1);
    Deno.writeTextFileSync(fixed, "");
    const retry = await spawnStopped(env, ["retry", "-d", "--run-key", "r"], "launch:gate-taken");
    const reopened = await env.status("r");
    assert.deepEqual([reopened.status, reopened.rounds.length], ["PENDING", 1], "reopened, not yet driven");
    // A second retry of the run (or a clean) takes the driver lock for a moment when it is free, to
    // read the run, and lets go. Before the fix it was free here, and retry -d took such a passer-by
    // for the run's driver: it launched none ("detached": false) and the run stayed PENDING for good.
    Deno.mkdirSync(join(env.home, "locks"), { recursive: true });
    using passerBy = Deno.openSync(join(env.home, "locks", "r.driver.lock"), { write: true, create: true });
    const took = passerBy.tryLockSync(true);
    const result = await retry.finish();
    if (took) passerBy.unlockSync();
    assert.equal(result.code, 0, result.stderr);
    const report = JSON.parse(result.stdout);
    assert.equal(report.detached, true, JSON.stringify(report));
    assert.equal(took, false, "the retry held the driver lock until it launched the driver");
    const done = await env.waitFor("r", "the run ends", (run) => run.status === "SUCCEEDED" && run.driver === null);
    assert.equal(step(done, "f").attempt_no, 2);
    assert.deepEqual(lines(log), ["f", "f"]);
  },
  { ignore: Deno.build.os !== "linux" },
);

/**
 * `result`, that of a `start -d` or `resume -d` of run r, launched its driver, which ran the run's one
 * step (logging "a" to `log`) once, to the run's end.
 */
async function assertDetachedToEnd(
  env: FlowEnv,
  result: { code: number; stdout: string; stderr: string },
  log: string,
) {
  assert.equal(result.code, 0, result.stderr);
  const report = JSON.parse(result.stdout);
  assert.equal(report.detached, true, JSON.stringify(report));
  await env.waitFor("r", "the run ends", (run) => run.status === "SUCCEEDED" && run.driver === null);
  assert.deepEqual(lines(log), ["a"]);
}

flowTest(
  builtin,
  "resume -d of an undriven run is not put off by a process holding the driver lock for a moment: it launches a driver",
  async (env) => {
    const log = join(env.home, "ran");
    const file = env.flow("one.yaml", `flow_id: one\nsteps:\n  - {id: a, command: ${logged(log, "a")}}\n`);
    await undrivenRun(env, "r", file);
    // A passer-by (outside Linux, the try-lock probe of a `status`) holds the lock when resume -d looks.
    const passerBy = await env.holdDriverLock("r");
    const resume = await spawnStopped(env, ["resume", "-d", "--run-key", "r"], "launch:holder-seen");
    passerBy[Symbol.dispose]();
    await assertDetachedToEnd(env, await resume.finish(), log);
  },
  { ignore: Deno.build.os !== "linux" },
);

flowTest(
  builtin,
  "a retry while a start -d is launching the run's driver says a driver is being launched, not that nobody drives it",
  async (env) => {
    const log = join(env.home, "ran");
    const file = env.flow("one.yaml", `flow_id: one\nsteps:\n  - {id: a, command: ${logged(log, "a")}}\n`);
    // The start -d has created the run and holds the launch gate; no driver holds the run yet.
    const start = await spawnStopped(env, ["start", "-d", "--run-key", "r", file], "launch:gate-taken");
    const pending = await env.status("r");
    assert.deepEqual([pending.status, pending.driver], ["PENDING", null], "created, not yet driven");
    const retry = await env.run(["retry", "--run-key", "r"]);
    assert.equal(retry.code, 2, retry.stderr);
    const { error } = errorLine(retry);
    assert.match(error, /is PENDING: only a run that has ended can be retried; its driver is being launched/);
    assert.doesNotMatch(error, /nobody drives it/);
    await assertDetachedToEnd(env, await start.finish(), log);
  },
  { ignore: Deno.build.os !== "linux" },
);

flowTest(
  builtin,
  "a clean that opened a lock file another clean then unlinked never unlinks the file a retry made again and holds",
  async (env) => {
    const fixed = join(env.home, "fixed");
    const go = join(env.home, "go");
    const file = env.flow(
      "hold.yaml",
      `flow_id: hold\nsteps:\n  - {id: a, command: ${
        JSON.stringify(`[ -f '${fixed}' ] && while [ ! -f '${go}' ]; do sleep 0.05; done`)
      }}\n`,
    );
    await env.json(["start", "-q", "--run-key", "r", file], 1);
    const driverLock = join(env.home, "locks", "r.driver.lock");
    // The driver lock is then the only lock file, so the one the stopped clean opens is that one.
    for (const name of Deno.readDirSync(join(env.home, "locks"))) {
      if (name.name !== "r.driver.lock") Deno.removeSync(join(env.home, "locks", name.name));
    }
    const old = Deno.statSync(driverLock).ino;
    // The run is too recent to delete: both cleans only remove the lock files of finished runs.
    // Clean #2 has opened the driver lock file (nobody holds it: the run FAILED) and stops there...
    const second = await spawnStopped(env, ["clean", "--older-than", "1d"], "locks:unlink-opened");
    assert.ok(hasOpen(second.pid, driverLock), "the stopped clean has the run's driver lock file open");
    // ... clean #1 unlinks it, and a retry makes it again and drives the run, holding it.
    const first = await env.json(["clean", "--older-than", "1d"]);
    assert.deepEqual(first.lock_files, [driverLock]);
    Deno.writeTextFileSync(fixed, "");
    const retry = env.spawn(["retry", "-q", "--run-key", "r"]);
    const retried = retry.output();
    await env.waitFor(
      "r",
      "a running again",
      (run) => step(run, "a").status === "RUNNING" && step(run, "a").attempt_no === 2,
    );
    const driven = async () =>
      (await env.json(["list"])).find((run: { run_key: string }) => run.run_key === "r").driver;
    assert.deepEqual(await driven(), { pid: retry.pid });
    const made = Deno.statSync(driverLock).ino;
    assert.notEqual(made, old, "the driver lock file the retry holds is a new one");
    assert.ok(isStopped(second.pid), "clean #2 is still stopped");
    assert.ok(hasOpen(second.pid, `${driverLock} (deleted)`), "with the unlinked file open, not the retry's");
    const cleaned = await second.finish();
    assert.equal(cleaned.code, 0, cleaned.stderr);
    // Before the fix: it locked the unlinked file (free) and unlinked the path, the retry's file; then a
    // third process (a driver) made a new file there and held "the" driver lock beside the retry.
    {
      using third = Deno.openSync(driverLock, { create: true, write: true });
      assert.equal(third.tryLockSync(true), false, "a third process cannot take the run's driver lock");
    }
    assert.equal(Deno.statSync(driverLock).ino, made, "the retry's lock file is still at the path");
    assert.deepEqual(await driven(), { pid: retry.pid });
    assert.deepEqual(JSON.parse(cleaned.stdout).lock_files, []);
    Deno.writeTextFileSync(go, "");
    const result = await retried;
    assert.equal(result.code, 0, new TextDecoder().decode(result.stderr));
  },
  { ignore: Deno.build.os !== "linux" },
);

/** An orchesjob that notes each call's subcommand in `calls` ("NAME SUBCOMMAND"), then is the job wrapper. */
function notingOrchesjob(env: FlowEnv, name: string, calls: string): string {
  const path = join(env.home, `orchesjob-${name}`);
  Deno.writeTextFileSync(path, `#!/bin/sh\necho "${name} $1" >> '${calls}'\nexec '${env.wrapper}' "$@"\n`);
  Deno.chmodSync(path, 0o755);
  return path;
}

flowTest(
  builtin,
  "a cancel that read the run before a resume recorded another --orchesjob-bin for it aborts through the new binary",
  async (env) => {
    const calls = join(env.home, "calls");
    const [old, moved] = [notingOrchesjob(env, "old", calls), notingOrchesjob(env, "new", calls)];
    const file = env.flow("slow.yaml", SLEEPING);
    {
      // Created undriven on the old binary; a tick starts its step through it.
      using _lock = await env.holdDriverLock("k");
      await env.json(["--orchesjob-bin", old, "start", "--run-key", "k", "-d", file]);
    }
    assert.equal(step(await env.json(["tick", "--run-key", "k"]), "nap").status, "RUNNING");
    assert.deepEqual(lines(calls).filter((call) => call.endsWith(" start")), ["old start"]);
    // Held by the test: the resume below records its binary, then finds the run driven and drives nothing.
    using _driver = await env.holdDriverLock("k");
    // The cancel has read the run (its executor: the old binary), and waits to commit: stopped at its
    // look for the write lock, as it would wait for a lock another process holds.
    const cancel = await spawnStopped(env, ["cancel", "--run-key", "k", "--grace-seconds", "1"], "session:lock-probed");
    const resumed = await env.run(["--orchesjob-bin", moved, "resume", "--run-key", "k", "-d"]);
    const rebound = await env.status("k");
    // The situation under test: the run's binary was replaced while the cancel was stopped, before its commit.
    assert.equal(rebound.executor.bin, moved, resumed.stderr);
    assert.equal(rebound.status, "RUNNING");
    assert.ok(isStopped(cancel.pid), "the cancel was still stopped when the binary was replaced");
    const result = await cancel.finish();
    assert.equal(result.code, 0, result.stderr);
    const run = JSON.parse(result.stdout);
    assert.deepEqual([run.status, statuses(run)], ["CANCELLED", { nap: "CANCELLED" }]);
    assert.deepEqual(lines(calls).filter((call) => call.endsWith(" abort")), ["new abort"]);
  },
);
