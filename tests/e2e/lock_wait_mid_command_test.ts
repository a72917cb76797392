/**
 * Signals to a command that writes several times, when another process takes the state file's write
 * lock between two of its writes: each later write waits for the lock in short tries, so the signal is
 * heard in the wait (130, one JSON line saying what was stored and what finishes it), not once SQLite's
 * wait for the busy timeout (15 s) has ended, which blocked the process, signals unheard:
 * - `cancel` once its commit is stored (then it records each abort, each step's end, the run's end);
 * - `job start` and `job rerun` once their job row is stored (then they record what the job's files show);
 * - `job abort` once its abort file is written (then it records ABORTED): the abort is begun, not recorded.
 * Each command stops (test-only SIGSTOP) right after its first write, the test takes the lock (as in
 * held_lock_test.ts), continues it, and signals it once it waits in SQLite's busy handler. The lock
 * still held when it has exited is the proof that it did not wait the lock out. Then the documented
 * follow-up finishes the work, no step done twice.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { collectText, eventually, inLockBusyWait, isStopped, processAlive } from "../helpers.ts";
import { type FlowEnv, flowTest, type Json, statuses, step } from "./flow_env.ts";
import { builtin, jobFile, lines, supervisorGone, undrivenRun } from "./operator_env.ts";
import { readLog, spawnStopped, spawnStoppedAt, spawnStoppedChild } from "./stop_point.ts";
import { assertLockHeld, holdWriteLock, jobRows, stateFile } from "./write_lock.ts";
import { pathExists, sleep } from "../../src/shared/mod.ts";

/**
 * Held for less than the busy timeout (15 s): a write that waited the whole busy timeout gets the lock
 * when it is let go, and the signal would be heard only then.
 */
const HOLD_SECONDS = 12;

/**
 * Takes the write lock while `command` is stopped, continues it, sends `signal` once its next write
 * waits for the lock, and checks that it exited 130 with the lock still held and one JSON line on
 * stderr, which it returns. The lock is let go before it returns.
 */
async function interruptInLockWait(
  env: FlowEnv,
  command: Awaited<ReturnType<typeof spawnStoppedChild>>,
  signal: Deno.Signal,
): Promise<Json> {
  const { child, output, exited } = command;
  try {
    await using lock = await holdWriteLock(env, HOLD_SECONDS);
    Deno.kill(child.pid, "SIGCONT");
    // The situation under test: its next write met the lock (it waits in SQLite's busy handler).
    await eventually("its next write waits for the lock", () => exited() || inLockBusyWait(child.pid));
    assert.equal(exited(), false, "it ended while the lock was held");
    assertLockHeld(env);
    child.kill(signal);
    const result = await output;
    assert.equal(lock.released(), false, "the signal was heard only once the lock was let go");
    assertLockHeld(env);
    const stderr = new TextDecoder().decode(result.stderr);
    assert.deepEqual([result.signal, result.code], [null, 130], stderr);
    assert.equal(result.stdout.length, 0, "no answer on stdout");
    assert.equal(stderr.split("\n").filter(Boolean).length, 1, `one line on stderr: ${stderr}`);
    return JSON.parse(stderr);
  } finally {
    if (!exited()) child.kill("SIGKILL");
    await output.catch(() => {});
  }
}

/** A job's command that notes each run in `log` ("ran") and ends once the file `go` is there. */
function gatedJob(env: FlowEnv) {
  const [log, go] = [join(env.home, "ran"), join(env.home, "go")];
  return { log, go, command: ["sh", "-c", `echo ran >> '${log}'; while [ ! -e '${go}' ]; do sleep 0.05; done`] };
}

