/**
 * Signals while a driver or a command waits for a lock are heard in the wait, not at its end:
 * - A foreground driver whose rounds are lost to a write lock another process holds while its jobs end:
 *   each ended job rang the driver's bell (a file event), and the pause after a lost round, cut short by
 *   the bell, gave no turn of the event loop in which to hear a signal; every lost round also waited out
 *   one slice of the lock per running step. A Ctrl-C then took about 9 s to be heard (5 of 6 trials of a
 *   6-job fan-out with a join and a chain after it), against ~0.12 s now.
 * - The background driver (`_drive`, what `start -d` launches) tries for the run's driver lock for 2 s:
 *   a SIGTERM then was heard only at the wait's end, which said another process drives the run (75).
 * - A `start` or `retry` whose write meets a write lock taken after its probe of the lock: the write
 *   waited in SQLite for the busy timeout (15 s), which blocks the process, signals unheard.
 * - A first driver of a state file without the built-in runner's tables (one of an older version) made
 *   them once the file was open: under a write lock taken meanwhile, SQLite's wait held it for the busy
 *   timeout, signals unheard, then it failed (exit 70).
 * The write lock is held as in held_lock_test.ts.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { pathExists } from "../../src/shared/mod.ts";
import { catchesSignal, eventually, inLockBusyWait, isStopped, processAlive } from "../helpers.ts";
import { type FlowEnv, flowTest, step } from "./flow_env.ts";
import { FAILING, TWO_STEPS, undrivenRun } from "./operator_env.ts";
import { readLog, spawnStoppedChild } from "./stop_point.ts";
import { assertLockHeld, holdWriteLock, stateFile } from "./write_lock.ts";

const STEPS = 6;
/**
 * How long the lock is held: far longer than a fixed driver needs to hear the signal (one slice of the
 * lock, a quarter of a second), shorter than the old one took (about 9 s).
 */
const HOLD_SECONDS = 3;

flowTest(
  ["builtin"],
  "Ctrl-C while the write lock is held as jobs end is heard with the lock still held",
  async (env) => {
    const [go, ended] = [join(env.home, "go"), (i: number) => join(env.home, `ended${i}`)];
    // A fan-out whose jobs end once the lock is held, a little apart (each end is a file event that
    // rings the driver), then a join and a chain that the driver would start next.
    const fan = Array.from(
      { length: STEPS },
      (_, i) =>
        `  - id: f${i}\n    command: "while [ ! -e ${go} ]; do sleep 0.05; done; sleep 0.${i + 1}; touch ${
          ended(i)
        }"\n`,
    );
    const after = ["j", "c1", "c2"].map((id, i) =>
      `  - id: ${id}\n    depends_on: [${i === 0 ? fan.map((_, f) => `f${f}`).join(", ") : i === 1 ? "j" : "c1"}]\n` +
      `    command: "true"\n`
    );
    const flow = env.flow("together.yaml", `flow_id: together\nsteps:\n${fan.join("")}${after.join("")}`);
    const driver = env.spawn(["start", "--run-key", "k", flow]);
    let exited = false;
    const output = driver.output().finally(() => (exited = true));
    await env.waitFor(
      "k",
      "every step runs",
      (run) => run.steps.filter((s: { orchesjob_status: unknown }) => s.orchesjob_status !== null).length === STEPS,
    );
    // Held for less than the old behaviour took to hear the signal, far longer than a slice of the wait.
    await using lock = await holdWriteLock(env, HOLD_SECONDS);
    Deno.writeTextFileSync(go, "");
    // During the jobs' ends, as they ring the driver.
    await eventually("every job ended", () => Array.from({ length: STEPS }, (_, i) => ended(i)).every(pathExists));
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(exited, false, "the driver is still there, its rounds lost to the lock");
    driver.kill("SIGINT");
    const done = await output;
    assert.equal(lock.released(), false, "the interrupt was heard only once the lock was let go");
    assertLockHeld(env);
    assert.equal(done.code, 130, new TextDecoder().decode(done.stderr));
    // The situation under test: the jobs ended while the lock was held, and the driver could record
    // none of those ends (its rounds were lost to the lock), not one that had nothing left to write.
    const run = await env.status("k");
    for (let i = 0; i < STEPS; i++) assert.equal(step(run, `f${i}`).status, "RUNNING", `f${i}'s end was not recorded`);
  },
);

