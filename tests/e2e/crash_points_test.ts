/**
 * Exactly once under a crash at each named point (src/shared/crash_point.ts): the process dies by
 * SIGKILL exactly there (the crash log proves it), the run is resumed, and marker files prove that
 * every step ran once and the statuses are right, with no job process left behind.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import type { CrashPoint } from "../../src/shared/mod.ts";
import { LOST_AFTER_START } from "../../src/engine/mod.ts";
import { type FlowEnv, flowTest, statuses, step } from "./flow_env.ts";
import { eventually, processAlive } from "../helpers.ts";
import { bashPath } from "../../src/executor/builtin/supervisor.ts";
import { assertNoJobProcesses, countLines, logged, runCrashingAt, waitForLines } from "./fault_helpers.ts";
import { spawnStopped } from "./stop_point.ts";

const builtin = ["builtin"] as const;

/** a, then b and c in parallel. */
function fanOut(log: string): string {
  return `flow_id: fan
steps:
  - {id: a, command: ${logged(log, "a")}}
  - {id: b, when: a, command: ${logged(log, "b")}}
  - {id: c, when: a, command: ${logged(log, "c")}}
`;
}

const DRIVER_POINTS: CrashPoint[] = [
  "driver:after-intent",
  "runner:after-job-row",
  "runner:after-supervisor-spawn",
  "driver:before-job-recorded",
];

for (const point of DRIVER_POINTS) {
  flowTest(builtin, `crash at ${point}, then resume: every step runs once and the run succeeds`, async (env) => {
    const log = join(env.home, "ran");
    const file = env.flow("fan.yaml", fanOut(log));
    await runCrashingAt(env, point, ["start", "--run-key", "k", file]);
    const crashed = await env.status("k");
    assert.equal(step(crashed, "a").status, "RUNNING", "the crash left step a mid-start");
    const final = await env.json(["start", "--run-key", "k", file]);
    assert.equal(final.status, "SUCCEEDED", JSON.stringify(final));
    assert.deepEqual(statuses(final), { a: "SUCCEEDED", b: "SUCCEEDED", c: "SUCCEEDED" });
    assert.deepEqual(countLines(log), { a: 1, b: 1, c: 1 });
    for (const id of ["a", "b", "c"]) assert.equal((await env.jobs(`k:${id}:1`)).length, 1, id);
    await assertNoJobProcesses(env.home);
  });
}

/** Ten steps in the first round (the built-in runner starts them together, an external orchesjob 8 at a time), then z. */
function wideFanOut(log: string): string {
  const roots = Array.from({ length: 10 }, (_, i) => `r${i}`);
  return `flow_id: wide\nsteps:\n${roots.map((id) => `  - {id: ${id}, command: ${logged(log, id)}}\n`).join("")}` +
    `  - {id: z, depends_on: [${roots.join(", ")}], command: ${logged(log, "z")}}\n`;
}

// The points above hit the start of step a, alone in its round: here they hit a round of parallel
// starts, where some of the round's intents, job rows, spawns or answers are made and others not.
const WIDE_POINTS: Record<"builtin" | "external", CrashPoint[]> = {
  builtin: ["driver:after-intent", "runner:launch-written", ...DRIVER_POINTS.slice(1)],
  external: ["driver:after-intent", "driver:before-job-recorded"],
};
for (const mode of ["builtin", "external"] as const) {
  for (const point of WIDE_POINTS[mode]) {
    flowTest([mode], `crash at ${point} in a round of 10 parallel starts: each step runs once`, async (env) => {
      const log = join(env.home, "ran");
      const file = env.flow("wide.yaml", wideFanOut(log));
      await runCrashingAt(env, point, ["start", "--run-key", "k", file]);
      const crashed = await env.status("k");
      const running = crashed.steps.filter((s: { status: string }) => s.status === "RUNNING");
      assert.ok(running.length >= 1, `the crash left starts under way: ${JSON.stringify(statuses(crashed))}`);
      assert.equal(step(crashed, "z").status, "PENDING");
      const final = await env.json(["start", "--run-key", "k", file]);
      assert.equal(final.status, "SUCCEEDED", JSON.stringify(final));
      const once = Object.fromEntries([...Array.from({ length: 10 }, (_, i) => `r${i}`), "z"].map((id) => [id, 1]));
      assert.deepEqual(countLines(log), once);
      for (const id of Object.keys(once)) assert.equal((await env.jobs(`k:${id}:1`)).length, 1, id);
      await assertNoJobProcesses(env.home);
    });
  }
}