flowTest(
  builtin,
  "SIGINT to a cancel whose abort meets a write lock taken after its commit: 130 with the lock held, a second cancel finishes",
  async (env) => {
    const log = join(env.home, "ran");
    // Says each SIGTERM it gets: the job is aborted once, by the second cancel.
    const command = `echo start >> '${log}'; trap "echo term >> '${log}'; exit 143" TERM; while :; do sleep 0.1; done`;
    const file = env.flow("long.yaml", `flow_id: long\nsteps:\n  - {id: long, command: ${JSON.stringify(command)}}\n`);
    // Nobody drives the run: a tick starts its step, and nothing else writes meanwhile.
    await undrivenRun(env, "k", file);
    assert.equal(step(await env.json(["tick", "--run-key", "k"]), "long").status, "RUNNING");
    await eventually("the step's command runs", () => lines(log).length === 1);

    const cancel = await spawnStoppedChild(
      env,
      ["cancel", "--run-key", "k", "--grace-seconds", "1"],
      "cancel:after-commit",
    );
    const committed = await env.status("k");
    assert.deepEqual([committed.status, step(committed, "long").status], ["CANCELLED", "RUNNING"], "the commit");
    const error = await interruptInLockWait(env, cancel, "SIGINT");
    assert.deepEqual(error, {
      error: `cancel: interrupted while waiting for state database ${stateFile(env)}'s write lock; run k is ` +
        "CANCELLED, but its aborts may not all be done or recorded: cancel it again to finish them",
    });
    // It waited to record the abort, which comes before its signal: the job was not signalled.
    assert.deepEqual(lines(log), ["start"]);
    const between = await env.status("k");
    assert.deepEqual([between.status, step(between, "long").status], ["CANCELLED", "RUNNING"]);

    // The documented follow-up: a second cancel aborts the step, once.
    const again = await env.json(["cancel", "--run-key", "k", "--grace-seconds", "1"]);
    assert.deepEqual([again.status, statuses(again)], ["CANCELLED", { long: "CANCELLED" }]);
    assert.notEqual(again.finished_at, null);
    assert.deepEqual(jobRows(env, "k:long:1").map((job) => job.status), ["ABORTED"]);
    await eventually("the job's command ended", () => lines(log).length === 2);
    assert.deepEqual(lines(log), ["start", "term"], "started once, aborted once");
  },
);

flowTest(
  builtin,
  "SIGTERM to a job start --sync whose recording meets a write lock taken after its job row: 130 with the lock held, the job runs once",
  async (env) => {
    const { log, go, command } = gatedJob(env);
    // --sync: it follows its job to the end, each look's recording meeting the lock. Without it, the
    // start answers what the job's files show once its command runs (see the test of --start-timeout).
    const start = await spawnStoppedChild(
      env,
      ["job", "start", "--sync", "--run-key", "j", "--", ...command],
      "runner:after-job-row",
    );
    // Stored before its launch (intent before action): read from the file, as a `job status` would launch it.
    const [stored] = jobRows(env, "j");
    assert.deepEqual(stored?.status, "STARTING");
    const error = await interruptInLockWait(env, start, "SIGTERM");
    const id = stored.job_id;
    assert.deepEqual(error, {
      error: `job start: interrupted; job ${id} of run key j is stored: \`job status --job-id ${id}\` reports it ` +
        "(and launches it if it was not launched); `job start --run-key j` again returns it while it is active",
      job_id: id,
      run_key: "j",
    });

    // The documented follow-up: a start again returns the job, not a second one; it ends once.
    const again = await env.json(["job", "start", "--run-key", "j", "--", ...command]);
    assert.deepEqual([again.job_id, again.accepted, again.existing], [id, false, true]);
    Deno.writeTextFileSync(go, "");
    await eventually(
      "the job ended",
      async () => (await env.json(["job", "status", "--job-id", id])).status.match(/^(STARTING|RUNNING)$/) === null,
    );
    assert.equal((await env.json(["job", "status", "--job-id", id])).status, "SUCCEEDED");
    assert.deepEqual(jobRows(env, "j").map((job) => job.job_id), [id]);
    assert.deepEqual(lines(log), ["ran"], "its command ran once");
  },
);

