/**
 * The state file's write lock held by another process (an admin's sqlite3 shell, here a helper process
 * in a write transaction) while commands follow a run: `wait --timeout` keeps its deadline, readers
 * wait the lock out instead of failing after the busy timeout, and a signal during the wait is an
 * interrupt (130) that stores nothing.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { catchesSignal, collectText, eventually, hasOpen, isStopped } from "../helpers.ts";
import { assertLockHeld, type HeldLock, holdWriteLock, stateFile } from "./write_lock.ts";
import { type FlowEnv, flowTest, step } from "./flow_env.ts";
import { readLog } from "./stop_point.ts";
import { gatedRun, waitForFile } from "./fault_helpers.ts";
import { builtin, FAILING, TWO_STEPS, undrivenRun } from "./operator_env.ts";
import { pathExists } from "../../src/shared/mod.ts";

/** The busy timeout shortened (test-only): a command that fails once it has passed does so in 0.3 s. */
const short = { ORCHESJOB_FLOW_BUSY_TIMEOUT_MS: "300" };

/** A CLI process a test watches: whether it has exited yet, and its output once it has. */
function spawnWatched(env: FlowEnv, args: string[], extraEnv: Record<string, string> = {}) {
  const child = env.spawn(args, extraEnv);
  let exited = false;
  const output = child.output().finally(() => (exited = true));
  return { child, output, exited: () => exited };
}

flowTest(
  builtin,
  "wait --timeout gives 124 at its deadline while another process holds the write lock",
  async (env) => {
    const { go } = await gatedRun(env, "g");
    await undrivenRun(env, "u", env.flow("two.yaml", TWO_STEPS));
    // Held far longer than the waits' timeouts and than the busy timeout (15 s), after which the
    // commands used to fail (exit 70) or, taking over a run, finish their wait when the lock went.
    await using lock = await holdWriteLock(env, 60);
    const waits = [
      ["wait", "--run-key", "g", "--timeout", "2", "--interval", "0.1"],
      ["wait", "--run-key", "g", "--timeout", "2", "--interval", "0.1", "--advance"],
      // Nobody drives u: --advance would take it over, for which it needs the write lock.
      ["wait", "--run-key", "u", "--timeout", "2", "--interval", "0.1", "--advance"],
    ];
    for (const args of waits) {
      const result = await env.run(args);
      assert.equal(lock.released(), false, `${args.join(" ")} returned only once the lock was let go`);
      assert.equal(result.code, 124, `${args.join(" ")}: ${result.stderr}`);
      const status = args[2] === "g" ? "RUNNING" : "PENDING";
      assert.deepEqual(JSON.parse(result.stdout), { run_key: args[2], status, exit_code: 124, timed_out: true });
      assert.equal(result.stderr, "", args.join(" "));
    }
    assertLockHeld(env);
    await lock[Symbol.asyncDispose]();
    // Once the lock is let go, the same wait takes the undriven run over and drives it to its end.
    const done = await env.run(["wait", "--run-key", "u", "--interval", "0.1", "--advance"]);
    assert.equal(done.code, 0, done.stderr);
    // Let the gated run end too: its step would otherwise wait for its file long after this test.
    Deno.writeTextFileSync(go, "");
    const gated = await env.run(["wait", "--run-key", "g", "--interval", "0.1"]);
    assert.equal(gated.code, 0, gated.stderr);
  },
);

flowTest(
  builtin,
  "readers wait out a held write lock, past the busy timeout, and follow the run to its end",
  async (env) => {
    const { go, file } = await gatedRun(env, "g");
    // Held across the busy timeout, shortened (test-only) for the followers, after which they used to
    // fail with exit 70 ("database is locked") instead of following the run.
    await using lock = await holdWriteLock(env, 60);
    const followers = [
      ["wait", "--run-key", "g", "--interval", "0.1"],
      ["watch", "--run-key", "g", "--interval", "0.1", "--no-advance", "--mode", "append"],
      // A second foreground start of a run another process drives follows it, as wait does.
      ["start", "--run-key", "g", "-q", file],
    ].map((args) => {
      const child = env.spawn(args, short);
      const stderr = collectText(child.stderr);
      const stdout = collectText(child.stdout);
      const exited = { code: null as number | null };
      const status = child.status.then((status) => (exited.code = status.code));
      return { args, child, exited, stderr, done: Promise.all([status, stdout.done, stderr.done]) };
    });
    const db = stateFile(env);
    for (const { args, child, exited } of followers) {
      await eventually(`${args[0]} has opened the state file`, () => exited.code !== null || hasOpen(child.pid, db));
    }
    // The start says that it waits for the lock once it has waited the busy timeout.
    const start = followers[2];
    await eventually("start says it waits", () => start.exited.code !== null || start.stderr.text.includes("waiting"));
    await new Promise((resolve) => setTimeout(resolve, 1000)); // three more busy timeouts
    for (const { args, exited, stderr } of followers) {
      assert.equal(exited.code, null, `${args.join(" ")} ended while the lock was held: ${stderr.text}`);
    }
    assertLockHeld(env);
    await lock[Symbol.asyncDispose]();
    Deno.writeTextFileSync(go, "");
    for (const { args, exited, stderr, done } of followers) {
      await done;
      assert.equal(exited.code, 0, `${args.join(" ")}: ${stderr.text}`);
      const lines = stderr.text.split("\n").filter(Boolean).map((line) => JSON.parse(line));
      const expected = args[0] === "start"
        ? [{ warning: `state database ${db} is locked by another process; waiting until it lets go` }]
        : [];
      assert.deepEqual(lines, expected, args.join(" "));
    }
    assert.equal((await env.status("g")).status, "SUCCEEDED");
  },
);