// With an external orchesjob (the `orchesjob-flow job` wrapper), the driver dies at its own points as
// above; the runner's points are in orchesjob's `start` call instead.
for (const point of ["driver:after-intent", "driver:before-job-recorded"] as const) {
  flowTest(["external"], `crash at ${point}, then resume: every step runs once and the run succeeds`, async (env) => {
    const log = join(env.home, "ran");
    const file = env.flow("fan.yaml", fanOut(log));
    await runCrashingAt(env, point, ["start", "--run-key", "k", file]);
    const crashed = step(await env.status("k"), "a");
    assert.deepEqual([crashed.status, crashed.orchesjob_status], ["RUNNING", null], "the crash left a mid-start");
    const made = point === "driver:before-job-recorded" ? 1 : 0;
    assert.equal((await env.jobs("k:a:1")).length, made, "orchesjob made a's job only if the crash came after it");
    const final = await env.json(["start", "--run-key", "k", file]);
    assert.equal(final.status, "SUCCEEDED", JSON.stringify(final));
    assert.deepEqual(statuses(final), { a: "SUCCEEDED", b: "SUCCEEDED", c: "SUCCEEDED" });
    assert.deepEqual(countLines(log), { a: 1, b: 1, c: 1 });
    for (const id of ["a", "b", "c"]) assert.equal((await env.jobs(`k:${id}:1`)).length, 1, id);
    await assertNoJobProcesses(env.home);
  });
}

// An orchesjob `start` call SIGKILLed after its job row, or after its supervisor's spawn, every time (the
// run's environment, which every call gets, names the point): the driver takes the call's death for an
// unknown start and asks the key, whose job the status call launches if nothing claimed it yet.
for (const point of ["runner:after-job-row", "runner:after-supervisor-spawn"] as const) {
  flowTest(["external"], `every orchesjob start call killed at ${point}: each step still runs once`, async (env) => {
    const log = join(env.home, "ran");
    const file = env.flow("fan.yaml", fanOut(log));
    const { log: crashes, code } = await runCrashingAt(env, point, ["start", "--run-key", "k", file], false);
    assert.equal(code, 0, "the driver itself went on to the end");
    assert.equal(crashes.length, 3, `one killed start call per step: ${crashes.join(", ")}`);
    const final = await env.status("k");
    assert.deepEqual(statuses(final), { a: "SUCCEEDED", b: "SUCCEEDED", c: "SUCCEEDED" });
    assert.deepEqual(countLines(log), { a: 1, b: 1, c: 1 });
    for (const id of ["a", "b", "c"]) assert.equal((await env.jobs(`k:${id}:1`)).length, 1, id);
    await assertNoJobProcesses(env.home);
  });
}

flowTest(builtin, "crash in the supervisor before the exit file: the attempt is LOST, not run again", async (env) => {
  const log = join(env.home, "ran");
  const file = env.flow(
    "lost.yaml",
    `flow_id: lost
steps:
  - {id: a, retries: 2, command: ${logged(log, "a")}}
  - {id: b, when: a, command: ${logged(log, "b")}}
`,
  );
  const { code } = await runCrashingAt(env, "supervisor:before-exit-file", ["start", "--run-key", "k", file], false);
  assert.equal(code, 1);
  const final = await env.status("k");
  assert.deepEqual(statuses(final), { a: "FAILED", b: "SKIPPED" });
  assert.equal(step(final, "a").error, LOST_AFTER_START);
  assert.equal(step(final, "a").orchesjob_status.status, "LOST");
  assert.deepEqual(countLines(log), { a: 1 }, "a lost attempt whose command ran is not retried");
  await assertNoJobProcesses(env.home);
});