/**
 * `start -d` of `runKey` (TWO_STEPS), its background driver stopped (test-only SIGSTOP) just before its
 * wait for the run's driver lock: resolves once it is stopped there, with `start -d`'s output to come
 * and the driver's PID.
 */
async function backgroundDriverStopped(env: FlowEnv, runKey: string) {
  const log = join(env.home, `stop-${runKey}.log`);
  const starting = env.spawn(["start", "--run-key", runKey, "-d", env.flow("two.yaml", TWO_STEPS)], {
    ORCHESJOB_FLOW_STOP_AT: "drive:lock-wait",
    ORCHESJOB_FLOW_CRASH_LOG: log,
  });
  const output = starting.output();
  let pid = 0;
  await eventually("the background driver stopped before its wait for the driver lock", () => {
    pid = Number(/^drive:lock-wait (\d+)\n$/.exec(readLog(log))?.[1] ?? 0);
    return pid !== 0 && isStopped(pid);
  });
  return { output, pid };
}

flowTest(
  ["builtin"],
  "SIGTERM to a background driver waiting for its run's driver lock: 130 at once, the run as stored",
  async (env) => {
    // The test takes the driver lock while the driver is stopped, as a passing tick would; its SIGTERM
    // comes once it runs again, in that wait.
    const { output, pid } = await backgroundDriverStopped(env, "d");
    try {
      using _held = await env.holdDriverLock("d");
      Deno.kill(pid, "SIGCONT");
      await eventually("the driver waits for the lock", () => !isStopped(pid));
      assert.ok(catchesSignal(pid, 15), "the driver listens for SIGTERM");
      Deno.kill(pid, "SIGTERM");
      const started = await output;
      // Still held here: the driver ended in its wait, not at its end (75, "another process drives it").
      assert.equal(processAlive(pid), false, "the driver has exited");
      const stdout = JSON.parse(new TextDecoder().decode(started.stdout));
      assert.equal(started.code, 130, new TextDecoder().decode(started.stderr));
      assert.deepEqual([stdout.detached, stdout.pid, stdout.exit_code, stdout.status], [false, pid, 130, "PENDING"]);
      assert.equal(
        stdout.error,
        "the background driver exited 130: _drive: interrupted while waiting for run d's driver lock; run d is unchanged",
      );
      const run = await env.status("d");
      // Still held by the test, as all along: the driver never took it.
      assert.deepEqual([run.status, run.driver, step(run, "a").status], ["PENDING", { pid: Deno.pid }, "PENDING"]);
    } finally {
      if (processAlive(pid)) Deno.kill(pid, "SIGKILL");
    }
    // The run stays resumable.
    const resumed = await env.json(["resume", "--run-key", "d", "-q"]);
    assert.equal(resumed.status, "SUCCEEDED");
  },
);

flowTest(
  ["builtin"],
  "a background driver SIGKILLed before it took its run: start -d exits 130 (not Deno's 137) and says so",
  async (env) => {
    // The test kills the stopped driver as an OOM killer or an operator's kill -9 would, while start -d
    // waits to see it drive.
    const { output, pid } = await backgroundDriverStopped(env, "k");
    Deno.kill(pid, "SIGKILL");
    const started = await output;
    assert.equal(processAlive(pid), false, "the driver was killed");
    const stdout = JSON.parse(new TextDecoder().decode(started.stdout));
    assert.deepEqual([started.signal, started.code], [null, 130], new TextDecoder().decode(started.stderr));
    assert.deepEqual([stdout.detached, stdout.pid, stdout.exit_code, stdout.status], [false, pid, 130, "PENDING"]);
    assert.equal(
      stdout.error,
      "the background driver was killed by SIGKILL before it was seen holding the run; nothing drives it",
    );
    // Nothing drives the run, which stays resumable.
    assert.equal((await env.status("k")).driver, null);
    const resumed = await env.json(["resume", "--run-key", "k", "-q"]);
    assert.equal(resumed.status, "SUCCEEDED");
  },
);

/**
 * `args` spawned to stop (test-only SIGSTOP) between its probe of the state file's write lock and its
 * write, the window in which the test then takes the lock.
 */
function stoppedBeforeWrite(env: FlowEnv, args: string[]) {
  return spawnStoppedChild(env, args, "session:lock-probed");
}