for (const [signal, number] of [["SIGINT", 2], ["SIGTERM", 15], ["SIGHUP", 1], ["SIGQUIT", 3]] as const) {
  flowTest(
    builtin,
    `${signal} while start waits for a held write lock: one JSON line, exit 130, nothing stored`,
    async (env) => {
      const file = env.flow("two.yaml", TWO_STEPS);
      await env.json(["start", "--run-key", "first", file]); // the state file exists, with one run
      await using lock = await holdWriteLock(env, 60);
      const { child, output, exited } = spawnWatched(env, ["start", "--run-key", "k", "-q", file]);
      // Listening for the signal while it waits for the lock (before, the signal's default action
      // killed it with 128+N and no word).
      await eventually("start listens for the signal", () => exited() || catchesSignal(child.pid, number));
      await eventually("start has opened the state file", () => exited() || hasOpen(child.pid, stateFile(env)));
      assert.equal(exited(), false, "start ended while the lock was held");
      assertLockHeld(env);
      child.kill(signal);
      const result = await output;
      assert.equal(lock.released(), false);
      assert.deepEqual([result.signal, result.code], [null, 130]);
      assert.equal(result.stdout.length, 0);
      assert.deepEqual(JSON.parse(new TextDecoder().decode(result.stderr)), {
        error: `start: interrupted while opening state database ${stateFile(env)}; nothing was stored`,
      });
      await lock[Symbol.asyncDispose]();
      assert.equal((await env.run(["status", "--run-key", "k"])).code, 3, "no run was stored");
      const runs = await env.json(["list"]);
      assert.deepEqual(runs.map((run: { run_key: string }) => run.run_key), ["first"]);
    },
  );
}

flowTest(
  builtin,
  "a signal while wait --advance or watch waits for the write lock to drive a run: 130",
  async (env) => {
    await undrivenRun(env, "u", env.flow("two.yaml", TWO_STEPS));
    await using lock = await holdWriteLock(env, 60);
    for (
      const args of [["wait", "--advance", "--interval", "0.1"], ["watch", "--interval", "0.1", "--mode", "append"]]
    ) {
      const { child, output, exited } = spawnWatched(env, [...args, "--run-key", "u"]);
      // It has read the undriven run and listens for SIGTERM: taking the run over needs the lock.
      await eventually(`${args[0]} has read the run`, () => exited() || hasOpen(child.pid, stateFile(env)));
      await eventually(`${args[0]} listens`, () => exited() || catchesSignal(child.pid, 15));
      await new Promise((resolve) => setTimeout(resolve, 500));
      assert.equal(exited(), false, `${args[0]} ended while the lock was held`);
      assertLockHeld(env);
      child.kill("SIGTERM");
      const result = await output;
      assert.equal(result.code, 130, `${args[0]}: ${new TextDecoder().decode(result.stderr)}`);
      assert.equal(lock.released(), false);
    }
    assert.equal((await env.status("u")).status, "PENDING", "nothing was driven");
  },
);