/**
 * A step with a 1 s timeout and one retry. Attempt 1 ignores SIGTERM (so only the SIGKILL after the
 * grace ends it) and writes its PID to `first`; attempt 2 logs an overlap if attempt 1's shell is still
 * a live process (a zombie left unreaped here counts as gone).
 */
function graceFlow(env: FlowEnv): { log: string; first: string; file: string } {
  const log = join(env.home, "ran");
  const first = join(env.home, "first-attempt-pid");
  const script = `if [ ! -e '${first}' ]; then echo $$ > '${first}'; trap '' TERM; echo a1 >> '${log}'; ` +
    `sleep 60; echo a1-survived >> '${log}'; else state=$(sed 's/.*) //' /proc/$(cat '${first}')/stat 2>/dev/null); ` +
    `case $state in ''|Z*|X*) ;; *) echo "overlap $state" >> '${log}' ;; esac; ` +
    `echo a2 >> '${log}'; fi`;
  const file = env.flow(
    "grace.yaml",
    `flow_id: grace\nsteps:\n  - {id: a, retries: 1, timeout_sec: 1, command: ${JSON.stringify(script)}}\n`,
  );
  return { log, first, file };
}

flowTest(builtin, "crash during a timeout's abort grace: the resume kills attempt 1 before attempt 2", async (env) => {
  const { log, first, file } = graceFlow(env);
  await runCrashingAt(env, "runner:abort-grace", ["start", "--run-key", "k", file]);
  const attempt1 = Number(Deno.readTextFileSync(first).trim());
  const final = await env.json(["start", "--run-key", "k", file]);
  assert.equal(final.status, "SUCCEEDED", JSON.stringify(final));
  assert.equal(step(final, "a").attempt_no, 2);
  assert.deepEqual(countLines(log), { a1: 1, a2: 1 }, "attempt 2 ran alone, once; attempt 1 never survived");
  assert.ok(!processAlive(attempt1), "attempt 1 is gone");
  await assertNoJobProcesses(env.home);
});

flowTest(builtin, "crash after a cancel's commit: a second cancel aborts what the first left running", async (env) => {
  const log = join(env.home, "ran");
  const file = env.flow(
    "long.yaml",
    `flow_id: long
steps:
  - {id: long, command: ${logged(log, "long", "sleep 60; echo survived >> '" + log + "'")}}
  - {id: after, when: long, command: ${logged(log, "after")}}
`,
  );
  const driver = env.spawn(["start", "--run-key", "k", file]);
  await waitForLines(log, 1);
  await runCrashingAt(env, "cancel:after-commit", ["cancel", "--run-key", "k", "--grace-seconds", "1"]);
  const between = await env.status("k");
  assert.equal(between.status, "CANCELLED");
  assert.equal(step(between, "long").status, "RUNNING", "the crash left the running step to abort");
  // resume and wait of the run say so (they exited 4 in silence, as for a run whose steps all ended).
  const hint = "run k is CANCELLED, but its cancel stopped before it ended step(s) long, which may still run: " +
    "'orchesjob-flow cancel --run-key k' ends them";
  for (const args of [["resume", "-q", "--run-key", "k"], ["wait", "--run-key", "k", "--timeout", "5"]]) {
    const told = await env.run(args);
    assert.equal(told.code, 4, told.stderr);
    assert.deepEqual(JSON.parse(told.stderr), { warning: hint, run_key: "k", running: ["long"] }, args[0]);
  }
  // Given --db, the command it names has it too: copied, it would otherwise look in the default state file.
  const db = join(env.home, "orchesjob-flow.sqlite3");
  const withDb = await env.run(["--db", db, "wait", "--run-key", "k", "--timeout", "5"]);
  assert.equal(withDb.code, 4, withDb.stderr);
  assert.equal(
    JSON.parse(withDb.stderr).warning,
    hint.replace("orchesjob-flow cancel", `orchesjob-flow --db ${db} cancel`),
  );
  const again = await env.json(["cancel", "--run-key", "k", "--grace-seconds", "1"]);
  assert.deepEqual(statuses(again), { long: "CANCELLED", after: "CANCELLED" });
  await driver.output();
  await assertNoJobProcesses(env.home);
  assert.deepEqual(countLines(log), { long: 1 });
});