flowTest(
  ["builtin"],
  "a signal to start or retry whose write meets a write lock taken after their probe: 130 with the lock still held",
  async (env) => {
    assert.equal((await env.run(["start", "--run-key", "f", "-q", env.flow("failing.yaml", FAILING)])).code, 1);
    const start = await stoppedBeforeWrite(env, ["start", "--run-key", "s", "-q", env.flow("two.yaml", TWO_STEPS)]);
    const retry = await stoppedBeforeWrite(env, ["retry", "--run-key", "f", "-q"]);
    await using _kill = {
      async [Symbol.asyncDispose]() {
        for (const { child, exited } of [start, retry]) if (!exited()) child.kill("SIGKILL");
        await Promise.allSettled([start.output, retry.output]);
      },
    };
    // Held for less than the busy timeout (15 s): a write that waited the whole busy timeout gets the
    // lock when it is let go, and the signal would be heard only then.
    await using lock = await holdWriteLock(env, 12);
    for (const { child } of [start, retry]) Deno.kill(child.pid, "SIGCONT");
    await eventually("both run again", () => [start, retry].every(({ child }) => !isStopped(child.pid)));
    // The situation under test: their writes met the lock (each waits in SQLite's busy handler),
    // rather than a signal heard before either had tried to write.
    await eventually(
      "both writes wait for the lock",
      () => [start, retry].every(({ child }) => inLockBusyWait(child.pid)),
    );
    assert.equal(start.exited(), false, "start ended while the lock was held");
    assert.equal(retry.exited(), false, "retry ended while the lock was held");
    assertLockHeld(env);
    start.child.kill("SIGINT");
    retry.child.kill("SIGTERM");
    const [started, retried] = [await start.output, await retry.output];
    assert.equal(lock.released(), false, "the signals were heard only once the lock was let go");
    assertLockHeld(env);
    const state = stateFile(env);
    for (
      const [result, error] of [
        [started, `start: interrupted while waiting for state database ${state}'s write lock; nothing was stored`],
        [retried, `retry: interrupted while waiting for state database ${state}'s write lock; run f is unchanged`],
      ] as const
    ) {
      assert.deepEqual([result.signal, result.code, result.stdout.length], [null, 130, 0]);
      assert.deepEqual(JSON.parse(new TextDecoder().decode(result.stderr)), { error });
    }
    // The interrupted writes did not happen: no run s, run f as it ended.
    assert.equal((await env.run(["status", "--run-key", "s"])).code, 3, "run s was not created");
    const failed = await env.status("f");
    assert.deepEqual([failed.status, step(failed, "a").attempt_no], ["FAILED", 1]);
  },
);

flowTest(
  ["builtin"],
  "SIGTERM to a first driver of a state file without the runner's tables, under a write lock taken after it opened the file: 130",
  async (env) => {
    await undrivenRun(env, "u", env.flow("two.yaml", TWO_STEPS));
    // The state file as a version before the runner's tables were made at opening left it, no job run yet.
    const old = new DatabaseSync(stateFile(env));
    old.exec(`DROP TABLE IF EXISTS jobs; DROP TABLE IF EXISTS job_keys; DROP TABLE IF EXISTS job_unlocks`);
    // The runner's version gone too (else nothing is migrated and the test has no first driver to test).
    const forgotten = old.prepare("DELETE FROM schema_meta WHERE key = 'builtin_jobs_schema_version'").run();
    old.close();
    assert.equal(forgotten.changes, 1, "the file had the runner's schema version, now gone");
    const log = join(env.home, "stop.log");
    // The busy timeout shortened: the old driver failed once it had passed, with the lock still held.
    const driver = env.spawn(["_drive", "--run-key", "u"], {
      ORCHESJOB_FLOW_BUSY_TIMEOUT_MS: "2000",
      ORCHESJOB_FLOW_STOP_AT: "session:opened",
      ORCHESJOB_FLOW_CRASH_LOG: log,
    });
    let exited = false;
    const output = driver.output().finally(() => (exited = true));
    await using _kill = {
      async [Symbol.asyncDispose]() {
        if (!exited) driver.kill("SIGKILL");
        await output.catch(() => {});
      },
    };
    await eventually(
      "the driver stopped once it opened the state file",
      () => exited || (readLog(log) === `session:opened ${driver.pid}\n` && isStopped(driver.pid)),
    );
    assert.equal(exited, false);
    await using lock = await holdWriteLock(env, 60);
    Deno.kill(driver.pid, "SIGCONT");
    await eventually("the driver runs again", () => exited || !isStopped(driver.pid));
    // The situation under test: it met the lock (it waits in SQLite's busy handler).
    await eventually("the driver waits for the lock", () => exited || inLockBusyWait(driver.pid));
    assert.equal(exited, false, "the driver ended while the lock was held");
    assertLockHeld(env);
    driver.kill("SIGTERM");
    const result = await output;
    assert.equal(lock.released(), false);
    assertLockHeld(env);
    assert.deepEqual([result.signal, result.code], [null, 130], new TextDecoder().decode(result.stderr));
    const run = JSON.parse(new TextDecoder().decode(result.stdout));
    assert.deepEqual([run.status, step(run, "a").status], ["PENDING", "PENDING"]);
  },
);