flowTest(
  builtin,
  "wait --advance --timeout: a write the driver waits for does not outlast the deadline",
  async (env) => {
    const go = join(env.home, "go");
    const file = env.flow(
      "gated.yaml",
      `flow_id: gated\nsteps:\n  - {id: hold, command: ${JSON.stringify(waitForFile(go))}}\n`,
    );
    await undrivenRun(env, "d", file);
    const child = env.spawn(["wait", "--run-key", "d", "--timeout", "8", "--interval", "0.1", "--advance"]);
    const stdout = collectText(child.stdout);
    const stderr = collectText(child.stderr);
    await env.waitFor(
      "d",
      "wait drives it",
      (run) => run.driver?.pid === child.pid && step(run, "hold").orchesjob_status?.status === "RUNNING",
    );
    // Held for less than the busy timeout (15 s) but past the deadline: a write that waited the busy
    // timeout would get the lock when it is let go, and wait would return only then.
    await using lock = await holdWriteLock(env, 12);
    Deno.writeTextFileSync(go, ""); // hold ends: the driver must write, and waits for the lock
    const status = await child.status;
    await stdout.done;
    assert.equal(lock.released(), false, "wait returned only once the lock was let go");
    assert.equal(status.code, 124, await stderr.done);
    assert.deepEqual(JSON.parse(stdout.text), { run_key: "d", status: "RUNNING", exit_code: 124, timed_out: true });
    assertLockHeld(env);
  },
);

flowTest(
  builtin,
  "wait --timeout keeps its deadline when the state file must first be migrated under a held write lock",
  async (env) => {
    await env.json(["start", "--run-key", "old", env.flow("two.yaml", TWO_STEPS)]);
    // The file as an older schema version left it (migrations 7 and 6 undone): a follower cannot read it
    // read-only, and opens it for writing to migrate it, which needs the write lock.
    const sqlite = new DatabaseSync(stateFile(env));
    sqlite.exec(`DROP TABLE flow_definition_parts;
      ALTER TABLE flow_runs DROP COLUMN not_before;
      ALTER TABLE flow_steps DROP COLUMN retry_history;
      UPDATE schema_meta SET value = '5' WHERE key = 'schema_version'`);
    sqlite.close();
    const behind = await env.run(["status", "--run-key", "old"]);
    assert.equal(behind.code, 2, "status refuses the file of the older version");
    assert.match(behind.stderr, /has schema version 5/);
    // Held far longer than the wait's timeout: the wait used to open the file only once it was let go.
    await using lock = await holdWriteLock(env, 60);
    const result = await env.run(["wait", "--run-key", "old", "--timeout", "2", "--interval", "0.1"]);
    assert.equal(lock.released(), false, "wait returned only once the lock was let go");
    assert.equal(result.code, 124, result.stderr);
    // The run could not be read before the deadline: no status.
    assert.deepEqual(JSON.parse(result.stdout), { run_key: "old", status: null, exit_code: 124, timed_out: true });
    assert.equal(result.stderr, "");
    assertLockHeld(env);
    await lock[Symbol.asyncDispose]();
    // Once the lock is let go, the wait migrates the file and reads the run.
    const done = await env.run(["wait", "--run-key", "old", "--timeout", "60", "--interval", "0.1"]);
    assert.equal(done.code, 0, done.stderr);
    assert.equal(JSON.parse(done.stdout).status, "SUCCEEDED");
    // The deadline only gives up waiting for the lock: a state file opened at once is read, however
    // short the timeout, and an ended run gives its own code.
    const short = await env.run(["wait", "--run-key", "old", "--timeout", "0.01"]);
    assert.equal(short.code, 0, short.stdout + short.stderr);
    assert.equal(JSON.parse(short.stdout).status, "SUCCEEDED");
  },
);

flowTest(
  builtin,
  "watch driving a run it took over waits out a write lock held past the busy timeout",
  async (env) => {
    const go = join(env.home, "go");
    const file = env.flow(
      "gated.yaml",
      `flow_id: gated\nsteps:\n  - {id: hold, command: ${
        JSON.stringify(waitForFile(go))
      }}\n  - {id: after, when: hold, command: ["true"]}\n`,
    );
    await undrivenRun(env, "w", file);
    // The busy timeout shortened (test-only) so that the lock is held past it many times over.
    const child = env.spawn(["watch", "--run-key", "w", "--interval", "0.1", "--mode", "append"], {
      ORCHESJOB_FLOW_BUSY_TIMEOUT_MS: "300",
    });
    let exited = false;
    const status = child.status.finally(() => (exited = true));
    const stdout = collectText(child.stdout);
    const stderr = collectText(child.stderr);
    await env.waitFor(
      "w",
      "watch drives it",
      (run) => run.driver?.pid === child.pid && step(run, "hold").orchesjob_status?.status === "RUNNING",
    );
    await using lock = await holdWriteLock(env, 60);
    Deno.writeTextFileSync(go, ""); // hold ends: the driver must write, and meets the lock
    // Its write failed after the busy timeout (it used to end watch with exit 70 there) and is retried.
    await eventually("watch meets the lock", () => exited || stderr.text.includes("state database unusable"));
    await new Promise((resolve) => setTimeout(resolve, 1000)); // more busy timeouts
    assert.equal(exited, false, `watch ended while the lock was held: ${stderr.text}`);
    assertLockHeld(env);
    await lock[Symbol.asyncDispose]();
    assert.equal((await status).code, 0, stderr.text);
    await stdout.done;
    await stderr.done;
    const lines = stderr.text.split("\n").filter(Boolean).map((line) => JSON.parse(line));
    assert.equal(lines[0].warning, "Driver: none; resume with: orchesjob-flow resume --run-key w");
    assert.ok(lines.length > 1, stderr.text);
    for (const line of lines.slice(1)) {
      assert.equal(
        line.error,
        "state database unusable, retrying: database is locked (another process holds its write lock)",
      );
      assert.equal(line.run_key, "w");
    }
    const run = await env.status("w");
    assert.equal(run.status, "SUCCEEDED");
    assert.equal(run.error, null, "the wait shown as the run's error is cleared");
    for (const id of ["hold", "after"]) assert.equal(step(run, id).attempt_no, 1, `${id} ran once`);
  },
);