flowTest(
  builtin,
  "SIGINT to a job rerun --sync whose recording meets a write lock taken after its job row: 130 with the lock held, the rerun runs once",
  async (env) => {
    const [log, go] = [join(env.home, "ran"), join(env.home, "go")];
    // Each run waits for `go`, and takes it: the rerun waits again.
    const command = `echo ran >> '${log}'; while [ ! -e '${go}' ]; do sleep 0.05; done; rm '${go}'`;
    const first = await env.json(["job", "start", "--run-key", "r", "--", "sh", "-c", command]);
    Deno.writeTextFileSync(go, "");
    await eventually(
      "the first job ended",
      async () => (await env.json(["job", "status", "--job-id", first.job_id])).status === "SUCCEEDED",
    );
    assert.equal(pathExists(go), false);
    // --sync: it follows its job to the end, each look's recording meeting the lock (see the start's test).
    const rerun = await spawnStoppedChild(env, ["job", "rerun", "--sync", "--run-key", "r"], "runner:after-job-row");
    const stored = jobRows(env, "r")[1];
    assert.deepEqual(stored?.status, "STARTING");
    const error = await interruptInLockWait(env, rerun, "SIGINT");
    const id = stored.job_id;
    assert.deepEqual(error, {
      error: `job rerun: interrupted; job ${id}, a rerun of ${first.job_id}, of run key r is stored: ` +
        `\`job status --job-id ${id}\` reports it (and launches it if it was not launched); ` +
        "do not rerun again, which would run the command once more",
      job_id: id,
      run_key: "r",
    });

    // The documented follow-up: `job status` reports the rerun, which ran once.
    Deno.writeTextFileSync(go, "");
    await eventually(
      "the rerun ended",
      async () => (await env.json(["job", "status", "--job-id", id])).status.match(/^(STARTING|RUNNING)$/) === null,
    );
    assert.equal((await env.json(["job", "status", "--job-id", id])).status, "SUCCEEDED");
    assert.deepEqual(jobRows(env, "r").map((job) => job.job_id), [first.job_id, id]);
    assert.deepEqual(lines(log), ["ran", "ran"], "the first start and the rerun, once each");
  },
);

flowTest(
  builtin,
  "job rerun whose reading of its source records the source's end, then meets a write lock: it waits the lock out and reruns once",
  async (env) => {
    const { log, go, command } = gatedJob(env);
    const first = await env.json(["job", "start", "--run-key", "r", "--", ...command]);
    assert.equal(first.status, "RUNNING");
    // The job ends while nobody reads it: its row still says RUNNING, its files say it ended.
    Deno.writeTextFileSync(go, "");
    await eventually("the job's end is in its files", () => pathExists(join(env.home, "jobs", `${first.job_id}.exit`)));
    assert.deepEqual(jobRows(env, "r").map((job) => job.status), ["RUNNING"]);
    // The rerun reads its source (recording its end: a change), then stops before its job's transaction.
    const rerun = await spawnStoppedChild(env, ["job", "rerun", "--job-id", first.job_id], "runner:launch-written");
    // The situation under test: the rerun's try has already changed the state file when the lock stops it.
    assert.deepEqual(jobRows(env, "r").map((job) => job.status), ["SUCCEEDED"], "the rerun recorded the source's end");
    const { child, output, exited } = rerun;
    try {
      await using _lock = await holdWriteLock(env, HOLD_SECONDS);
      Deno.kill(child.pid, "SIGCONT");
      await eventually("its job's transaction waits for the lock", () => exited() || inLockBusyWait(child.pid));
      // Several slices of the wait: a try the lock cut short is made again, not given up.
      await sleep(2);
      assert.equal(exited(), false, "it gave up while the lock was held");
      assertLockHeld(env);
    } finally {
      if (exited()) {
        const result = await output;
        assert.fail(`exit ${result.code}: ${new TextDecoder().decode(result.stderr)}`);
      }
    }
    const result = await output;
    assert.equal(result.code, 0, new TextDecoder().decode(result.stderr));
    const again = JSON.parse(new TextDecoder().decode(result.stdout));
    assert.equal(again.rerun_of_job_id, first.job_id);
    await eventually(
      "the rerun ended",
      async () => (await env.json(["job", "status", "--job-id", again.job_id])).status === "SUCCEEDED",
    );
    assert.deepEqual(jobRows(env, "r").map((job) => job.job_id), [first.job_id, again.job_id]);
    assert.deepEqual(lines(log), ["ran", "ran"], "the first start and the rerun, once each");
  },
);