flowTest(
  ["builtin"],
  "a signal to retry or resume whose --orchesjob-bin write meets a write lock taken after they opened the file: 130 with the lock still held",
  async (env) => {
    // Runs on an external orchesjob (the `job` wrapper), which --orchesjob-bin then replaces.
    const external = (args: string[]) => ["--orchesjob-bin", env.wrapper, ...args];
    assert.equal(
      (await env.run(external(["start", "--run-key", "f", "-q", env.flow("failing.yaml", FAILING)]))).code,
      1,
    );
    {
      // Run u is created and left undriven: its start -d finds its driver lock taken.
      using _lock = await env.holdDriverLock("u");
      const created = await env.json(external(["start", "--run-key", "u", "-d", env.flow("two.yaml", TWO_STEPS)]));
      assert.deepEqual([created.detached, created.status], [false, "PENDING"]);
    }
    const other = join(env.home, "other-orchesjob");
    Deno.copyFileSync(env.wrapper, other);
    Deno.chmodSync(other, 0o755);
    const log = join(env.home, "stop.log");
    const commands = [
      ["retry", "--run-key", "f", "-q"],
      ["resume", "--run-key", "u", "-q"],
    ].map((args) => {
      // Each stops (test-only SIGSTOP) once it has opened the state file, before its first write.
      const child = env.spawn(["--orchesjob-bin", other, ...args], {
        ORCHESJOB_FLOW_STOP_AT: "session:opened",
        ORCHESJOB_FLOW_CRASH_LOG: log,
      });
      let exited = false;
      const output = child.output().finally(() => (exited = true));
      return { name: args[0], child, output, exited: () => exited };
    });
    await using _kill = {
      async [Symbol.asyncDispose]() {
        for (const { child, exited } of commands) if (!exited()) child.kill("SIGKILL");
        await Promise.allSettled(commands.map(({ output }) => output));
      },
    };
    await eventually(
      "each stopped once it opened the state file",
      () =>
        commands.every(({ child, exited }) =>
          exited() || (readLog(log).includes(`session:opened ${child.pid}\n`) && isStopped(child.pid))
        ),
    );
    for (const { name, exited } of commands) assert.equal(exited(), false, `${name} ended before its stop`);
    // Held for less than the busy timeout (15 s): a write that waited the whole busy timeout gets the
    // lock when it is let go, and the signal would be heard only then.
    await using lock = await holdWriteLock(env, 12);
    for (const { child } of commands) Deno.kill(child.pid, "SIGCONT");
    await eventually("all run again", () => commands.every(({ child }) => !isStopped(child.pid)));
    // The situation under test: their writes met the lock (each waits in SQLite's busy handler), not
    // a signal heard before either had tried to write (which gives the same message).
    await eventually(
      "both writes wait for the lock",
      () => commands.every(({ child, exited }) => exited() || inLockBusyWait(child.pid)),
    );
    for (const { name, exited } of commands) assert.equal(exited(), false, `${name} ended while the lock was held`);
    assertLockHeld(env);
    for (const { child } of commands) child.kill("SIGTERM");
    const results = await Promise.all(commands.map(({ output }) => output));
    assert.equal(lock.released(), false, "the signals were heard only once the lock was let go");
    assertLockHeld(env);
    for (const [i, result] of results.entries()) {
      const stderr = new TextDecoder().decode(result.stderr);
      assert.deepEqual([result.signal, result.code], [null, 130], `${commands[i].name}: ${stderr}`);
      assert.match(stderr, /interrupted while waiting for state database .*'s write lock; run [fu] is unchanged/);
    }
    // Nothing was written: both runs keep their executor, f its end.
    const [failed, undriven] = [await env.status("f"), await env.status("u")];
    assert.deepEqual([failed.status, failed.executor.bin, undriven.executor.bin], ["FAILED", env.wrapper, env.wrapper]);
  },
);