flowTest(
  builtin,
  "a signal while a foreground start's driver waits for another process's write lock: 130 before the lock goes",
  async (env) => {
    const [go, ended] = [join(env.home, "go"), join(env.home, "ended")];
    const file = env.flow(
      "gated.yaml",
      `flow_id: gated\nsteps:\n  - {id: hold, command: ${
        JSON.stringify(`${waitForFile(go)}; touch '${ended}'`)
      }}\n  - {id: after, when: hold, command: ["true"]}\n`,
    );
    const { child, output, exited } = spawnWatched(env, ["start", "--run-key", "s", "-q", file]);
    await env.waitFor(
      "s",
      "start drives it",
      (run) => run.driver?.pid === child.pid && step(run, "hold").orchesjob_status?.status === "RUNNING",
    );
    await eventually("start listens for SIGINT", () => exited() || catchesSignal(child.pid, 2));
    // Held for less than the busy timeout (15 s): a write that waited the whole busy timeout would get
    // the lock when it is let go, and the signal would be heard only then.
    await using lock = await holdWriteLock(env, 12);
    Deno.writeTextFileSync(go, ""); // hold ends: the driver must write, and waits for the lock
    await eventually("hold's command has ended", () => pathExists(ended));
    await new Promise((resolve) => setTimeout(resolve, 500)); // the driver meets the lock
    assert.equal(exited(), false, "start ended while the lock was held");
    assertLockHeld(env);
    child.kill("SIGINT");
    const result = await output;
    assert.equal(lock.released(), false, "start heard the signal only once the lock was let go");
    assert.deepEqual([result.signal, result.code], [null, 130]);
    assert.equal(new TextDecoder().decode(result.stderr), "", "nothing said before the busy timeout");
    const final = JSON.parse(new TextDecoder().decode(result.stdout));
    assert.deepEqual([final.status, step(final, "hold").status, step(final, "after").status], [
      "RUNNING",
      "RUNNING",
      "PENDING",
    ]);
    await lock[Symbol.asyncDispose]();
    // The run stays resumable, each step run once.
    const resumed = await env.json(["resume", "--run-key", "s", "-q"]);
    assert.equal(resumed.status, "SUCCEEDED");
    for (const id of ["hold", "after"]) assert.equal(step(resumed, id).attempt_no, 1, `${id} ran once`);
  },
);