flowTest(
  builtin,
  "a first SIGINT to a cancel, then a write lock taken during an abort's grace: the cancel still sends that SIGKILL, waiting the lock out",
  async (env) => {
    const [log, go] = [join(env.home, "ran"), join(env.home, "go")];
    // `stubborn` ignores SIGTERM (the grace's SIGKILL ends it); `slow` ends at its SIGTERM once `go` is there.
    const stubborn =
      `echo stubborn >> '${log}'; trap "echo stubborn-term >> '${log}'" TERM; while :; do sleep 0.1; done`;
    const slow = `echo slow >> '${log}'; trap "echo slow-term >> '${log}'; ` +
      `while [ ! -e '${go}' ]; do sleep 0.05; done; exit 143" TERM; while :; do sleep 0.1; done`;
    const file = env.flow(
      "two.yaml",
      `flow_id: two\nsteps:\n  - {id: stubborn, command: ${JSON.stringify(stubborn)}}\n` +
        `  - {id: slow, command: ${JSON.stringify(slow)}}\n`,
    );
    await undrivenRun(env, "k", file);
    await env.json(["tick", "--run-key", "k"]);
    await eventually("both commands run", () => lines(log).length === 2);

    const cancel = env.spawn(["cancel", "--run-key", "k", "--grace-seconds", "8"]);
    const stderr = collectText(cancel.stderr);
    let exited = false;
    const status = cancel.status.finally(() => (exited = true));
    try {
      await eventually("both jobs got their SIGTERM", () => exited || lines(log).length === 4);
      // The first Ctrl-C, heard while both aborts are in their grace: it lets the aborts finish.
      cancel.kill("SIGINT");
      await eventually(
        "the first SIGINT was heard",
        () => exited || stderr.text.includes("finishing the aborts first"),
      );
      {
        await using lock = await holdWriteLock(env, 60);
        // `slow` ends: its step's end is the next write, which meets the lock (during stubborn's grace).
        Deno.writeTextFileSync(go, "");
        await eventually("the step's end waits for the lock", () => exited || inLockBusyWait(cancel.pid));
        // Several slices of the wait, still in stubborn's grace: a try the lock cut short is made again.
        await sleep(2);
        assert.equal(exited, false, `it exited during the grace, before the SIGKILL: ${stderr.text}`);
        assert.equal(lock.released(), false);
      }
      // The lock let go: the cancel records the ends, and stubborn gets its SIGKILL at the grace's end.
      const { code } = await status;
      assert.equal(code, 0, stderr.text);
      const run = await env.status("k");
      assert.deepEqual([run.status, statuses(run)], ["CANCELLED", { stubborn: "CANCELLED", slow: "CANCELLED" }]);
      assert.deepEqual(jobRows(env, "k:stubborn:1").map((job) => job.status), ["ABORTED"]);
      const target = (await env.json(["job", "status", "--run-key", "k:stubborn:1"])).target_pid as number;
      await eventually("stubborn's command was killed", () => !processAlive(target));
    } finally {
      if (!exited) cancel.kill("SIGKILL");
      await status;
      await stderr.done;
    }
  },
);

/** What a `job abort` of `jobId` (run key `runKey`) says when a signal stops it between its abort file and its record. */
function abortBegun(jobId: string, runKey: string): Json {
  return {
    error: `job abort: interrupted; the abort of job ${jobId} of run key ${runKey} is begun but not recorded: ` +
      "its SIGKILL deadline is written, so a job not yet starting its command never starts it (it then ends " +
      "ABORTED), but the job is not ABORTED in the state file and this abort sent no signal: " +
      `\`job abort --job-id ${jobId}\` again records the abort and stops the command`,
    job_id: jobId,
    run_key: runKey,
  };
}