flowTest(
  builtin,
  "crash during a timeout's abort grace, then cancel: the cancel's own grace ends the living group",
  async (env) => {
    const pidFile = join(env.home, "pid");
    // The command ignores SIGTERM: only a SIGKILL ends it, and no driver is left to send one.
    const script = `echo $$ > '${pidFile}'; trap '' TERM; while :; do sleep 0.1; done`;
    const file = env.flow(
      "grace.yaml",
      `flow_id: grace\nsteps:\n  - {id: a, retries: 1, timeout_sec: 1, command: ${JSON.stringify(script)}}\n`,
    );
    await runCrashingAt(env, "runner:abort-grace", ["start", "--run-key", "k", file]);
    const pid = Number(Deno.readTextFileSync(pidFile).trim());
    assert.ok(processAlive(pid), "the timed-out command outlived its driver");
    const job = (await env.jobs("k:a:1"))[0];
    const deadline = Number(Deno.readTextFileSync(join(env.home, "jobs", `${job.job_id}.abort`)).trim());
    const cancelled = await env.json(["cancel", "--run-key", "k", "--grace-seconds", "0"]);
    // Before the timeout's own SIGKILL deadline: any read after it would have sent that SIGKILL.
    assert.ok(Date.now() / 1000 < deadline, "the cancel ended before the timeout's deadline");
    assert.equal(step(cancelled, "a").status, "CANCELLED");
    assert.ok(!processAlive(pid), "the cancel's SIGKILL (grace 0) ended the command before the cancel returned");
    await assertNoJobProcesses(env.home);
  },
);

flowTest(
  builtin,
  "crash after an attempt's intent, resumed past its timeout: the timeout counts from the job's start",
  async (env) => {
    const log = join(env.home, "ran");
    const file = env.flow(
      "timed.yaml",
      `flow_id: timed\nsteps:\n  - {id: a, timeout_sec: 3, command: ${logged(log, "a", "sleep 1")}}\n`,
    );
    await runCrashingAt(env, "driver:after-intent", ["start", "--run-key", "k", file]);
    const intent = step(await env.status("k"), "a").started_at;
    assert.deepEqual(await env.jobs("k:a:1"), [], "the crash came before the job existed");
    // The driver stays away longer than the step's timeout.
    await eventually("the timeout has passed since the intent", () => Date.now() / 1000 > intent + 3.5, 30);
    const final = await env.json(["start", "--run-key", "k", file]);
    assert.equal(step(final, "a").status, "SUCCEEDED", JSON.stringify(step(final, "a")));
    assert.deepEqual(countLines(log), { a: 1 }, "the command ran, once");
  },
);