flowTest(
  builtin,
  "cancel waits out a held write lock past the busy timeout; a signal meanwhile leaves the run unchanged",
  async (env) => {
    const { go } = await gatedRun(env, "g");
    const db = stateFile(env);
    // The busy timeout shortened (test-only): opening used to fail with exit 70 once it had passed.
    await using lock = await holdWriteLock(env, 60);
    const spawnCancel = () => spawnWatched(env, ["cancel", "--run-key", "g", "--grace-seconds", "1"], short);
    // A signal while it waits: one JSON line, 130, nothing changed.
    const first = spawnCancel();
    await eventually("cancel listens", () => first.exited() || catchesSignal(first.child.pid, 2));
    await eventually("cancel has opened the state file", () => first.exited() || hasOpen(first.child.pid, db));
    await new Promise((resolve) => setTimeout(resolve, 1000)); // past the busy timeout, three times over
    assert.equal(first.exited(), false, "cancel ended while the lock was held");
    assertLockHeld(env);
    first.child.kill("SIGINT");
    const interrupted = await first.output;
    assert.equal(lock.released(), false);
    assert.deepEqual([interrupted.signal, interrupted.code], [null, 130]);
    assert.deepEqual(
      new TextDecoder().decode(interrupted.stderr).split("\n").filter(Boolean).map((line) => JSON.parse(line)),
      [
        { warning: `state database ${db} is locked by another process; waiting until it lets go` },
        { error: "cancel: interrupted before the cancel was committed; run g is unchanged" },
      ],
    );
    // Waited out: the cancel goes through once the lock is let go.
    const second = spawnCancel();
    await eventually("cancel has opened the state file", () => second.exited() || hasOpen(second.child.pid, db));
    await new Promise((resolve) => setTimeout(resolve, 1000));
    assert.equal(second.exited(), false, "cancel ended while the lock was held");
    assertLockHeld(env);
    assert.equal((await env.status("g")).status, "RUNNING", "nothing changed while the lock was held");
    await lock[Symbol.asyncDispose]();
    const result = await second.output;
    const stderr = new TextDecoder().decode(result.stderr);
    assert.equal(result.code, 0, stderr);
    assert.equal(JSON.parse(new TextDecoder().decode(result.stdout)).status, "CANCELLED");
    assert.deepEqual(stderr.split("\n").filter(Boolean).map((line) => JSON.parse(line)), [
      { warning: `state database ${db} is locked by another process; waiting until it lets go` },
    ]);
    Deno.writeTextFileSync(go, "");
    const waited = await env.run(["wait", "--run-key", "g", "--interval", "0.1"]);
    assert.equal(waited.code, 4, waited.stderr);
  },
);

flowTest(
  builtin,
  "a background driver that finds the write lock held waits it out and drives the run",
  async (env) => {
    // What `start -d` launches, when another process took the write lock after start -d let it go.
    await undrivenRun(env, "d", env.flow("two.yaml", TWO_STEPS));
    await using lock = await holdWriteLock(env, 60);
    const { child, output, exited } = spawnWatched(env, ["_drive", "--run-key", "d"], {
      ORCHESJOB_FLOW_BUSY_TIMEOUT_MS: "300",
    });
    await eventually("the driver has opened the state file", () => exited() || hasOpen(child.pid, stateFile(env)));
    await new Promise((resolve) => setTimeout(resolve, 1000)); // past the busy timeout, three times over
    assert.equal(exited(), false, "the driver ended while the lock was held (it used to exit 70)");
    assertLockHeld(env);
    assert.equal((await env.status("d")).status, "PENDING");
    await lock[Symbol.asyncDispose]();
    const result = await output;
    const stderr = new TextDecoder().decode(result.stderr);
    assert.equal(result.code, 0, stderr);
    assert.equal(JSON.parse(new TextDecoder().decode(result.stdout)).status, "SUCCEEDED");
    assert.deepEqual(stderr.split("\n").filter(Boolean).map((line) => JSON.parse(line)), [
      { warning: `state database ${stateFile(env)} is locked by another process; waiting until it lets go` },
    ]);
  },
);

/** The lines of a command's stderr, each parsed as JSON (each must be one). */
function jsonLines(bytes: Uint8Array): Record<string, unknown>[] {
  return new TextDecoder().decode(bytes).split("\n").filter(Boolean).map((line) => JSON.parse(line));
}

const LOCK_HELD_REASON_TEXT = "database is locked (another process holds its write lock)";

const LOCKED_WARNING = (env: FlowEnv) => ({
  warning: `state database ${stateFile(env)} is locked by another process; waiting until it lets go`,
});

/** A job of the built-in runner, started by its CLI, that runs until the test aborts it (or for 30 s). */
async function sleepingJob(env: FlowEnv, runKey: string): Promise<void> {
  const started = await env.run(["job", "start", "--run-key", runKey, "--", "sleep", "30"]);
  assert.equal(started.code, 0, started.stderr);
}

/** Kills, when disposed, those of `watched` still running: a test that fails leaves none behind. */
/** An ended run "done", a run "u" nobody drives, a running job "j1"; then the write lock held. */
async function endedUndrivenAndRunningUnderLock(env: FlowEnv): Promise<HeldLock> {
  await env.json(["start", "--run-key", "done", "-q", env.flow("two.yaml", TWO_STEPS)]);
  await undrivenRun(env, "u", env.flow("two.yaml", TWO_STEPS));
  await sleepingJob(env, "j1");
  return await holdWriteLock(env, 60);
}