flowTest(
  builtin,
  "SIGINT to a job abort of a STARTING job, waiting for a write lock taken after its abort file: 130 saying the abort is begun, not recorded; the command never runs and the job ends ABORTED",
  async (env) => {
    const { log, command } = gatedJob(env);
    // The job is stored and not launched: its start stops before it spawns the supervisor.
    const start = await spawnStoppedAt(
      env,
      ["job", "start", "--run-key", "j", "--start-timeout", "0", "--", ...command],
      ["runner:after-job-row", "runner:after-supervisor-spawn"],
    );
    const [stored] = jobRows(env, "j");
    assert.equal(stored?.status, "STARTING");
    const id = stored.job_id;
    const abort = await spawnStoppedChild(
      env,
      ["job", "abort", "--job-id", id, "--reason", "why"],
      "runner:abort-file-written",
    );
    // The situation under test: the abort file is written, the ABORTED record is not.
    assert.ok(pathExists(jobFile(env, id, "abort")), "the abort file is written");
    const error = await interruptInLockWait(env, abort, "SIGINT");
    assert.deepEqual(error, abortBegun(id, "j"));
    assert.deepEqual(jobRows(env, "j").map((job) => job.status), ["STARTING"], "the abort is not recorded");

    // The start goes on: it launches the supervisor, which claims the job, finds the abort file and
    // quits; the start stops again before it reads the job.
    await start.next("runner:after-supervisor-spawn");
    const supervisor = await supervisorGone(env, id);
    assert.equal(pathExists(jobFile(env, id, "stdout")), false, `${supervisor} quit before the command's output files`);
    assert.deepEqual(jobRows(env, "j").map((job) => job.status), ["STARTING"], "nobody recorded its end yet");

    // The documented follow-up records the first abort (its time and reason); there is nothing to signal.
    const again = await env.json(["job", "abort", "--job-id", id, "--reason", "again"]);
    assert.deepEqual(
      [again.status, again.abort_reason, again.exit_code, again.target_pid, again.aborted],
      ["ABORTED", "why", null, null, true],
      "ABORTED with the abort's reason, not LOST",
    );
    assert.deepEqual(
      [again.sent_term_target, again.sent_term_worker, again.sent_kill_target, again.sent_kill_worker],
      [false, false, false, false],
    );
    assert.equal(again.aborted_at, again.finished_at);
    assert.equal((await env.json(["job", "status", "--job-id", id])).status, "ABORTED");
    assert.deepEqual(lines(log), [], "the command never ran");
    // Once recorded, an abort gets orchesjob's answer for an ended job.
    const third = await env.run(["job", "abort", "--job-id", id]);
    assert.deepEqual([third.code, JSON.parse(third.stderr)], [4, {
      error: `Job is not running: ${id} status=ABORTED`,
    }]);
    const started = await start.finish();
    assert.equal(started.code, 0, started.stderr);
    assert.deepEqual([JSON.parse(started.stdout).status, JSON.parse(started.stdout).job_id], ["ABORTED", id]);
  },
);

flowTest(
  builtin,
  "a job abort of a STARTING job whose supervisor quits at its abort file, and whose ABORTED a reader records first: the abort answers 0 with its reason, not 4",
  async (env) => {
    const { log, command } = gatedJob(env);
    const start = await spawnStopped(
      env,
      ["job", "start", "--run-key", "j", "--start-timeout", "0", "--", ...command],
      "runner:after-job-row",
    );
    const [stored] = jobRows(env, "j");
    const id = stored.job_id;
    const abort = await spawnStopped(
      env,
      ["job", "abort", "--job-id", id, "--reason", "why"],
      "runner:abort-file-written",
    );
    assert.equal((await start.finish()).code, 0);
    await supervisorGone(env, id);
    // The situation under test: a reader (this one, or the start's last look) records the job's end
    // between the abort's file and its record.
    const read = await env.json(["job", "status", "--job-id", id]);
    assert.deepEqual([read.status, read.abort_reason], ["ABORTED", "why"]);
    assert.deepEqual(jobRows(env, "j").map((job) => job.status), ["ABORTED"], "recorded while the abort is stopped");
    const { code, stdout, stderr } = await abort.finish();
    assert.equal(code, 0, stderr);
    const answer = JSON.parse(stdout);
    assert.deepEqual([answer.job_id, answer.status, answer.abort_reason, answer.aborted], [id, "ABORTED", "why", true]);
    assert.deepEqual(lines(log), [], "the command never ran");
  },
);

