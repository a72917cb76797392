/**
 * `cancel` racing a `retry` of the same run. A cancel commits CANCELLED, aborts the running jobs,
 * and then records when the run ended (its last aborted step's end). Once the aborts are recorded a
 * retry may reopen the run; a cancel stopped (test-only stop point, SIGSTOP) after its last read of
 * the run lets the retry act in the window before that last write.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { type CliResult, eventually, isStopped, processAlive } from "../helpers.ts";
import { type FlowEnv, flowTest, type Json, step } from "./flow_env.ts";
import { spawnStoppedAt } from "./stop_point.ts";
import { builtin, lines, logged } from "./operator_env.ts";

/** The warnings a command wrote on stderr, one JSON line each. */
function warnings(result: CliResult): string[] {
  return result.stderr.split("\n").filter(Boolean).map((line) => JSON.parse(line).warning).filter(Boolean);
}

/** Run r of one step, a, that logs each attempt to `log` and then runs until `go` exists. Returns its driver's PID. */
async function heldRun(env: FlowEnv, log: string, go: string): Promise<number> {
  const until = `while [ ! -f '${go}' ]; do sleep 0.05; done`;
  const file = env.flow("held.yaml", `flow_id: held\nsteps:\n  - {id: a, command: ${logged(log, "a", until)}}\n`);
  const started = await env.json(["start", "-d", "--run-key", "r", file]);
  await env.waitFor("r", "a's job runs", (run) => step(run, "a").status === "RUNNING" && lines(log).length === 1);
  return started.pid;
}

/** The run's status, and step a's status and attempt. */
function where(run: Json): [string, string, number] {
  return [run.status, step(run, "a").status, step(run, "a").attempt_no];
}

/**
 * The race window: a cancel of run r stopped before its last write, and a retry (in the foreground)
 * that reopened the run in that window and whose driver runs a's attempt 2. Asserts each step of it.
 */
async function retriedUnderCancel(env: FlowEnv, log: string, go: string) {
  const driver = await heldRun(env, log, go);
  const cancel = await spawnStoppedAt(env, ["cancel", "--run-key", "r"], ["cancel:after-commit", "cancel:ended-read"]);
  // Committed, nothing aborted yet. The abort is let go once a second has begun since the commit: the
  // builtin runner stamps an aborted job's end in whole seconds, and the step's end taken from it then
  // comes after the commit's time (else only when the step began later in its second than the commit).
  const committed = await env.status("r");
  assert.deepEqual(where(committed), ["CANCELLED", "RUNNING", 1]);
  await eventually(
    "a second begins after the commit",
    () => Date.now() / 1000 >= Math.floor(committed.finished_at) + 1,
  );
  // The cancel has aborted attempt 1, recorded it, and read the run again for its last write: the
  // run's end time, which the aborted step's end moved.
  await cancel.next("cancel:ended-read");
  const cancelled = await env.status("r");
  assert.deepEqual(where(cancelled), ["CANCELLED", "CANCELLED", 1]);
  assert.equal(cancelled.finished_at, committed.finished_at);
  const stamp = step(cancelled, "a").finished_at;
  assert.ok(
    stamp > cancelled.finished_at,
    "the aborted step ended after the commit: the cancel has an end time to write",
  );
  await eventually("the cancelled run's driver exits", () => !processAlive(driver));
  // In that window the operator retries the run: it is reopened and its new driver starts attempt 2.
  const retried = env.spawn(["retry", "-q", "--run-key", "r"]).output();
  const reopened = await env.waitFor(
    "r",
    "the retry reopened the run and a's attempt 2 runs",
    (run) => run.rounds.length === 1 && where(run).join() === "RUNNING,RUNNING,2" && lines(log).length === 2,
  );
  assert.equal(reopened.finished_at, null);
  assert.ok(isStopped(cancel.pid), "the cancel was still stopped before its last write");
  const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  return {
    cancel,
    /** The end time the cancel would write: attempt 1's end. */
    stamp,
    /** The retry's exit and final JSON. */
    async retry() {
      const output = await retried;
      return { code: output.code, stderr: decode(output.stderr), run: JSON.parse(decode(output.stdout)) };
    },
  };
}

flowTest(
  builtin,
  "a retry that reopens the run before its cancel's last write keeps it: the run is not set back to CANCELLED, and the retried step runs to its end, once",
  async (env) => {
    const log = join(env.home, "ran");
    const go = join(env.home, "go");
    const race = await retriedUnderCancel(env, log, go);
    const result = await race.cancel.finish();
    // Before the fix: the run CANCELLED again (its end time that of attempt 1), with step a RUNNING on
    // attempt 2: the retry's driver stopped and its exit said CANCELLED (4), and attempt 2's job ran
    // on with nobody to record or abort it, until a second cancel.
    const after = await env.status("r");
    assert.deepEqual(where(after), ["RUNNING", "RUNNING", 2], "the retried run is left to its driver");
    assert.equal(after.finished_at, null);
    // The cancel did its part (the commit and the abort of attempt 1), then says the retry came after.
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(where(JSON.parse(result.stdout)), ["RUNNING", "RUNNING", 2]);
    assert.deepEqual(warnings(result), [
      "cancel: run r was reopened by a retry (round 2) after this cancel had ended its steps; " +
      "it is RUNNING again: cancel it again to stop that round",
    ]);

    Deno.writeTextFileSync(go, "");
    const retry = await race.retry();
    assert.equal(retry.code, 0, retry.stderr);
    assert.equal(retry.run.status, "SUCCEEDED");
    const done = await env.status("r");
    assert.deepEqual(where(done), ["SUCCEEDED", "SUCCEEDED", 2]);
    assert.equal(done.rounds.length, 1);
    assert.deepEqual(lines(log), ["a", "a"], "attempt 1 was aborted, attempt 2 ran once");
  },
  { ignore: Deno.build.os !== "linux" }, // the stop is watched in /proc
);

flowTest(
  builtin,
  "a cancel's last write does not reach the run's next round, cancelled again by another cancel meanwhile",
  async (env) => {
    const log = join(env.home, "ran");
    const race = await retriedUnderCancel(env, log, join(env.home, "go"));
    // A second operator cancels the retried run: attempt 2 is aborted, the run CANCELLED in round 2.
    const second = await env.json(["cancel", "--run-key", "r"]);
    assert.deepEqual(where(second), ["CANCELLED", "CANCELLED", 2]);
    const retry = await race.retry();
    assert.equal(retry.code, 4, retry.stderr);
    const before = await env.status("r");
    assert.ok(before.finished_at > before.rounds[0].at, "round 2 ended after it began");

    const result = await race.cancel.finish();
    // Before the round guard: the first cancel's end time (attempt 1's end, of round 1) replaced the
    // second's, so the run said it ended before its last round began.
    assert.deepEqual(await env.status("r"), before);
    assert.ok(race.stamp < before.rounds[0].at, "the stale end time was from before round 2");
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(warnings(result), [
      "cancel: run r was reopened by a retry (round 2) after this cancel had ended its steps; it is CANCELLED now",
    ]);
    assert.deepEqual(lines(log), ["a", "a"]);
  },
  { ignore: Deno.build.os !== "linux" },
);