function killOnExit(watched: readonly ReturnType<typeof spawnWatched>[]): AsyncDisposable {
  return {
    async [Symbol.asyncDispose]() {
      for (const { child, exited } of watched) if (!exited()) child.kill("SIGKILL");
      await Promise.allSettled(watched.map(({ output }) => output));
    },
  };
}

flowTest(
  builtin,
  "tick, clean and the job commands that change state wait out a held write lock; job status and clean --dry-run answer at once",
  async (env) => {
    await using lock = await endedUndrivenAndRunningUnderLock(env);
    const db = stateFile(env);
    const waiting = [
      ["tick", "--run-key", "u"],
      ["clean", "--older-than", "0"],
      ["job", "start", "--run-key", "j2", "--", "true"],
      ["job", "abort", "--run-key", "j1", "--grace-seconds", "1"],
    ].map((args) => ({ args, ...spawnWatched(env, args, short) }));
    await using _kill = killOnExit(waiting);
    for (const { args, child, exited } of waiting) {
      await eventually(`${args.join(" ")} has opened the state file`, () => exited() || hasOpen(child.pid, db));
    }
    // Readers do not wait: they read the file read-only.
    const status = await env.run(["job", "status", "--run-key", "j1"], short);
    assert.equal(status.code, 0, status.stderr);
    assert.equal(JSON.parse(status.stdout).status, "RUNNING");
    assert.equal(status.stderr, "");
    const dry = await env.run(["clean", "--older-than", "0", "--dry-run"], short);
    assert.equal(dry.code, 0, dry.stderr);
    assert.deepEqual(JSON.parse(dry.stdout).runs.map((run: { run_key: string }) => run.run_key), ["done"]);
    assert.equal(lock.released(), false, "the readers answered while the lock was held");
    await new Promise((resolve) => setTimeout(resolve, 1000)); // past the busy timeout, three times over
    for (const { args, exited } of waiting) assert.equal(exited(), false, `${args.join(" ")} ended under the lock`);
    assertLockHeld(env);
    assert.equal((await env.status("u")).status, "PENDING", "nothing changed while the lock was held");
    await lock[Symbol.asyncDispose]();
    const results = await Promise.all(waiting.map(({ output }) => output));
    results.forEach((result, i) => {
      const args = waiting[i].args.join(" ");
      assert.equal(result.code, 0, `${args}: ${new TextDecoder().decode(result.stderr)}`);
      assert.deepEqual(jsonLines(result.stderr), [LOCKED_WARNING(env)], args);
    });
    const [tick, clean, start, abort] = results.map((result) => JSON.parse(new TextDecoder().decode(result.stdout)));
    assert.equal(step(tick, "a").attempt_no, 1, "tick started the first step");
    assert.deepEqual(clean.runs.map((run: { run_key: string }) => run.run_key), ["done"]);
    assert.equal(start.run_key, "j2");
    assert.equal(abort.status, "ABORTED");
    // Each job started once.
    for (const key of ["j1", "j2"]) assert.equal((await env.jobs(key)).length, 1, key);
  },
);

flowTest(
  builtin,
  "a signal while tick, clean or a job command waits for a held write lock: 130, one JSON error line, nothing stored",
  async (env) => {
    await using lock = await endedUndrivenAndRunningUnderLock(env);
    const db = stateFile(env);
    const cases = [
      {
        args: ["tick", "--run-key", "u"],
        signal: "SIGINT",
        error: `tick: interrupted while opening state database ${db}; nothing was stored`,
      },
      {
        args: ["clean", "--older-than", "0"],
        signal: "SIGTERM",
        error: `clean: interrupted while opening state database ${db}; nothing was stored`,
      },
      {
        args: ["job", "start", "--run-key", "j2", "--", "true"],
        signal: "SIGINT",
        error: "job start: interrupted; nothing was stored",
      },
      {
        args: ["job", "abort", "--run-key", "j1"],
        signal: "SIGTERM",
        error: "job abort: interrupted; nothing was stored",
      },
    ] as const;
    const waiting = cases.map(({ args }) => spawnWatched(env, [...args], short));
    await using _kill = killOnExit(waiting);
    for (const [i, { child, exited }] of waiting.entries()) {
      const what = cases[i].args.join(" ");
      await eventually(
        `${what} listens`,
        () => exited() || catchesSignal(child.pid, cases[i].signal === "SIGINT" ? 2 : 15),
      );
      await eventually(`${what} has opened the state file`, () => exited() || hasOpen(child.pid, db));
    }
    await new Promise((resolve) => setTimeout(resolve, 1000)); // past the busy timeout, three times over
    for (const [i, { exited }] of waiting.entries()) assert.equal(exited(), false, `${cases[i].args.join(" ")} ended`);
    assertLockHeld(env);
    for (const [i, { child }] of waiting.entries()) child.kill(cases[i].signal);
    for (const [i, { output }] of waiting.entries()) {
      const result = await output;
      const what = cases[i].args.join(" ");
      assert.deepEqual([result.signal, result.code], [null, 130], what);
      assert.equal(result.stdout.length, 0, what);
      assert.deepEqual(jsonLines(result.stderr), [LOCKED_WARNING(env), { error: cases[i].error }], what);
    }
    assert.equal(lock.released(), false, "each heard its signal while the lock was held");
    await lock[Symbol.asyncDispose]();
    // Nothing stored: the run not advanced, nothing cleaned, no job started or aborted.
    assert.equal((await env.status("u")).status, "PENDING");
    assert.deepEqual((await env.json(["list"])).map((run: { run_key: string }) => run.run_key).sort(), ["done", "u"]);
    assert.equal((await env.run(["job", "status", "--run-key", "j2"])).code, 3, "no job j2");
    assert.equal(JSON.parse((await env.run(["job", "status", "--run-key", "j1"])).stdout).status, "RUNNING");
    const abort = await env.run(["job", "abort", "--run-key", "j1", "--grace-seconds", "1"]);
    assert.equal(abort.code, 0, abort.stderr);
  },
);