flowTest(
  builtin,
  "SIGTERM to a job abort of a RUNNING job, waiting for a write lock taken after its abort file: 130, the command runs on unsignalled, and a second job abort ends it ABORTED",
  async (env) => {
    const log = join(env.home, "ran");
    const script = `echo ran >> '${log}'; trap "echo term >> '${log}'; exit 143" TERM; while :; do sleep 0.05; done`;
    const first = await env.json(["job", "start", "--run-key", "r", "--", "sh", "-c", script]);
    assert.equal(first.status, "RUNNING");
    const id = first.job_id as string;
    await eventually("the command runs", () => lines(log).length === 1);
    const abort = await spawnStoppedChild(
      env,
      ["job", "abort", "--run-key", "r", "--reason", "why"],
      "runner:abort-file-written",
    );
    assert.ok(pathExists(jobFile(env, id, "abort")), "the abort file is written");
    const error = await interruptInLockWait(env, abort, "SIGTERM");
    assert.deepEqual(error, abortBegun(id, "r"));
    // The abort signals only once its record is committed: the command runs on, the job RUNNING.
    const between = await env.json(["job", "status", "--job-id", id]);
    assert.deepEqual([between.status, between.abort_reason], ["RUNNING", null]);

    // The documented follow-up: a second abort records the abort and stops the command, once.
    const again = await env.json(["job", "abort", "--job-id", id, "--reason", "again"]);
    assert.deepEqual([again.status, again.abort_reason, again.sent_term_target], ["ABORTED", "again", true]);
    await eventually("the command got its SIGTERM", () => lines(log).length === 2);
    assert.deepEqual(lines(log), ["ran", "term"], "started once, signalled once (by the second abort)");
  },
);

flowTest(
  builtin,
  "cancel of several running steps whose aborts all meet a write lock taken after its commit: the lock's wait is said once, not once per step",
  async (env) => {
    const log = join(env.home, "ran");
    const loop = (id: string) => JSON.stringify(`echo ${id} >> '${log}'; while :; do sleep 0.1; done`);
    const file = env.flow(
      "three.yaml",
      `flow_id: three\nsteps:\n${["a", "b", "c"].map((id) => `  - {id: ${id}, command: ${loop(id)}}\n`).join("")}`,
    );
    await undrivenRun(env, "k", file);
    await env.json(["tick", "--run-key", "k"]);
    await eventually("the three commands run", () => lines(log).length === 3);

    // A busy timeout of 0: each wait is said at its first try the lock stops, so that three waits said
    // apart show at once, not after some time the test would have to guess.
    const stopLog = join(env.home, "stop.log");
    const cancel = env.spawn(["cancel", "--run-key", "k", "--grace-seconds", "1"], {
      ORCHESJOB_FLOW_STOP_AT: "cancel:after-commit",
      ORCHESJOB_FLOW_CRASH_LOG: stopLog,
      ORCHESJOB_FLOW_BUSY_TIMEOUT_MS: "0",
    });
    const stderr = collectText(cancel.stderr);
    const stdout = collectText(cancel.stdout);
    let exited = false;
    const status = cancel.status.finally(() => (exited = true));
    try {
      await eventually(
        "the cancel stopped after its commit",
        () => exited || (readLog(stopLog) === `cancel:after-commit ${cancel.pid}\n` && isStopped(cancel.pid)),
      );
      {
        await using lock = await holdWriteLock(env, 60);
        Deno.kill(cancel.pid, "SIGCONT");
        // The situation under test: the lock stops the aborts. The cancel starts the three at once,
        // each trying its first write (the built-in runner records the abort before it signals) before
        // any of them can say the wait; all three wait together until the lock goes.
        await eventually("the aborts wait for the lock", () => exited || stderr.text.includes("is locked"));
        assert.equal(exited, false, stderr.text);
        assert.equal(lock.released(), false);
        const jobs = ["a", "b", "c"].flatMap((id) => jobRows(env, `k:${id}:1`));
        assert.equal(jobs.length, 3);
        assert.ok(jobs.every((job) => job.status !== "ABORTED"), "no abort was recorded under the lock");
      }
      const { code } = await status;
      assert.equal(code, 0, stderr.text);
      await stdout.done;
      const run = JSON.parse(stdout.text);
      assert.deepEqual([run.status, statuses(run)], ["CANCELLED", { a: "CANCELLED", b: "CANCELLED", c: "CANCELLED" }]);
      assert.deepEqual(
        (await stderr.done).split("\n").filter(Boolean).map((line) => JSON.parse(line)),
        [{ warning: `state database ${stateFile(env)} is locked by another process; waiting until it lets go` }],
      );
    } finally {
      if (!exited) cancel.kill("SIGKILL");
      await status;
      await stderr.done;
    }
  },
);