// A retry after its delay: the crash hits attempt 2's start, made by a `tick` (one round, as an
// external scheduler would drive the run), then `resume` finishes the run.
const RETRY_POINTS: Record<"builtin" | "external", CrashPoint[]> = {
  builtin: DRIVER_POINTS,
  external: ["driver:after-intent", "driver:before-job-recorded"],
};
for (const mode of ["builtin", "external"] as const) {
  for (const point of RETRY_POINTS[mode]) {
    flowTest([mode], `crash at ${point} in a tick's start of a delayed retry: each attempt runs once`, async (env) => {
      const log = join(env.home, "ran");
      const first = join(env.home, "first");
      const script =
        `if [ -e '${first}' ]; then echo a2 >> '${log}'; else : > '${first}'; echo a1 >> '${log}'; exit 1; fi`;
      const file = env.flow(
        "retry.yaml",
        `flow_id: retry\nsteps:\n  - {id: a, retries: 1, retry_delay_sec: 3, command: ${JSON.stringify(script)}}\n`,
      );
      const driver = env.spawn(["start", "--run-key", "k", file]);
      const delayed = await env.waitFor("k", "a delayed", (run) => step(run, "a").status === "DELAYED");
      driver.kill("SIGKILL");
      await driver.output();
      const between = step(await env.status("k"), "a");
      assert.deepEqual([between.status, between.attempt_no], ["DELAYED", 1], "the driver died before attempt 2");
      const due = step(delayed, "a").next_attempt_at;
      await eventually("the retry is due", () => Date.now() / 1000 > due + 0.2, 30);
      await runCrashingAt(env, point, ["tick", "--run-key", "k"]);
      const crashed = step(await env.status("k"), "a");
      assert.deepEqual([crashed.status, crashed.attempt_no], ["RUNNING", 2], "the crash hit attempt 2's start");
      const final = await env.json(["resume", "-q", "--run-key", "k"]);
      assert.equal(final.status, "SUCCEEDED", JSON.stringify(final));
      assert.equal(step(final, "a").attempt_no, 2);
      assert.deepEqual(countLines(log), { a1: 1, a2: 1 });
      for (const key of ["k:a:1", "k:a:2"]) assert.equal((await env.jobs(key)).length, 1, key);
      await assertNoJobProcesses(env.home);
    });
  }
}

flowTest(
  builtin,
  "a launch server killed after it read a round's jobs, before it claimed any: each step runs once",
  async (env) => {
    if (bashPath() === null) return; // no bash: no launch server, spawned supervisors only
    const log = join(env.home, "ran");
    const file = env.flow("wide.yaml", wideFanOut(log));
    // The run's environment names the point: every launch server of the run dies at its first jobs.
    const { log: crashes, code } = await runCrashingAt(
      env,
      "server:before-launch",
      ["start", "--run-key", "k", file],
      false,
    );
    assert.ok(crashes.length >= 1, "a server died holding jobs it had read");
    assert.equal(code, 0, "the driver launched the jobs its server took without it");
    const final = await env.status("k");
    assert.equal(final.status, "SUCCEEDED", JSON.stringify(final));
    const once = Object.fromEntries([...Array.from({ length: 10 }, (_, i) => `r${i}`), "z"].map((id) => [id, 1]));
    assert.deepEqual(countLines(log), once);
    for (const id of Object.keys(once)) assert.equal((await env.jobs(`k:${id}:1`)).length, 1, id);
    await assertNoJobProcesses(env.home);
  },
);

flowTest(
  ["external"],
  "every orchesjob abort call killed during a timeout's grace: attempt 1 is killed before attempt 2, each runs once",
  async (env) => {
    const { log, first, file } = graceFlow(env);
    // The run's environment names the point: each `job abort` call dies in its grace, after its record.
    const { log: crashes, code } = await runCrashingAt(
      env,
      "runner:abort-grace",
      ["start", "--run-key", "k", file],
      false,
    );
    assert.ok(crashes.length >= 1, "an abort call died in its grace");
    assert.equal(code, 0);
    const final = await env.status("k");
    assert.equal(final.status, "SUCCEEDED", JSON.stringify(final));
    assert.equal(step(final, "a").attempt_no, 2);
    assert.deepEqual(countLines(log), { a1: 1, a2: 1 }, "attempt 2 ran alone, once; attempt 1 never survived");
    assert.ok(!processAlive(Number(Deno.readTextFileSync(first).trim())), "attempt 1 is gone");
    await assertNoJobProcesses(env.home);
  },
);