flowTest(
  builtin,
  "cancel, start, retry, job start and tick wait out a write lock taken right after they opened the state file; a signal meanwhile: 130",
  async (env) => {
    const { go } = await gatedRun(env, "g");
    // Whatever happens below, the gated step ends before the test's directory goes.
    await using _go = {
      async [Symbol.asyncDispose]() {
        Deno.writeTextFileSync(go, "");
        await env.waitFor("g", "hold ended", (run) => step(run, "hold").status !== "RUNNING", 30).catch(() => {});
      },
    };
    await undrivenRun(env, "u", env.flow("two.yaml", TWO_STEPS));
    const failing = env.flow("failing.yaml", FAILING);
    assert.equal((await env.run(["start", "--run-key", "f", "-q", failing])).code, 1);
    const db = stateFile(env);
    const log = join(env.home, "stop.log");
    // Each stops (test-only SIGSTOP) once it has opened the state file, before its first write; the
    // lock is taken in that window. Its first write then met the lock, waited the busy timeout
    // (shortened) and failed with exit 70 (`job`: 1).
    const stopped = { ORCHESJOB_FLOW_BUSY_TIMEOUT_MS: "300", ORCHESJOB_FLOW_STOP_AT: "session:opened" };
    const all: ReturnType<typeof spawnWatched>[] = [];
    await using _kill = killOnExit(all);
    const spawnStopped = async (args: string[]) => {
      const watched = spawnWatched(env, args, { ...stopped, ORCHESJOB_FLOW_CRASH_LOG: log });
      all.push(watched);
      await eventually(`${args[0]} stopped once it opened the state file`, () => {
        const text = readLog(log);
        return watched.exited() ||
          (text.includes(`session:opened ${watched.child.pid}\n`) && isStopped(watched.child.pid));
      });
      assert.equal(watched.exited(), false);
      assert.ok(hasOpen(watched.child.pid, db), `${args[0]} has the state file open`);
      return watched;
    };
    const cancel = await spawnStopped(["cancel", "--run-key", "g", "--grace-seconds", "1"]);
    const start = await spawnStopped(["job", "start", "--run-key", "j", "--", "true"]);
    const tick = await spawnStopped(["tick", "--run-key", "u"]);
    const flowStart = await spawnStopped(["start", "--run-key", "s", "-q", env.flow("two.yaml", TWO_STEPS)]);
    const retry = await spawnStopped(["retry", "--run-key", "f", "-q"]);
    await using lock = await holdWriteLock(env, 60);
    for (const { child } of all) Deno.kill(child.pid, "SIGCONT");
    await eventually("cancel listens again", () => cancel.exited() || !isStopped(cancel.child.pid));
    await new Promise((resolve) => setTimeout(resolve, 1000)); // past the busy timeout, three times over
    assert.equal(cancel.exited(), false, "cancel ended while the lock was held");
    assert.equal(start.exited(), false, "job start ended while the lock was held");
    assert.equal(tick.exited(), false, "tick ended while the lock was held");
    assert.equal(flowStart.exited(), false, "start ended while the lock was held");
    assert.equal(retry.exited(), false, "retry ended while the lock was held");
    assert.equal((await env.run(["status", "--run-key", "s"])).code, 3, "run s not created under the lock");
    assertLockHeld(env);
    cancel.child.kill("SIGINT");
    const interrupted = await cancel.output;
    assert.equal(lock.released(), false);
    assert.deepEqual([interrupted.signal, interrupted.code], [null, 130]);
    assert.deepEqual(jsonLines(interrupted.stderr), [
      LOCKED_WARNING(env),
      { error: "cancel: interrupted before the cancel was committed; run g is unchanged" },
    ]);
    await lock[Symbol.asyncDispose]();
    const started = await start.output;
    assert.equal(started.code, 0, new TextDecoder().decode(started.stderr));
    assert.deepEqual(jsonLines(started.stderr), [LOCKED_WARNING(env)]);
    assert.equal(JSON.parse(new TextDecoder().decode(started.stdout)).run_key, "j");
    assert.equal((await env.jobs("j")).length, 1, "job j started once");
    // tick's advance met the lock: each round it cut short was said and tried again.
    const ticked = await tick.output;
    assert.equal(ticked.code, 0, new TextDecoder().decode(ticked.stderr));
    const lines = jsonLines(ticked.stderr);
    assert.ok(lines.length > 0);
    for (const line of lines) {
      assert.equal(line.error, `state database unusable, retrying: ${LOCK_HELD_REASON_TEXT}`);
      assert.equal(line.run_key, "u");
    }
    const advanced = JSON.parse(new TextDecoder().decode(ticked.stdout));
    assert.equal(step(advanced, "a").attempt_no, 1, "tick started the first step, once");
    assert.equal(advanced.error, null, "the wait shown as the run's error is cleared");
    // start created its run once the lock went, and drove it.
    const flowStarted = await flowStart.output;
    assert.equal(flowStarted.code, 0, new TextDecoder().decode(flowStarted.stderr));
    assert.deepEqual(jsonLines(flowStarted.stderr), [LOCKED_WARNING(env)]);
    assert.equal(JSON.parse(new TextDecoder().decode(flowStarted.stdout)).status, "SUCCEEDED");
    // retry reopened its run once (one round, a second attempt), and drove it.
    const retried = await retry.output;
    assert.equal(retried.code, 1, new TextDecoder().decode(retried.stderr));
    assert.deepEqual(jsonLines(retried.stderr), [LOCKED_WARNING(env)]);
    const again = JSON.parse(new TextDecoder().decode(retried.stdout));
    assert.deepEqual([again.rounds.length, step(again, "a").attempt_no], [1, 2]);
    assert.equal((await env.status("g")).status, "RUNNING", "the run was not cancelled");
    Deno.writeTextFileSync(go, "");
    const waited = await env.run(["wait", "--run-key", "g", "--interval", "0.1"]);
    assert.equal(waited.code, 0, waited.stderr);
  },
);