flowTest(
  builtin,
  "job start whose recordings after its job row all meet a write lock reports its job as its files show it (RUNNING, the command's PID), not STARTING at --start-timeout",
  async (env) => {
    const pidFile = join(env.home, "pid");
    const go = join(env.home, "go");
    const command = ["sh", "-c", `echo $$ > '${pidFile}'; while [ ! -e '${go}' ]; do sleep 0.05; done`];
    const { child, output, exited } = await spawnStoppedChild(
      env,
      ["job", "start", "--run-key", "j", "--start-timeout", "5", "--", ...command],
      "runner:after-job-row",
    );
    const [stored] = jobRows(env, "j");
    assert.equal(stored?.status, "STARTING");
    try {
      await using lock = await holdWriteLock(env, 120);
      Deno.kill(child.pid, "SIGCONT");
      const result = await output;
      const stderr = new TextDecoder().decode(result.stderr);
      assert.equal(result.code, 0, stderr);
      // The situation under test: the lock was held all along, so the start recorded nothing of its
      // job after its row, which still says STARTING.
      assert.equal(lock.released(), false);
      assertLockHeld(env);
      assert.deepEqual(jobRows(env, "j").map((job) => job.status), ["STARTING"]);
      const started = JSON.parse(new TextDecoder().decode(result.stdout));
      const pid = Number(Deno.readTextFileSync(pidFile).trim());
      assert.deepEqual(
        [started.job_id, started.status, started.pid_kind, started.target_pid, started.pid],
        [stored.job_id, "RUNNING", "target", pid, pid],
      );
    } finally {
      if (!exited()) child.kill("SIGKILL");
      await output.catch(() => {});
    }
    // The next reader records what the start reported; the job then ends as its command does.
    assert.equal((await env.json(["job", "status", "--run-key", "j"])).status, "RUNNING");
    assert.deepEqual(jobRows(env, "j").map((job) => job.status), ["RUNNING"]);
    Deno.writeTextFileSync(go, "");
    await eventually(
      "the job ended",
      async () => (await env.json(["job", "status", "--run-key", "j"])).status === "SUCCEEDED",
    );
  },
);

flowTest(
  builtin,
  "a job start --sync that answers SUCCEEDED from its job's files under a write lock, while a job abort waits between its abort file and its record: the state file records that end, the abort answers 4",
  async (env) => {
    const { log, go, command } = gatedJob(env);
    const start = env.spawn(["job", "start", "--run-key", "j", "--sync", "--", ...command]);
    const answered = start.output();
    await eventually(
      "the command runs, recorded RUNNING",
      () => lines(log).length === 1 && jobRows(env, "j")[0]?.status === "RUNNING",
    );
    const id = jobRows(env, "j")[0].job_id;
    // The abort read the job RUNNING and wrote its abort file; its ABORTED record is still to come.
    const abort = await spawnStopped(env, ["job", "abort", "--job-id", id], "runner:abort-file-written");
    assert.ok(pathExists(jobFile(env, id, "abort")), "the abort file is written");
    let result: Deno.CommandOutput;
    {
      await using lock = await holdWriteLock(env, 60);
      // The command ends on its own, before any signal: its end is in its files, and the lock keeps the
      // start from recording it.
      Deno.writeTextFileSync(go, "");
      result = await answered;
      // The situation under test: the start answered while the lock was held, from the job's files.
      assert.equal(lock.released(), false, "the start answered only once the lock was let go");
      assertLockHeld(env);
    }
    const stdout = new TextDecoder().decode(result.stdout);
    assert.equal(result.code, 0, new TextDecoder().decode(result.stderr));
    const told = JSON.parse(stdout);
    assert.deepEqual([told.job_id, told.status, told.exit_code], [id, "SUCCEEDED", 0]);
    assert.deepEqual(jobRows(env, "j").map((job) => job.status), ["RUNNING"], "the start recorded nothing");

    // The abort goes on once the lock is let go: the job had ended before it, as the start said.
    const aborted = await abort.finish();
    assert.deepEqual([aborted.code, aborted.stderr.trim()], [
      4,
      JSON.stringify({
        error: `Job is not running: ${id} status=SUCCEEDED`,
      }),
    ], `its answer: ${aborted.stdout}`);
    assert.deepEqual(jobRows(env, "j").map((job) => job.status), ["SUCCEEDED"], "what the start answered");
    assert.equal((await env.json(["job", "status", "--job-id", id])).status, "SUCCEEDED");
    assert.deepEqual(lines(log), ["ran"]);
  },
);