// The built-in runner's start is a transaction in the driver's own process (no call that outlives it,
// unlike an external orchesjob's: see orphan_start_test), so a driver killed in its start leaves either
// no row or a row the cancel's abort finds: nothing of the cancelled attempt runs later, and no fence is
// needed (Executor.startsOutliveCaller is unset).
for (const point of ["driver:after-intent", "runner:launch-written", "runner:after-job-row"] as const) {
  flowTest(
    builtin,
    `driver killed at ${point}, then cancel: the attempt never runs; a retry runs it once`,
    async (env) => {
      const log = join(env.home, "ran");
      const file = env.flow("one.yaml", `flow_id: one\nsteps:\n  - {id: a, command: ${logged(log, "a")}}\n`);
      await runCrashingAt(env, point, ["start", "-q", "--run-key", "k", file]);
      assert.equal(step(await env.status("k"), "a").status, "RUNNING", "the driver died in the attempt's start");
      const cancelled = await env.json(["cancel", "--run-key", "k", "--grace-seconds", "1"]);
      assert.equal(step(cancelled, "a").status, "CANCELLED", JSON.stringify(cancelled));
      // A later reader (status, job status) launches unclaimed rows: it must not launch the aborted one.
      await env.status("k");
      const jobs = await env.jobs("k:a:1");
      assert.ok(jobs.every((job) => job.status === "ABORTED"), JSON.stringify(jobs));
      await assertNoJobProcesses(env.home);
      assert.deepEqual(countLines(log), {}, "nothing of the cancelled attempt ran");
      const retried = await env.json(["retry", "-q", "--run-key", "k"]);
      assert.equal(retried.status, "SUCCEEDED", JSON.stringify(retried));
      assert.deepEqual(countLines(log), { a: 1 }, "the step's command ran once in all");
    },
  );
}

flowTest(
  builtin,
  "a cancel while a resumed driver is about to ask a timeout's half-done abort again: CANCELLED, attempt 2 never starts",
  async (env) => {
    const pidFile = join(env.home, "pid");
    const log = join(env.home, "ran");
    // Attempt 1 ignores SIGTERM (only the SIGKILL at its abort's deadline ends it); attempt 2 logs.
    const script = `if [ ! -e '${pidFile}' ]; then echo $$ > '${pidFile}'; trap '' TERM; echo a1 >> '${log}'; ` +
      `while :; do sleep 0.1; done; else echo a2 >> '${log}'; fi`;
    const file = env.flow(
      "grace.yaml",
      `flow_id: grace\nsteps:\n  - {id: a, retries: 1, timeout_sec: 1, command: ${JSON.stringify(script)}}\n`,
    );
    await runCrashingAt(env, "runner:abort-grace", ["start", "--run-key", "k", file]);
    const pid = Number(Deno.readTextFileSync(pidFile).trim());
    const resumed = await spawnStopped(env, ["resume", "-q", "--run-key", "k"], "driver:before-settle-abort");
    // The resumed driver's status read has finished the half-done abort already (built-in runner).
    assert.ok(!processAlive(pid), "attempt 1 ended before the driver asked its abort again");
    const cancelled = await env.json(["cancel", "--run-key", "k", "--grace-seconds", "0"]);
    assert.equal(cancelled.status, "CANCELLED", JSON.stringify(cancelled));
    assert.deepEqual([step(cancelled, "a").status, step(cancelled, "a").attempt_no], ["CANCELLED", 1]);
    const { code } = await resumed.finish();
    assert.equal(code, 4, "the resumed driver ends with the cancelled run");
    const final = await env.status("k");
    assert.deepEqual([final.status, step(final, "a").status, step(final, "a").attempt_no], [
      "CANCELLED",
      "CANCELLED",
      1,
    ]);
    assert.deepEqual(countLines(log), { a1: 1 }, "attempt 2 never started");
    await assertNoJobProcesses(env.home);
  },
);