flowTest(
  builtin,
  "clean waits out a write lock taken right after it opened the state file; a signal meanwhile: 130, the run kept",
  async (env) => {
    await env.json(["start", "--run-key", "done", "-q", env.flow("two.yaml", TWO_STEPS)]);
    const log = join(env.home, "stop.log");
    const clean = spawnWatched(env, ["clean", "--older-than", "0"], {
      ORCHESJOB_FLOW_BUSY_TIMEOUT_MS: "300",
      ORCHESJOB_FLOW_STOP_AT: "session:opened",
      ORCHESJOB_FLOW_CRASH_LOG: log,
    });
    await using _kill = killOnExit([clean]);
    const pid = clean.child.pid;
    await eventually("clean stopped once it opened the state file", () => {
      const text = readLog(log);
      return clean.exited() || (text === `session:opened ${pid}\n` && isStopped(pid));
    });
    await using lock = await holdWriteLock(env, 60);
    Deno.kill(pid, "SIGCONT");
    await eventually("clean runs again", () => clean.exited() || !isStopped(pid));
    await new Promise((resolve) => setTimeout(resolve, 1000)); // past the busy timeout, three times over
    // Its deletion of the run used to fail after the busy timeout (exit 70).
    assert.equal(clean.exited(), false, "clean ended while the lock was held");
    assertLockHeld(env);
    clean.child.kill("SIGTERM");
    const result = await clean.output;
    assert.equal(lock.released(), false);
    assert.deepEqual([result.signal, result.code], [null, 130]);
    assert.equal(result.stdout.length, 0);
    assert.deepEqual(jsonLines(result.stderr), [
      LOCKED_WARNING(env),
      { error: "clean: interrupted after deleting 0 run(s); the rest are left for the next clean" },
    ]);
    await lock[Symbol.asyncDispose]();
    assert.equal((await env.status("done")).status, "SUCCEEDED", "the run was kept");
  },
);
