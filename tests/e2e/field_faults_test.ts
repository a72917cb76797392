/**
 * Field faults (issue 9) through the real CLI: a broken orchesjob, cancel without a reachable
 * orchesjob, unusable executors and state locations, runs without a driver, truthful `start -d`,
 * true times, and internal errors. External faults use tiny fake ORCHESJOB_BIN scripts.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { existsSync } from "node:fs";
import {
  childrenOf,
  CLI,
  cli,
  collectText,
  errorLine,
  eventually,
  inEventLoopWait,
  isStopped,
  processAlive,
  tempDir,
} from "../helpers.ts";
import { countLines } from "./fault_helpers.ts";
import { type FlowEnv, flowTest, statuses, step } from "./flow_env.ts";

const builtin = ["builtin"] as const;
const both = ["builtin", "external"] as const;

const ONE_STEP = `flow_id: one
steps:
  - {id: a, command: ["true"]}
`;

flowTest(builtin, "an internal error (an unusable locks directory) exits 70 with one JSON line", async (env) => {
  const file = env.flow("flow.yaml", ONE_STEP);
  // A file where the locks directory belongs: an environment failure, not the user's input.
  Deno.writeTextFileSync(join(env.home, "locks"), "");
  const result = await env.run(["start", "--run-key", "k", file]);
  assert.equal(result.code, 70, result.stderr);
  assert.match(errorLine(result).error, /^start: internal error: /);
});

flowTest(
  builtin,
  "a cancel with no step to abort needs no executor: an unusable jobs directory does not fail it once committed",
  async (env) => {
    const file = env.flow("flow.yaml", ONE_STEP);
    using _lock = await env.holdDriverLock("k");
    assert.equal((await env.json(["start", "--run-key", "k", "-d", file])).status, "PENDING");
    // A file where the jobs directory belongs: the built-in runner cannot be made.
    Deno.writeTextFileSync(join(env.home, "jobs"), "");
    const result = await env.run(["cancel", "--run-key", "k"]);
    // The situation under test: the cancel was committed, its step never started (nothing to abort).
    const run = await env.status("k");
    assert.deepEqual([run.status, statuses(run)], ["CANCELLED", { a: "CANCELLED" }]);
    assert.equal(result.code, 0, `the cancel is done, not an internal error: ${result.stderr}`);
    assert.equal(JSON.parse(result.stdout).status, "CANCELLED");
  },
);

flowTest(builtin, "a first start with an unusable orchesjob exits 2 and stores no run", async (env) => {
  const file = env.flow("flow.yaml", ONE_STEP);
  const notExecutable = env.flow("not-executable", "#!/bin/sh\n");
  const cases: [Record<string, string>, string[], RegExp][] = [
    [{ ORCHESJOB_BIN: "/nonexistent/orchesjob" }, [], /\/nonexistent\/orchesjob: no such file/],
    [{}, ["--orchesjob-bin", notExecutable], /not-executable: not executable/],
    [{ ORCHESJOB_BIN: "no-such-orchesjob-anywhere" }, [], /no-such-orchesjob-anywhere: not found on PATH/],
  ];
  for (const [vars, globals, message] of cases) {
    const result = await env.run([...globals, "start", "--run-key", "k", file], vars);
    assert.equal(result.code, 2, result.stderr);
    assert.match(errorLine(result).error, message);
    assert.equal((await env.run(["status", "--run-key", "k"])).code, 3, "no run was stored");
  }
  // The key is not spent: the same key starts once orchesjob is usable (here: the built-in runner).
  assert.equal((await env.json(["start", "--run-key", "k", file])).status, "SUCCEEDED");
});

flowTest(builtin, "with HOME unset and no state option, commands exit 2 saying how to choose a place", async (env) => {
  const file = env.flow("flow.yaml", ONE_STEP);
  const denoDir = JSON.parse(new TextDecoder().decode(
    (await new Deno.Command(Deno.execPath(), { args: ["info", "--json"] }).output()).stdout,
  )).denoDir;
  const unset = { HOME: "", ORCHESJOB_FLOW_HOME: "", ORCHESJOB_HOME: "", XDG_DATA_HOME: "", DENO_DIR: denoDir };
  for (const args of [["start", "--run-key", "k", file], ["status", "--run-key", "k"]]) {
    const result = await cli(["--poll-interval", "0.1", ...args], { env: unset, cwd: env.home });
    assert.equal(result.code, 2, result.stderr);
    assert.match(errorLine(result).error, /no state location: HOME is not set; choose one with --db PATH/);
  }
  assert.deepEqual([...Deno.readDirSync(env.home)].map((e) => e.name).sort(), ["flow.yaml", "orchesjob-wrapper"]);
});

flowTest(builtin, "read-only commands create no directory or database, and name the file searched", async (env) => {
  const home = join(env.home, "never-created");
  const readers = [["status"], ["status", "--format", "table"], ["watch", "--interval", "0.1"], [
    "logs",
    "--step",
    "a",
  ]];
  for (const args of readers) {
    const result = await env.run([...args, "--run-key", "k"], { ORCHESJOB_FLOW_HOME: home });
    assert.equal(result.code, 3, result.stderr);
    assert.equal(
      errorLine(result).error,
      `${args[0]}: run not found: k (state file ${join(home, "orchesjob-flow.sqlite3")})`,
    );
    assert.equal(existsSync(home), false, `${args.join(" ")} created ${home}`);
  }
  const list = await env.run(["list"], { ORCHESJOB_FLOW_HOME: home });
  assert.equal(list.code, 0, list.stderr);
  assert.deepEqual(JSON.parse(list.stdout), []);
  assert.equal(existsSync(home), false, `list created ${home}`);
});

flowTest(
  builtin,
  "commands that act on stored runs create no state file or directory where there is none (a mistyped --db)",
  async (env) => {
    const home = join(env.home, "mistyped");
    const file = join(home, "orchesjob-flow.sqlite3");
    const onRun = [["retry"], ["retry", "--step", "a"], ["cancel"], ["resume"], ["resume", "-d"], ["tick"]];
    for (const args of onRun) {
      const result = await env.run(["--db", file, ...args, "--run-key", "k"]);
      assert.equal(result.code, 3, result.stderr);
      assert.equal(errorLine(result).error, `${args[0]}: run not found: k (state file ${file})`);
      assert.equal(existsSync(home), false, `${args.join(" ")} created ${home}`);
    }
    for (const dryRun of [[], ["--dry-run"]]) {
      const result = await env.run(["--db", file, "clean", "--older-than", "0", ...dryRun]);
      assert.equal(result.code, 0, result.stderr);
      assert.deepEqual(JSON.parse(result.stdout).runs, []);
      assert.equal(existsSync(home), false, `clean ${dryRun.join(" ")} created ${home}`);
    }
  },
);

/**
 * A fake orchesjob: the real one (the `orchesjob-flow job` wrapper) unless the file `mode` in `dir`
 * says to misbehave on `status`: print no JSON (nojson), exit 1 as a locked database would (exit1),
 * hang after writing its PID to `hang.pid` (hang), answer "not found" as for a cleaned job
 * (cleaned), print 20 MiB (huge), die by SIGSEGV (segv), or print JSON that is no job of the
 * key asked for: {} (empty), null, a string, an array, a status outside the contract (pending), another
 * key's finished job (otherkey); each call of `status` adds a line to `status.log`. On `status --running`
 * only: answer [null], and let `status --run-key` work (runningnull) or answer null too (allnull), each
 * call's key (or `running`) noted in `calls.log`; or hang, noted there too, and let `status --run-key`
 * work, each key noted (runninghang). On `start`: start the job, then print null (startnull),
 * or make the job and then exit 137 as a shell reports a SIGKILL (startdies), or make the job and then
 * really die by SIGKILL (startkilled), or die by SIGKILL before making it (startkilledfirst); each death
 * is noted in `died` with the fake's PID. Or, once, exit 130 before making it, as the `job` wrapper does when
 * a signal stops it (startinterrupted; the mode is then cleared). On
 * `abort`: exit 1 (abortfail), answer "not found" (abortgone), or first start `sleep 60` in a session
 * of its own that holds the call's pipes open, its PID in `daemon.pid` (abortdaemon). On `logs`: hang
 * after writing its PID to `logs.pid` (logshang), or exit 1 as a locked database would, noting its
 * caller's PID in `logsfail.log` (logsfail). On both status
 * and abort: exit 1 (allfail).
 */
function writeFakeOrchesjob(env: FlowEnv, dir = env.home): { bin: string; mode: (m: string) => void } {
  const bin = join(dir, "fake-orchesjob");
  const control = join(dir, "mode");
  Deno.writeTextFileSync(
    bin,
    `#!/bin/sh
mode=$(cat '${control}' 2>/dev/null)
[ "$1" = status ] && echo "$mode" >> '${join(dir, "status.log")}'
case "$1:$mode" in
  status:segv) kill -SEGV $$ ;;
  status:empty) echo '{}'; exit 0 ;;
  status:null) echo null; exit 0 ;;
  status:string) echo '"SUCCEEDED"'; exit 0 ;;
  status:array) echo '[]'; exit 0 ;;
  status:pending) '${env.wrapper}' "$@" | sed 's/"RUNNING"/"PENDING"/'; exit 0 ;;
  status:otherkey) '${env.wrapper}' "$@" | sed 's/"RUNNING"/"SUCCEEDED"/; s/"run_key": "[^"]*"/"run_key": "other:a:1"/'; exit 0 ;;
  start:startnull) '${env.wrapper}' "$@" > /dev/null; echo null; exit 0 ;;
  status:huge) head -c 20971520 /dev/zero | tr '\\0' x; exit 0 ;;
  status:nojson) echo "Traceback (most recent call last): oops"; exit 0 ;;
  status:exit1 | status:allfail) echo "sqlite3.OperationalError: database is locked" >&2; exit 1 ;;
  status:hang) echo $$ > '${join(dir, "hang.pid")}'; exec sleep 600 ;;
  logs:logshang) echo $$ > '${join(dir, "logs.pid")}'; exec sleep 600 ;;
  logs:logsfail) echo "$PPID" >> '${
      join(dir, "logsfail.log")
    }'; echo "sqlite3.OperationalError: database is locked" >&2; exit 1 ;;
  status:cleaned) echo '{"error": "job not found"}' >&2; exit 3 ;;
  abort:abortfail | abort:allfail) echo "abort: database is locked" >&2; exit 1 ;;
  abort:abortgone) echo '{"error": "job not found"}' >&2; exit 3 ;;
  start:startdies) '${env.wrapper}' "$@" > /dev/null; echo "$1" >> '${join(dir, "died")}'; exit 137 ;;
  start:startkilled) '${env.wrapper}' "$@" > /dev/null; echo "$1 $$" >> '${join(dir, "died")}'; kill -KILL $$ ;;
  start:startkilledfirst) echo "$1 $$" >> '${join(dir, "died")}'; kill -KILL $$ ;;
  start:startinterrupted) : > '${control}'; echo '{"error": "job start: interrupted; nothing was stored"}' >&2; exit 130 ;;
  status:runningnull | status:allnull)
    if [ "$2" = --running ]; then echo running >> '${join(dir, "calls.log")}'; echo '[null]'; exit 0; fi
    echo "$3" >> '${join(dir, "calls.log")}'
    if [ "$mode" = allnull ]; then echo null; exit 0; fi ;;
  status:runninghang)
    if [ "$2" = --running ]; then echo running >> '${join(dir, "calls.log")}'; exec sleep 600; fi
    echo "$3" >> '${join(dir, "calls.log")}' ;;
  abort:abortdaemon) setsid sleep 60 & echo $! > '${join(dir, "daemon.pid")}' ;;
esac
exec '${env.wrapper}' "$@"
`,
  );
  Deno.chmodSync(bin, 0o755);
  return { bin, mode: (m: string) => Deno.writeTextFileSync(control, m) };
}

/** A one-step flow whose step runs until the file `release` appears in `dir`. */
function waitingFlow(env: FlowEnv, extra = "", stepExtra = ""): string {
  const release = join(env.home, "release");
  return env.flow(
    "flow.yaml",
    `flow_id: faults
${extra}steps:
  - id: a
    command: ${JSON.stringify(`while [ ! -e '${release}' ]; do sleep 0.05; done`)}
${stepExtra}`,
  );
}

/** Waits until step a of `runKey` has a RUNNING job, and returns the PID of the job's process. */
async function jobPidOf(env: FlowEnv, runKey: string): Promise<number> {
  const run = await env.waitFor(runKey, "a has a job", (run) => step(run, "a").orchesjob_status?.status === "RUNNING");
  return step(run, "a").orchesjob_status.target_pid;
}

function release(env: FlowEnv): void {
  Deno.writeTextFileSync(join(env.home, "release"), "");
}

async function stderrOf(child: Deno.ChildProcess): Promise<{ code: number; stdout: string; stderr: string }> {
  const output = await child.output();
  const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  return { code: output.code, stdout: decode(output.stdout), stderr: decode(output.stderr) };
}

flowTest(
  builtin,
  "a status that prints no JSON is recorded at once, shown everywhere, and cleared on recovery",
  async (env) => {
    const fake = writeFakeOrchesjob(env);
    const file = waitingFlow(env);
    const driver = env.spawn(["--orchesjob-bin", fake.bin, "start", "--run-key", "nj", file]);
    const jobPid = await jobPidOf(env, "nj");
    fake.mode("nojson");
    const broken = await env.waitFor("nj", "two failed calls", (run) => step(run, "a").executor_error?.count >= 2);
    const fault = step(broken, "a").executor_error;
    assert.match(fault.message, /fake-orchesjob status printed no JSON: Traceback/);
    assert.equal(fault.exit_code, 0);
    assert.ok(fault.first_failure_at <= fault.last_failure_at);
    assert.equal(step(broken, "a").status, "RUNNING");
    const table = await env.run(["status", "--run-key", "nj", "--format", "table"]);
    assert.match(table.stdout, /orchesjob failing for \d\d:\d\d:\d\d \(\d+ failed calls\): .*printed no JSON/);
    fake.mode("");
    await env.waitFor("nj", "the error cleared", (run) => step(run, "a").executor_error === null);
    release(env);
    const result = await stderrOf(driver);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(JSON.parse(result.stdout).status, "SUCCEEDED");
    const warnings = result.stderr.split("\n").filter((line) => line !== "").map((line) => JSON.parse(line));
    assert.ok(warnings.length >= 2, result.stderr);
    assert.match(warnings[0].error, /^executor call failed: .*printed no JSON/);
    assert.equal(warnings[0].step, "a");
    assert.equal(warnings[0].executor_error.count, 1);
    await eventually("the job's process is gone", () => !processAlive(jobPid));
  },
);

flowTest(
  builtin,
  "a status that keeps exiting 1 fails the attempt after executor_unavailable_sec, aborts it, and retries",
  async (env) => {
    const fake = writeFakeOrchesjob(env);
    const file = waitingFlow(env, "executor_unavailable_sec: 1\n", "    retries: 1\n");
    const driver = env.spawn(["--orchesjob-bin", fake.bin, "start", "--run-key", "e1", file]);
    const running = await env.waitFor(
      "e1",
      "a has a job",
      (run) => step(run, "a").orchesjob_status?.status === "RUNNING",
    );
    const firstPid = step(running, "a").orchesjob_status.target_pid;
    fake.mode("exit1");
    const result = await stderrOf(driver);
    assert.equal(result.code, 1, result.stderr);
    const run = JSON.parse(result.stdout);
    assert.equal(run.status, "FAILED");
    const a = step(run, "a");
    assert.equal(a.attempt_no, 2, "the failed attempt was retried");
    assert.match(
      a.error,
      /^orchesjob unusable for \d+ s \(\d+ failed calls; limit 1 s\): .*status exited 1: .*database is locked/,
    );
    assert.equal(a.executor_error.exit_code, 1);
    assert.match(a.executor_error.stderr_tail, /database is locked/);
    // Both attempts' jobs were aborted (abort still works), so nothing is left running.
    fake.mode("");
    for (const key of ["e1:a:1", "e1:a:2"]) {
      const jobs = await env.jobs(key);
      assert.equal(jobs.length, 1, `${key} started once`);
      assert.equal(jobs[0].status, "ABORTED", key);
    }
    await eventually("attempt 1's process is gone", () => !processAlive(firstPid));
  },
);

/** Answers of `status` that are no job, each a fault that passes (mode of the fake: the error it gives). */
const NOT_A_JOB: [string, RegExp][] = [
  ["huge", /fake-orchesjob status printed more than 4 MiB on stdout \(the limit\)$/],
  ["segv", /fake-orchesjob status was killed by signal SIGSEGV$/],
  ["empty", /status printed no job of orchesjob's shape \(job_id is missing, not a string\): \{\}$/],
  ["null", /status printed no job of orchesjob's shape \(expected a job object, got null\): null$/],
  ["string", /status printed no job of orchesjob's shape \(expected a job object, got string\): "SUCCEEDED"$/],
  ["array", /status printed no job of orchesjob's shape \(expected a job object, got an array\): \[\]$/],
  ["pending", /status printed no job of orchesjob's shape \(status "PENDING" is not one of STARTING, RUNNING, /],
  [
    "otherkey",
    /status printed no job of orchesjob's shape \(run_key is "other:a:1", not the key asked for \("na:a:1"\)\)/,
  ],
];

flowTest(builtin, "status answers that are not a job are faults that pass, never the job's end", async (env) => {
  const fake = writeFakeOrchesjob(env);
  const file = waitingFlow(env, "", "    retries: 2\n");
  const driver = env.spawn(["--orchesjob-bin", fake.bin, "start", "--run-key", "na", file]);
  const jobPid = await jobPidOf(env, "na");
  const calls = () => countLines(join(env.home, "status.log"));
  for (const [mode, message] of NOT_A_JOB) {
    fake.mode(mode);
    // Any other outcome (the step failed, retried or ended) stops the wait too, and fails below.
    const run = await env.waitFor("na", mode, (run) => {
      const a = step(run, "a");
      return a.executor_error !== null || a.attempt_no !== 1 || a.status !== "RUNNING";
    });
    assert.ok(calls()[mode] >= 1, `the fake answered in mode ${mode}`);
    assert.deepEqual([step(run, "a").status, step(run, "a").attempt_no], ["RUNNING", 1], mode);
    assert.match(step(run, "a").executor_error.message, message);
    fake.mode("");
    await env.waitFor("na", "the error cleared", (run) => step(run, "a").executor_error === null);
  }
  release(env);
  const result = await stderrOf(driver);
  assert.equal(result.code, 0, result.stderr);
  assert.deepEqual([JSON.parse(result.stdout).status, step(JSON.parse(result.stdout), "a").attempt_no], [
    "SUCCEEDED",
    1,
  ]);
  assert.doesNotMatch(result.stderr, /internal error/);
  assert.equal((await env.jobs("na:a:1")).length, 1, "the step's job was started once");
  await eventually("the job's process is gone", () => !processAlive(jobPid));
});

flowTest(
  builtin,
  "a start that prints null is a fault that passes: the job it made is found, not started twice",
  async (env) => {
    const fake = writeFakeOrchesjob(env);
    fake.mode("startnull");
    const file = waitingFlow(env);
    const driver = env.spawn(["--orchesjob-bin", fake.bin, "start", "--run-key", "sn", file]);
    // The start's answer was unreadable; the next round's status finds the job it made.
    const seen = await env.waitFor(
      "sn",
      "a's job found",
      (run) => step(run, "a").orchesjob_status?.status === "RUNNING",
    );
    assert.equal(step(seen, "a").attempt_no, 1);
    fake.mode("");
    release(env);
    const result = await stderrOf(driver);
    assert.equal(result.code, 0, result.stderr);
    assert.match(
      result.stderr,
      /^\{"error":"executor call failed: .*start printed no job of orchesjob's shape \(expected a job object, got null\): null"/,
    );
    assert.equal(step(JSON.parse(result.stdout), "a").status, "SUCCEEDED");
    assert.equal((await env.jobs("sn:a:1")).length, 1, "the step's job was started once");
  },
);

flowTest(builtin, "a status that hangs past the call limit is killed, recorded, and the run recovers", async (env) => {
  const fake = writeFakeOrchesjob(env);
  const file = waitingFlow(env);
  // Every call of the driver has this limit, and the calls that work start a Deno process each: the
  // limit must leave room for that on a loaded machine, or working calls time out too.
  const driver = env.spawn(["--orchesjob-bin", fake.bin, "start", "--run-key", "hang", file], {
    ORCHESJOB_FLOW_CALL_TIMEOUT: "5",
  });
  const jobPid = await jobPidOf(env, "hang");
  fake.mode("hang");
  const stuck = await env.waitFor("hang", "a hung call recorded", (run) => step(run, "a").executor_error !== null);
  assert.match(step(stuck, "a").executor_error.message, /fake-orchesjob status did not answer within 5 s/);
  const hungPid = Number(Deno.readTextFileSync(join(env.home, "hang.pid")));
  await eventually("the hung call was killed", () => !processAlive(hungPid));
  fake.mode("");
  await env.waitFor("hang", "the error cleared", (run) => step(run, "a").executor_error === null);
  release(env);
  const result = await stderrOf(driver);
  assert.equal(result.code, 0, result.stderr);
  await eventually("the job's process is gone", () => !processAlive(jobPid));
});

flowTest(builtin, "a Ctrl-C while a status call hangs stops the driver at once, killing the call", async (env) => {
  const fake = writeFakeOrchesjob(env);
  const file = waitingFlow(env);
  // A call limit far beyond the test: only the interrupt can end the hung call.
  const limit = { ORCHESJOB_FLOW_CALL_TIMEOUT: "600" };
  const driver = env.spawn(["--orchesjob-bin", fake.bin, "start", "--run-key", "int", file], limit);
  const jobPid = await jobPidOf(env, "int");
  fake.mode("hang");
  const hangPid = join(env.home, "hang.pid");
  await eventually("a status call hangs", () => existsSync(hangPid) && Deno.readTextFileSync(hangPid).endsWith("\n"));
  const hungPid = Number(Deno.readTextFileSync(hangPid));
  assert.ok(processAlive(hungPid), "the call is under way when the signal comes");
  driver.kill("SIGINT");
  const result = await stderrOf(driver);
  assert.equal(result.code, 130, result.stderr);
  assert.doesNotMatch(result.stderr, /did not answer/, "stopped by the signal, not by the call limit");
  assert.ok(!processAlive(hungPid), "the hung call was killed");
  const run = JSON.parse(result.stdout);
  assert.deepEqual([run.status, step(run, "a").status, step(run, "a").executor_error], ["RUNNING", "RUNNING", null]);
  // A sensor's wait --advance --timeout ends at its deadline, not at the call limit.
  const waited = await env.run(
    ["--orchesjob-bin", fake.bin, "wait", "--run-key", "int", "--advance", "--timeout", "3"],
    limit,
  );
  assert.equal(waited.code, 124, waited.stderr);
  assert.doesNotMatch(waited.stderr, /did not answer/);
  const lastHung = Number(Deno.readTextFileSync(hangPid));
  assert.notEqual(lastHung, hungPid, "wait --advance met a hung call of its own");
  assert.ok(!processAlive(lastHung), "wait's hung call was killed at its deadline");
  fake.mode("");
  release(env);
  const resumed = await env.run([
    "--orchesjob-bin",
    fake.bin,
    "wait",
    "--run-key",
    "int",
    "--advance",
    "--timeout",
    "120",
  ]);
  assert.equal(resumed.code, 0, resumed.stderr);
  assert.equal((await env.jobs("int:a:1")).length, 1, "the step's job was started once");
  await eventually("the job's process is gone", () => !processAlive(jobPid));
});

flowTest(
  builtin,
  "a run whose cancel could not abort a job is not retried beside it: cancel again first",
  async (env) => {
    const fake = writeFakeOrchesjob(env);
    const file = waitingFlow(env);
    assert.equal(
      (await env.json(["--orchesjob-bin", fake.bin, "start", "-d", "--run-key", "ua", file])).detached,
      true,
    );
    const jobPid = await jobPidOf(env, "ua");
    fake.mode("abortfail");
    const cancelled = await env.run(["cancel", "--run-key", "ua"]);
    assert.equal(cancelled.code, 5, cancelled.stderr);
    assert.ok(processAlive(jobPid), "the abort did not get through: the job runs");
    const refused = await env.run(["retry", "--run-key", "ua", "-d"]);
    assert.equal(refused.code, 2, refused.stderr);
    assert.match(errorLine(refused).error, /step a's job may still be running .*cancel the run again first/);
    assert.deepEqual(await env.jobs("ua:a:2"), [], "no second attempt was started");
    fake.mode("");
    assert.equal((await env.run(["cancel", "--run-key", "ua"])).code, 0);
    await eventually("the second cancel ended the job", () => !processAlive(jobPid));
    const retried = await env.run(["retry", "--run-key", "ua", "-d"]);
    assert.equal(retried.code, 0, retried.stderr);
    await env.json(["cancel", "--run-key", "ua", "--grace-seconds", "0"]);
  },
);

flowTest(builtin, "a logs call given up on is killed when the driver exits, not left running", async (env) => {
  const fake = writeFakeOrchesjob(env);
  fake.mode("logshang");
  const file = env.flow("fails.yaml", 'flow_id: fails\nsteps:\n  - {id: a, command: ["false"]}\n');
  const result = await env.run(["--orchesjob-bin", fake.bin, "start", "--run-key", "lg", file]);
  assert.equal(result.code, 1, result.stderr);
  assert.equal(step(JSON.parse(result.stdout), "a").error, "orchesjob status FAILED (exit code 1)");
  const pid = Number(Deno.readTextFileSync(join(env.home, "logs.pid")));
  assert.ok(pid > 0, "the stderr line was asked for, and the call hung");
  await eventually("the hung call is gone", () => !processAlive(pid), 5);
});

flowTest(
  builtin,
  "orchesjob killed after start made the job: the step follows that job, and ends with no error",
  async (env) => {
    const fake = writeFakeOrchesjob(env);
    fake.mode("startdies");
    const file = env.flow("one.yaml", 'flow_id: one\nsteps:\n  - {id: a, command: ["true"]}\n');
    const run = await env.json(["--orchesjob-bin", fake.bin, "start", "-q", "--run-key", "sd", file]);
    assert.equal(Deno.readTextFileSync(join(env.home, "died")), "start\n", "the start made the job, then died");
    assert.equal(step(run, "a").status, "SUCCEEDED");
    assert.equal(step(run, "a").error, null, "the start's failure is not shown on a step that succeeded");
    assert.equal(step(run, "a").orchesjob_status.run_key, "sd:a:1");
    assert.equal((await env.jobs("sd:a:1")).length, 1, "one job, followed after the failed start");
  },
);

/** Two steps that each run until the file `release` appears, so that one round asks about both. */
function twoWaitingSteps(env: FlowEnv, extra = ""): string {
  const wait = JSON.stringify(`while [ ! -e '${join(env.home, "release")}' ]; do sleep 0.05; done`);
  return env.flow(
    "two.yaml",
    `flow_id: two\n${extra}steps:\n  - {id: a, command: ${wait}}\n  - {id: b, command: ${wait}}\n`,
  );
}

/** What the fake was asked in mode runningnull or allnull: `running` for the list, else the key asked about. */
function fakeCalls(env: FlowEnv): string[] {
  return Object.keys(countLines(join(env.home, "calls.log")));
}

flowTest(
  builtin,
  "a status --running list of [null] is not believed: each job is asked by key, and nothing fails",
  async (env) => {
    const fake = writeFakeOrchesjob(env);
    const file = twoWaitingSteps(env);
    const driver = env.spawn(["--orchesjob-bin", fake.bin, "start", "--run-key", "rn", file]);
    await env.waitFor(
      "rn",
      "a and b have RUNNING jobs",
      (run) => ["a", "b"].every((id) => step(run, id).orchesjob_status?.status === "RUNNING"),
    );
    fake.mode("runningnull");
    // The list was asked for and answered [null]; then each step's job was asked for by its key.
    await eventually("both keys asked after the list", () => {
      const calls = fakeCalls(env);
      return calls.includes("running") && calls.includes("rn:a:1") && calls.includes("rn:b:1");
    });
    const during = await env.status("rn");
    for (const id of ["a", "b"]) {
      assert.equal(step(during, id).status, "RUNNING", `${id}: a list with no job in it is no job's end`);
      assert.equal(step(during, id).executor_error, null, `${id}: the keys answered, so nothing is failing`);
    }
    fake.mode("");
    release(env);
    const result = await stderrOf(driver);
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(statuses(JSON.parse(result.stdout)), { a: "SUCCEEDED", b: "SUCCEEDED" });
    assert.doesNotMatch(result.stderr, /executor call failed|internal error/);
    for (const key of ["rn:a:1", "rn:b:1"]) assert.equal((await env.jobs(key)).length, 1, `${key} started once`);
  },
);

flowTest(
  builtin,
  "a status --running list of [null] with no answer by key either fails the attempts after executor_unavailable_sec",
  async (env) => {
    const fake = writeFakeOrchesjob(env);
    const file = twoWaitingSteps(env, "executor_unavailable_sec: 1\n");
    const driver = env.spawn(["--orchesjob-bin", fake.bin, "start", "--run-key", "an", file]);
    const running = await env.waitFor(
      "an",
      "a and b have RUNNING jobs",
      (run) => ["a", "b"].every((id) => step(run, id).orchesjob_status?.status === "RUNNING"),
    );
    const pids = ["a", "b"].map((id) => step(running, id).orchesjob_status.target_pid);
    fake.mode("allnull");
    const result = await stderrOf(driver);
    assert.equal(result.code, 1, result.stderr);
    const calls = fakeCalls(env);
    assert.ok(calls.includes("running") && calls.includes("an:a:1"), `the fake answered: ${calls}`);
    const run = JSON.parse(result.stdout);
    for (const id of ["a", "b"]) {
      const s = step(run, id);
      assert.equal(s.status, "FAILED", id);
      assert.equal(s.attempt_no, 1, id);
      assert.match(
        s.error,
        /^orchesjob unusable for \d+ s \(\d+ failed calls; limit 1 s\): .*status printed no job of orchesjob's shape \(expected a job object, got null\)/,
      );
      // Failed at the limit, not left to wait (a minute is far beyond it, for a loaded machine).
      const unusable = Number(/^orchesjob unusable for (\d+) s/.exec(s.error)![1]);
      assert.ok(unusable >= 1 && unusable < 60, s.error);
    }
    fake.mode("");
    for (const key of ["an:a:1", "an:b:1"]) {
      const jobs = await env.jobs(key);
      assert.deepEqual(jobs.map((job: { status: string }) => job.status), ["ABORTED"], `${key}: aborted, once`);
    }
    for (const pid of pids) await eventually(`job process ${pid} is gone`, () => !processAlive(pid));
  },
);

flowTest(
  builtin,
  "a start killed by a signal is reported naming it; the job it made is followed, and none is retried forever",
  async (env) => {
    const fake = writeFakeOrchesjob(env);
    const died = join(env.home, "died");
    // The start makes the job and is then killed: the next poll finds that job and follows it.
    fake.mode("startkilled");
    const one = env.flow("one.yaml", 'flow_id: one\nsteps:\n  - {id: a, command: ["true"]}\n');
    const made = await env.run(["--orchesjob-bin", fake.bin, "start", "-q", "--run-key", "sk", one]);
    assert.equal(made.code, 0, made.stderr);
    const [line] = Deno.readTextFileSync(died).trim().split("\n");
    const fakePid = Number(line.split(" ")[1]);
    assert.ok(line.startsWith("start ") && !processAlive(fakePid), `the fake's start died: ${line}`);
    const warning = made.stderr.split("\n").find((l) => l.includes("executor call failed"));
    assert.ok(warning, `the death was reported: ${made.stderr}`);
    assert.match(JSON.parse(warning).error, /fake-orchesjob start was killed by signal SIGKILL$/);
    assert.doesNotMatch(warning, /did not answer within/, "a death by a signal is not a timeout");
    const a = step(JSON.parse(made.stdout), "a");
    assert.deepEqual([a.status, a.error, a.executor_error], ["SUCCEEDED", null, null]);
    assert.equal((await env.jobs("sk:a:1")).length, 1, "the job the dead start made, followed, not started twice");

    // Killed before it makes the job, every time: tried again under the same key, then failed at the limit.
    Deno.removeSync(died);
    fake.mode("startkilledfirst");
    const never = env.flow(
      "never.yaml",
      'flow_id: never\nexecutor_unavailable_sec: 1\nsteps:\n  - {id: a, command: ["true"]}\n',
    );
    const failed = await env.run(["--orchesjob-bin", fake.bin, "start", "-q", "--run-key", "kf", never]);
    assert.equal(failed.code, 1, failed.stderr);
    const deaths = Deno.readTextFileSync(died).trim().split("\n");
    assert.ok(deaths.length >= 2, `the start was tried again: ${deaths}`);
    const f = step(JSON.parse(failed.stdout), "a");
    assert.equal(f.status, "FAILED");
    assert.match(
      f.error,
      /^orchesjob unusable for \d+ s \(\d+ failed calls; limit 1 s\): .*start was killed by signal SIGKILL$/,
    );
    assert.deepEqual(await env.jobs("kf:a:1"), [], "no job was ever made");
  },
);

flowTest(
  builtin,
  "the job wrapper's exit for a signal (130) during a start is no answer: the start is tried again, the step runs once",
  async (env) => {
    const fake = writeFakeOrchesjob(env);
    fake.mode("startinterrupted");
    const file = env.flow("one.yaml", 'flow_id: one\nsteps:\n  - {id: a, command: ["true"]}\n');
    const run = await env.run(["--orchesjob-bin", fake.bin, "start", "-q", "--run-key", "si", file]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stderr, /fake-orchesjob start exited 130: .*interrupted; nothing was stored/, "the 130 happened");
    const a = step(JSON.parse(run.stdout), "a");
    assert.deepEqual([a.status, a.attempt_no, a.error, a.executor_error], ["SUCCEEDED", 1, null, null]);
    assert.equal((await env.jobs("si:a:1")).length, 1, "one job, started on the second try under the same key");
  },
);

flowTest(builtin, "a job cleaned while running fails its attempt instead of starting the step again", async (env) => {
  const fake = writeFakeOrchesjob(env);
  const file = waitingFlow(env);
  const driver = env.spawn(["--orchesjob-bin", fake.bin, "start", "--run-key", "cl", file]);
  const jobPid = await jobPidOf(env, "cl");
  fake.mode("cleaned");
  const result = await stderrOf(driver);
  assert.equal(result.code, 1, result.stderr);
  const a = step(JSON.parse(result.stdout), "a");
  assert.equal(a.status, "FAILED");
  assert.match(a.error, /^orchesjob no longer knows run key cl:a:1 .*it may have been cleaned while running/);
  fake.mode("");
  assert.equal((await env.jobs("cl:a:1")).length, 1, "the step was not started twice");
  release(env);
  await eventually("the job ends", async () => (await env.jobs("cl:a:1"))[0].status === "SUCCEEDED");
  await eventually("the job's process is gone", () => !processAlive(jobPid));
});

flowTest(
  builtin,
  "cancel completes when the abort fails: the step is CANCELLED, says so, and cancel exits 5",
  async (env) => {
    const fake = writeFakeOrchesjob(env);
    const file = waitingFlow(env);
    const driver = env.spawn(["--orchesjob-bin", fake.bin, "start", "--run-key", "ab", file]);
    const jobPid = await jobPidOf(env, "ab");
    fake.mode("abortfail");
    const cancel = await env.run(["cancel", "--run-key", "ab"]);
    assert.equal(cancel.code, 5, cancel.stderr);
    const run = JSON.parse(cancel.stdout);
    assert.equal(run.status, "CANCELLED");
    assert.equal(step(run, "a").status, "CANCELLED");
    assert.match(
      step(run, "a").error,
      /^flow cancelled; abort failed: .*abort exited 1: abort: database is locked; the job may still be running \(orchesjob run key ab:a:1\)$/,
    );
    assert.match(errorLine(cancel).error, /orchesjob run key ab:a:1/);
    assert.equal((await stderrOf(driver)).code, 4, "the driver saw the cancel");
    // As the error says, the job still runs; the operator can stop it by its run key.
    fake.mode("");
    assert.equal((await env.jobs("ab:a:1"))[0].status, "RUNNING");
    release(env);
    await eventually("the job ends", async () => (await env.jobs("ab:a:1"))[0].status === "SUCCEEDED");
    await eventually("the job's process is gone", () => !processAlive(jobPid));
  },
);

flowTest(
  builtin,
  "cancel whose abort finds no job the run has seen says the job may still run, and exits 5",
  async (env) => {
    const fake = writeFakeOrchesjob(env);
    const file = waitingFlow(env);
    const driver = env.spawn(["--orchesjob-bin", fake.bin, "start", "--run-key", "ag", file]);
    await jobPidOf(env, "ag");
    fake.mode("abortgone");
    const cancel = await env.run(["cancel", "--run-key", "ag"]);
    assert.equal(cancel.code, 5, cancel.stderr);
    const run = JSON.parse(cancel.stdout);
    assert.equal(step(run, "a").status, "CANCELLED");
    assert.match(
      step(run, "a").error,
      /^flow cancelled; abort failed: orchesjob no longer knows run key ag:a:1; the job may still be running/,
    );
    assert.equal((await stderrOf(driver)).code, 4, "the driver saw the cancel");
    fake.mode("");
    assert.equal((await env.jobs("ag:a:1"))[0].status, "RUNNING", "the abort really reached nothing");
    release(env);
    await eventually("the job ends", async () => (await env.jobs("ag:a:1"))[0].status === "SUCCEEDED");
  },
);

flowTest(
  builtin,
  "an abort whose descendant in another session holds its pipes: cancel completes at once, not when it ends",
  async (env) => {
    const fake = writeFakeOrchesjob(env);
    const file = waitingFlow(env);
    const driver = env.spawn(["--orchesjob-bin", fake.bin, "start", "--run-key", "dm", file]);
    const jobPid = await jobPidOf(env, "dm");
    fake.mode("abortdaemon");
    const began = performance.now();
    const cancel = await env.run(["cancel", "--run-key", "dm", "--grace-seconds", "1"], {
      ORCHESJOB_FLOW_CALL_TIMEOUT: "30",
    });
    const seconds = (performance.now() - began) / 1000;
    const daemonPid = Number(Deno.readTextFileSync(join(env.home, "daemon.pid")));
    try {
      assert.equal(cancel.code, 0, cancel.stderr);
      const a = step(JSON.parse(cancel.stdout), "a");
      assert.deepEqual([a.status, a.orchesjob_status.status], ["CANCELLED", "ABORTED"]);
      // The daemon lives 60 s, and the call's limit is 30 s: neither was waited for.
      assert.ok(processAlive(daemonPid), "the daemon held the abort's pipes throughout");
      assert.ok(seconds < 20, `cancel took ${seconds} s`);
    } finally {
      Deno.kill(daemonPid, "SIGKILL");
    }
    assert.equal((await stderrOf(driver)).code, 4, "the driver saw the cancel");
    await eventually("the job's process is gone", () => !processAlive(jobPid));
  },
);

flowTest(
  builtin,
  "cancel with orchesjob moved away mid-run completes: CANCELLED, exit 5, the job's key named",
  async (env) => {
    const moved = join(env.home, "moved");
    Deno.mkdirSync(moved);
    const old = writeFakeOrchesjob(env, moved).bin;
    const file = waitingFlow(env);
    const driver = env.spawn(["--orchesjob-bin", old, "start", "--run-key", "mc", file]);
    const running = await env.waitFor(
      "mc",
      "a has a job",
      (run) => step(run, "a").orchesjob_status?.status === "RUNNING",
    );
    Deno.renameSync(moved, join(env.home, "elsewhere"));
    const cancel = await env.run(["cancel", "--run-key", "mc"]);
    assert.equal(cancel.code, 5, cancel.stderr);
    const run = JSON.parse(cancel.stdout);
    assert.deepEqual([run.status, step(run, "a").status], ["CANCELLED", "CANCELLED"]);
    assert.match(
      step(run, "a").error,
      /^flow cancelled; abort failed: orchesjob not found: .*moved\/fake-orchesjob; the job may still be running \(orchesjob run key mc:a:1\)$/,
    );
    assert.equal((await stderrOf(driver)).code, 4, "the driver saw the cancel");
    // The job, out of reach of the cancel, still runs; released, it ends and leaves no process.
    assert.ok(processAlive(step(running, "a").orchesjob_status.target_pid));
    release(env);
    await eventually("the job ends", async () => (await env.jobs("mc:a:1"))[0].status === "SUCCEEDED");
    await eventually("its process is gone", () => !processAlive(step(running, "a").orchesjob_status.target_pid));
  },
);

flowTest(
  builtin,
  "orchesjob moved away mid-run: the error shows, and cancel --orchesjob-bin aborts through the new path",
  async (env) => {
    const moved = join(env.home, "moved");
    Deno.mkdirSync(moved);
    const old = writeFakeOrchesjob(env, moved);
    const file = waitingFlow(env);
    const driver = env.spawn(["--orchesjob-bin", old.bin, "start", "--run-key", "mv", file]);
    await env.waitFor("mv", "a has a job", (run) => step(run, "a").orchesjob_status?.status === "RUNNING");
    Deno.renameSync(moved, join(env.home, "elsewhere"));
    // A call in flight during the rename may fail otherwise (the shell found the script, then could
    // not open it); every call started after it finds no program.
    const notFound = /^orchesjob not found: .*moved\/fake-orchesjob$/;
    const broken = await env.waitFor(
      "mv",
      "the failure recorded",
      (run) => notFound.test(step(run, "a").executor_error?.message ?? ""),
    );
    assert.match(step(broken, "a").executor_error.message, notFound);
    const bin = join(env.home, "elsewhere", "fake-orchesjob");
    const cancel = await env.run(["--orchesjob-bin", bin, "cancel", "--run-key", "mv", "--grace-seconds", "1"]);
    assert.equal(cancel.code, 0, cancel.stderr);
    const run = JSON.parse(cancel.stdout);
    assert.equal(step(run, "a").status, "CANCELLED");
    assert.equal(step(run, "a").orchesjob_status.status, "ABORTED");
    assert.equal(run.executor.kind, "orchesjob");
    assert.equal(run.executor.bin, bin);
    assert.deepEqual(run.executor.replaced.map((r: { bin: string }) => r.bin), [old.bin]);
    assert.equal((await stderrOf(driver)).code, 4);
    const pid = step(run, "a").orchesjob_status.target_pid;
    await eventually("the aborted job's process is gone", () => !processAlive(pid));
    // A run on the built-in runner has no binary to replace.
    await env.json(["start", "--run-key", "b", env.flow("one.yaml", ONE_STEP)]);
    const refused = await env.run(["--orchesjob-bin", bin, "cancel", "--run-key", "b"]);
    assert.equal(refused.code, 2);
    assert.match(errorLine(refused).error, /run b uses the built-in runner; --orchesjob-bin does not apply/);
  },
);

flowTest(
  builtin,
  "orchesjob moved away: start, resume and watch --advance of an existing run take --orchesjob-bin and record it",
  async (env) => {
    const moved = join(env.home, "moved");
    Deno.mkdirSync(moved);
    const old = writeFakeOrchesjob(env, moved).bin;
    const file = env.flow("flow.yaml", ONE_STEP);
    const commands: Record<string, string[]> = {
      start: ["start", "--run-key", "via-start", file],
      resume: ["resume", "--run-key", "via-resume"],
      watch: ["watch", "--run-key", "via-watch", "--interval", "0.1", "--mode", "append"],
    };
    for (const name of Object.keys(commands)) {
      using _lock = await env.holdDriverLock(`via-${name}`);
      const created = await env.json(["--orchesjob-bin", old, "start", "--run-key", `via-${name}`, "-d", file]);
      assert.equal(created.detached, false, "nobody drives the run yet");
    }
    Deno.renameSync(moved, join(env.home, "elsewhere"));
    const bin = join(env.home, "elsewhere", "fake-orchesjob");
    // Without the replacement each run would call its recorded binary, which is gone: a step that
    // cannot start fails (no retries), so a SUCCEEDED run below is the replacement's doing.
    assert.equal(existsSync(old), false);
    assert.equal((await env.status("via-start")).executor.bin, old);
    for (const [name, args] of Object.entries(commands)) {
      const result = await env.run(["--orchesjob-bin", bin, ...args]);
      assert.equal(result.code, 0, `${name}: ${result.stderr}`);
      const run = await env.status(`via-${name}`);
      assert.equal(run.status, "SUCCEEDED", name);
      assert.equal(step(run, "a").orchesjob_status.run_key, `via-${name}:a:1`);
      assert.deepEqual(
        [run.executor.kind, run.executor.bin, run.executor.replaced.map((r: { bin: string }) => r.bin)],
        ["orchesjob", bin, [old]],
        name,
      );
    }
  },
);

flowTest(builtin, "ten concurrent start -d of one key: exactly one reports detached: true", async (env) => {
  const file = waitingFlow(env);
  const results = await Promise.all(
    Array.from({ length: 10 }, () => env.run(["start", "--run-key", "race", "-d", file])),
  );
  const reports = results.map((result) => {
    assert.equal(result.code, 0, result.stderr);
    return JSON.parse(result.stdout);
  });
  const detached = reports.filter((report) => report.detached === true);
  assert.equal(detached.length, 1, JSON.stringify(reports.map((r) => r.detached)));
  const driverPid = detached[0].pid;
  for (const report of reports.filter((r) => r.detached === false)) {
    assert.equal(report.driver?.pid, driverPid, "the others name the driver that holds the run");
  }
  assert.ok(processAlive(driverPid));
  release(env);
  await env.waitFor("race", "SUCCEEDED", (run) => run.status === "SUCCEEDED");
  await eventually("the background driver exits", () => !processAlive(driverPid));
});

flowTest(
  builtin,
  "start -d whose background driver fails reports detached: false, its error and exit code",
  async (env) => {
    const file = env.flow("flow.yaml", ONE_STEP);
    // The parent does not read this variable; the background driver does, and exits 2 on it.
    const result = await env.run(["start", "--run-key", "bad", "-d", file], { ORCHESJOB_FLOW_CALL_TIMEOUT: "soon" });
    assert.equal(result.code, 2, result.stderr);
    const report = JSON.parse(result.stdout);
    assert.equal(report.detached, false);
    assert.equal(report.exit_code, 2);
    assert.match(report.error, /^the background driver exited 2: .*ORCHESJOB_FLOW_CALL_TIMEOUT must be a number/);
    assert.equal(processAlive(report.pid), false);
  },
);

flowTest(builtin, "start -d under a Deno executable not named deno still launches a working driver", async (env) => {
  const renamed = join(env.home, "deno-renamed");
  try {
    Deno.linkSync(Deno.execPath(), renamed);
  } catch {
    Deno.copyFileSync(Deno.execPath(), renamed);
  }
  const file = env.flow("flow.yaml", ONE_STEP);
  const output = await new Deno.Command(renamed, {
    args: [...CLI.slice(1), ...env.globals(), "start", "--run-key", "ren", "-d", file],
    env: env.env(),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(output.stderr);
  assert.equal(output.code, 0, stderr);
  const report = JSON.parse(new TextDecoder().decode(output.stdout));
  assert.equal(report.detached, true);
  await env.waitFor("ren", "SUCCEEDED", (run) => run.status === "SUCCEEDED");
  await eventually("the background driver exits", () => !processAlive(report.pid));
});

/** A run that exists but that nobody drives: created by `start -d` while the test holds the driver lock. */
async function undriven(env: FlowEnv, runKey: string, file: string): Promise<void> {
  using _lock = await env.holdDriverLock(runKey);
  const created = await env.json(["start", "--run-key", runKey, "-d", file]);
  assert.equal(created.detached, false);
  assert.equal(created.driver.pid, Deno.pid, "the test's own lock is the driver reported");
}

flowTest(builtin, "status shows who drives a run; a run nobody drives says how to resume it", async (env) => {
  const file = waitingFlow(env);
  await undriven(env, "nd", file);
  const json = await env.status("nd");
  assert.equal(json.status, "PENDING");
  assert.equal(json.driver, null);
  const table = await env.run(["status", "--run-key", "nd", "--format", "table"]);
  assert.match(table.stdout, /^Driver: none; resume with: orchesjob-flow resume --run-key nd$/m);
  const launched = await env.json(["resume", "--run-key", "nd", "-d"]);
  assert.equal(launched.detached, true);
  const driven = await env.waitFor("nd", "a RUNNING", (run) => step(run, "a").status === "RUNNING");
  assert.deepEqual(driven.driver, { pid: launched.pid });
  const shown = await env.run(["status", "--run-key", "nd", "--format", "table"]);
  assert.match(shown.stdout, new RegExp(`^Driver: pid ${launched.pid}$`, "m"));
  release(env);
  const done = await env.waitFor("nd", "SUCCEEDED", (run) => run.status === "SUCCEEDED");
  assert.doesNotMatch((await env.run(["status", "--run-key", "nd", "--format", "table"])).stdout, /Driver:/);
  assert.equal(done.driver, null, "a run that has ended has no driver");
  assert.equal(step(done, "a").status, "SUCCEEDED");
  await eventually("the background driver exits", () => !processAlive(launched.pid));
});

flowTest(builtin, "the resume hint of a command given --db names that state file, and works as copied", async (env) => {
  // The README's systemd unit and crontab line keep their runs in a state file of their own (--db):
  // the hint said `orchesjob-flow resume --run-key K`, which, copied, looked in the default one (exit 3).
  const file = waitingFlow(env);
  await undriven(env, "ndb", file);
  const db = join(env.home, "orchesjob-flow.sqlite3");
  const table = await env.run(["--db", db, "status", "--run-key", "ndb", "--format", "table"]);
  assert.equal(table.code, 0, table.stderr);
  const hint = table.stdout.match(/^Driver: none; resume with: (.*)$/m)?.[1];
  assert.equal(hint, `orchesjob-flow --db ${db} resume --run-key ndb`);
  release(env);
  // As an operator would run it: another shell, with neither ORCHESJOB_FLOW_HOME nor a state file in HOME.
  using elsewhere = tempDir();
  const program = CLI.map((word) => `'${word}'`).join(" ");
  const copied = await new Deno.Command("/bin/sh", {
    args: ["-c", hint.replace(/^orchesjob-flow /, `${program} --poll-interval 0.1 `)],
    cwd: elsewhere.path,
    env: { ...env.env(), ORCHESJOB_FLOW_HOME: "", HOME: elsewhere.path },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(copied.code, 0, new TextDecoder().decode(copied.stderr));
  assert.equal(JSON.parse(new TextDecoder().decode(copied.stdout)).status, "SUCCEEDED");
});

flowTest(builtin, "watch on a run nobody drives says so once on stderr and drives it to the end", async (env) => {
  const file = env.flow("flow.yaml", ONE_STEP + '  - {id: b, when: a, command: ["true"]}\n');
  await undriven(env, "w", file);
  const result = await env.run(["watch", "--run-key", "w", "--interval", "0.1", "--mode", "append"]);
  assert.equal(result.code, 0, result.stderr);
  const lines = result.stderr.split("\n").filter((line) => line !== "");
  assert.equal(lines.length, 1, result.stderr);
  assert.deepEqual(JSON.parse(lines[0]), {
    warning: "Driver: none; resume with: orchesjob-flow resume --run-key w",
    run_key: "w",
    advancing: true,
  });
  assert.equal((await env.status("w")).status, "SUCCEEDED");
});

flowTest(builtin, "watch --no-advance only shows a run nobody drives", async (env) => {
  const file = env.flow("flow.yaml", ONE_STEP);
  await undriven(env, "nw", file);
  const child = env.spawn(["watch", "--run-key", "nw", "--interval", "0.1", "--mode", "append", "--no-advance"]);
  const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  let seen = "";
  while (!seen.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) break;
    seen += value;
  }
  assert.match(seen, /"advancing":false/);
  assert.equal((await env.status("nw")).status, "PENDING", "watch --no-advance drove nothing");
  child.kill("SIGINT");
  reader.releaseLock();
  await child.stderr.cancel().catch(() => {});
  const output = await child.output().catch(() => null);
  assert.equal((await child.status).code, 130, String(output));
});

flowTest(
  builtin,
  "resume continues a run from its stored definition, without the flow file",
  async (env) => {
    const file = env.flow("flow.yaml", ONE_STEP + '  - {id: b, when: a, command: ["true"]}\n');
    await undriven(env, "rs", file);
    Deno.removeSync(file);
    const run = await env.json(["resume", "--run-key", "rs"]);
    assert.equal(run.status, "SUCCEEDED");
    const unknown = await env.run(["resume", "--run-key", "nope"]);
    assert.equal(unknown.code, 3);
    assert.match(errorLine(unknown).error, /^resume: run not found: nope \(state file /);
  },
);

/** Runs `orchesjob-flow GLOBALS ARGS…` in `cwd` with `extraEnv`; not waited for. */
function spawnIn(env: FlowEnv, cwd: string, args: string[], extraEnv: Record<string, string>): Deno.ChildProcess {
  return new Deno.Command(CLI[0], {
    args: [...CLI.slice(1), ...env.globals(), ...args],
    cwd,
    env: env.env(extraEnv),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

flowTest(both, "a resumed run's steps run in the first start's directory and environment", async (env) => {
  const [first, other] = [join(env.home, "first"), join(env.home, "other")];
  Deno.mkdirSync(first);
  Deno.mkdirSync(other);
  const releaseFile = join(env.home, "release");
  const file = env.flow(
    "flow.yaml",
    `flow_id: where
steps:
  - id: a
    command: ${JSON.stringify(`while [ ! -e '${releaseFile}' ]; do sleep 0.05; done`)}
  - id: b
    when: a
    command: 'pwd > out-b; printf "%s\\n" "$MARKER" >> out-b'
`,
  );
  const driver = spawnIn(env, first, ["start", "--run-key", "cwd", file], { MARKER: "first start" });
  await env.waitFor("cwd", "a RUNNING", (run) => step(run, "a").status === "RUNNING");
  driver.kill("SIGTERM");
  assert.equal((await stderrOf(driver)).code, 130);
  release(env);
  const resumed = spawnIn(env, other, ["resume", "--run-key", "cwd"], { MARKER: "resumed elsewhere" });
  const result = await stderrOf(resumed);
  assert.equal(result.code, 0, result.stderr);
  assert.equal(Deno.readTextFileSync(join(first, "out-b")), `${Deno.realPathSync(first)}\nfirst start\n`);
  assert.equal(existsSync(join(other, "out-b")), false);
  // The stored environment may hold secrets: the state file (and its WAL beside it) is the user's only.
  const stateFiles = [...Deno.readDirSync(env.home)].filter((e) => e.name.startsWith("orchesjob-flow.sqlite3"));
  assert.ok(stateFiles.length >= 1);
  for (const { name } of stateFiles) assert.equal(Deno.statSync(join(env.home, name)).mode! & 0o777, 0o600, name);
});

flowTest(
  builtin,
  "every orchesjob call of a run has the run's environment: a cancel or resume from a shell with another ORCHESJOB_HOME reaches the run's jobs",
  async (env) => {
    // An orchesjob whose state lives under $ORCHESJOB_HOME, as the real one's does.
    const bin = join(env.home, "home-orchesjob");
    const cli = CLI.map((arg) => `'${arg.replaceAll("'", "'\\''")}'`).join(" ");
    Deno.writeTextFileSync(bin, `#!/bin/sh\nexec ${cli} --db "$ORCHESJOB_HOME/jobs.sqlite3" job "$@"\n`);
    Deno.chmodSync(bin, 0o755);
    const [homeA, homeB] = [join(env.home, "A"), join(env.home, "B")];
    Deno.mkdirSync(homeA);
    Deno.mkdirSync(homeB);
    const file = waitingFlow(env, "", "    retries: 1\n");
    const inA = { ORCHESJOB_HOME: homeA }, inB = { ORCHESJOB_HOME: homeB };
    const askIn = async (home: Record<string, string>, key: string) => {
      const command = new Deno.Command(bin, { args: ["status", "--run-key", key], env: env.env(home), stderr: "null" });
      const output = await command.output();
      return { code: output.code, job: output.code === 0 ? JSON.parse(new TextDecoder().decode(output.stdout)) : null };
    };
    const jobIn = async (home: Record<string, string>, key: string) => (await askIn(home, key)).job;

    // A foreground driver from shell A, killed while the step runs; `resume` from shell B follows
    // the same job in A instead of taking it for cleaned and starting attempt 2 beside it.
    const first = env.spawn(["--orchesjob-bin", bin, "start", "-q", "--run-key", "r", file], inA);
    await env.waitFor("r", "a RUNNING in A", (run) => step(run, "a").orchesjob_status?.status === "RUNNING");
    first.kill("SIGKILL");
    await first.output();
    const resumed = env.spawn(["resume", "-q", "--run-key", "r"], inB);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    assert.equal(step(await env.status("r"), "a").status, "RUNNING", "the resumed driver follows the job");
    assert.equal(step(await env.status("r"), "a").attempt_no, 1, "no second attempt was started");
    release(env);
    const done = await stderrOf(resumed);
    assert.equal(done.code, 0, done.stderr);
    assert.equal(step(JSON.parse(done.stdout), "a").attempt_no, 1, "the resumed driver followed attempt 1");
    assert.equal((await jobIn(inA, "r:a:1")).status, "SUCCEEDED");
    assert.equal((await askIn(inA, "r:a:2")).code, 3, "attempt 2 was never started");

    // `cancel` from shell B aborts the job the run started in A.
    Deno.removeSync(join(env.home, "release"));
    await env.json(["--orchesjob-bin", bin, "start", "-d", "--run-key", "c", file], 0, inA);
    await env.waitFor("c", "a RUNNING in A", (run) => step(run, "a").orchesjob_status?.status === "RUNNING");
    const cancelled = await env.json(["cancel", "--run-key", "c", "--grace-seconds", "1"], 0, inB);
    assert.equal(step(cancelled, "a").status, "CANCELLED");
    assert.equal((await jobIn(inA, "c:a:1")).status, "ABORTED", "the job in A was aborted");
  },
);

flowTest(
  builtin,
  "a step's finished_at is the job's own end, not when a driver back from an outage noticed it",
  async (env) => {
    // a ends when the test says, after its driver is gone (a fixed-length step could end, and be
    // recorded by the driver, before a loaded machine let the test see it running).
    const file = env.flow(
      "flow.yaml",
      `flow_id: times\nsteps:\n  - {id: a, command: ${
        JSON.stringify(`while [ ! -e '${join(env.home, "release")}' ]; do sleep 0.05; done`)
      }}\n`,
    );
    const driver = env.spawn(["start", "--run-key", "t", file]);
    await env.waitFor("t", "a has a job", (run) => step(run, "a").orchesjob_status?.status === "RUNNING");
    driver.kill("SIGKILL");
    await stderrOf(driver);
    release(env);
    let job = (await env.jobs("t:a:1"))[0];
    await eventually("the job ended while no driver ran, 3 s ago", async () => {
      job = (await env.jobs("t:a:1"))[0];
      return job.status === "SUCCEEDED" && Date.now() / 1000 >= job.finished_at + 3;
    });
    // The driver that resumes notices the end at `noticed` or later, at least 3 s after it happened.
    const noticed = Date.now() / 1000;
    const run = await env.json(["resume", "--run-key", "t"]);
    const a = step(run, "a");
    assert.equal(a.status, "SUCCEEDED");
    assert.ok(a.finished_at <= job.finished_at + 1, `step ${a.finished_at} vs job ${job.finished_at}`);
    assert.ok(a.finished_at <= noticed - 2, `step ${a.finished_at}: when the driver noticed (${noticed} or later)`);
    assert.ok(run.finished_at >= a.finished_at, "the run ends no earlier than its steps");
    // The table's elapsed time is the step's own (to the second), not up to when it was noticed.
    const table = (await env.run(["status", "--run-key", "t", "--format", "table"])).stdout;
    const [, h, m, sec] = table.match(/^a\s+OK SUCCEEDED\s+\S+\s+(\d\d):(\d\d):(\d\d)\s/m) ?? [];
    const shown = Number(h) * 3600 + Number(m) * 60 + Number(sec);
    assert.ok(Math.abs(shown - (a.finished_at - a.started_at)) <= 1, `table shows ${shown} s\n${table}`);
  },
);

flowTest(
  builtin,
  "a status --running that hangs is not waited for in every round: the keys are asked instead for a while",
  async (env) => {
    const fake = writeFakeOrchesjob(env);
    const file = twoWaitingSteps(env);
    // Each call is cut off after 1 s: a list call that hangs costs a round that second.
    const driver = env.spawn(["--orchesjob-bin", fake.bin, "start", "--run-key", "rh", file], {
      ORCHESJOB_FLOW_CALL_TIMEOUT: "1",
    });
    await env.waitFor(
      "rh",
      "a and b have RUNNING jobs",
      (run) => ["a", "b"].every((id) => step(run, id).orchesjob_status?.status === "RUNNING"),
    );
    fake.mode("runninghang");
    await eventually("the list was asked for, and hung", () => fakeCalls(env).includes("running"));
    // Rounds go on meanwhile (every 0.1 s at most): with the list asked each round, each took 1 s more.
    // The situation under test: several rounds after the hung list, each asking the keys themselves.
    // Waited for, not timed: on a loaded machine each call of the fake takes a second or more. The list
    // is not asked again for 60 s, far beyond this wait, which the count of lists below checks.
    const keyAsks = () => countLines(join(env.home, "calls.log"))["rh:a:1"] ?? 0;
    await eventually("three rounds asked for a by its key while the list was not asked", () => keyAsks() >= 3, 45);
    // The failure is visible meanwhile, as the run's error (JSON and table), and fails nothing.
    const note =
      /^orchesjob status --running failing \(1 failed call\): .*fake-orchesjob status did not answer within 1 s; /;
    const during = await env.status("rh");
    assert.match(during.error ?? "", note);
    for (const id of ["a", "b"]) {
      assert.deepEqual([step(during, id).status, step(during, id).executor_error], ["RUNNING", null]);
    }
    const table = await env.run(["status", "--run-key", "rh", "--format", "table"]);
    assert.match(table.stdout, /\nWarning: orchesjob status --running failing \(1 failed call\): /);
    release(env);
    const result = await stderrOf(driver);
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(statuses(JSON.parse(result.stdout)), { a: "SUCCEEDED", b: "SUCCEEDED" });
    const lists = countLines(join(env.home, "calls.log"))["running"];
    assert.equal(lists, 1, `status --running was asked ${lists} times`);
    // Said once on the driver's stderr (one JSON line), not once per round of the pause.
    const lines = result.stderr.split("\n").filter((line) => line !== "").map((line) => JSON.parse(line));
    assert.equal(lines.length, 1, result.stderr);
    assert.match(
      lines[0].warning,
      /^status --running failed; running steps are asked by run key for 60 s: .*did not answer/,
    );
    assert.deepEqual([lines[0].run_key, lines[0].list_again_in_sec, lines[0].executor_error.count], ["rh", 60, 1]);
    for (const key of ["rh:a:1", "rh:b:1"]) assert.equal((await env.jobs(key)).length, 1, `${key} started once`);
  },
);

/** How many `logs` calls of the process `pid` the fake failed in mode logsfail. */
function failedLogsCalls(env: FlowEnv, pid: number): number {
  return countLines(join(env.home, "logsfail.log"))[String(pid)] ?? 0;
}

/** A one-step flow whose step prints `tick 1`, runs until the file `release` appears, then prints `tick 2`. */
function talkingFlow(env: FlowEnv, extra = ""): string {
  const wait = `echo tick 1; while [ ! -e '${join(env.home, "release")}' ]; do sleep 0.05; done; echo tick 2`;
  return env.flow("talk.yaml", `flow_id: talk\n${extra}steps:\n  - {id: a, command: ${JSON.stringify(wait)}}\n`);
}

/** The JSON lines a process wrote on stderr. */
function jsonLines(text: string): Record<string, unknown>[] {
  return text.split("\n").filter((line) => line !== "").map((line) => JSON.parse(line));
}

flowTest(
  builtin,
  "logs --follow rides out orchesjob calls that fail for a while: one warning per streak, then the output to its end",
  async (env) => {
    const fake = writeFakeOrchesjob(env);
    const file = talkingFlow(env);
    const driver = env.spawn(["--orchesjob-bin", fake.bin, "start", "--run-key", "lf", file]);
    await jobPidOf(env, "lf");
    fake.mode("logsfail");
    const follow = ["logs", "--run-key", "lf", "--step", "a", "--stream", "stdout", "--follow"];
    const follower = env.spawn(follow);
    const [stdout, stderr] = [collectText(follower.stdout), collectText(follower.stderr)];
    // A second follower, interrupted while it waits to try again: polling slower than the tests' 0.1 s,
    // its pauses after a failed call grow to 1 s and more, a window the interrupt can be sent in.
    const quitter = env.spawn(["--poll-interval", "2", ...follow]);
    const quitterErr = collectText(quitter.stderr);
    let ended = false;
    follower.status.then(() => ended = true);
    // The situation under test: several calls of the follower failed in a row, and it goes on.
    await eventually("3 failed logs calls of the follower", () => {
      if (ended) throw new Error(`the follower ended at a failed call: ${stderr.text}`);
      return failedLogsCalls(env, follower.pid) >= 3;
    }, 60);
    await eventually("the quitter failed twice", () => failedLogsCalls(env, quitter.pid) >= 2, 60);
    // The situation under test: the interrupt comes while it waits to try again, not during a call
    // (which is interrupted too). Caught stopped (SIGSTOP) with no call under way (no child) and
    // its main thread in the event loop's wait, it is interrupted there.
    await eventually("the quitter interrupted in its wait between calls", async () => {
      Deno.kill(quitter.pid, "SIGSTOP");
      await eventually("the quitter stopped", () => isStopped(quitter.pid));
      const between = childrenOf(quitter.pid).length === 0 && inEventLoopWait(quitter.pid);
      if (between) quitter.kill("SIGINT");
      Deno.kill(quitter.pid, "SIGCONT");
      return between;
    });
    assert.equal((await quitter.status).code, 130, quitterErr.text);
    await quitter.stdout.cancel();
    const quit = jsonLines(await quitterErr.done);
    assert.equal(quit.length, 2, quitterErr.text);
    assert.match(quit[0].warning as string, /^cannot read the job, retrying: /);
    assert.match(quit[1].error as string, /^logs: interrupted/);
    assert.match(quit[1].error as string, /^logs: interrupted while retrying: /, quitterErr.text);
    assert.equal(stdout.text, "", "nothing could be read yet");
    fake.mode("");
    await eventually("tick 1 is followed", () => stdout.text === "tick 1\n", 60);
    // A second streak of failures, later: warned of again, once.
    const before = failedLogsCalls(env, follower.pid);
    fake.mode("logsfail");
    await eventually("2 more failed calls", () => failedLogsCalls(env, follower.pid) >= before + 2, 60);
    fake.mode("");
    release(env);
    const status = await follower.status;
    assert.equal(status.code, 0, stderr.text);
    assert.equal(await stdout.done, "tick 1\ntick 2\n");
    const warnings = jsonLines(await stderr.done);
    assert.equal(warnings.length, 2, `one warning per streak of failures: ${stderr.text}`);
    for (const warning of warnings) {
      assert.deepEqual(Object.keys(warning), ["warning", "retry_for_sec"]);
      assert.match(
        warning.warning as string,
        /^cannot read the job, retrying: .*fake-orchesjob logs exited 1: sqlite3\.OperationalError: database is locked$/,
      );
      assert.equal(warning.retry_for_sec, 600, "the flow's executor_unavailable_sec (default)");
    }
    assert.equal((await stderrOf(driver)).code, 0);
  },
);

flowTest(
  builtin,
  "logs --follow gives up with exit 1 once orchesjob calls kept failing for executor_unavailable_sec",
  async (env) => {
    const fake = writeFakeOrchesjob(env);
    const file = talkingFlow(env, "executor_unavailable_sec: 1\n");
    const driver = env.spawn(["--orchesjob-bin", fake.bin, "start", "--run-key", "lg", file]);
    await jobPidOf(env, "lg");
    fake.mode("logsfail");
    const follower = env.spawn(["logs", "--run-key", "lg", "--step", "a", "--follow"]);
    const result = await stderrOf(follower);
    assert.equal(result.code, 1, result.stderr);
    assert.ok(failedLogsCalls(env, follower.pid) >= 2, "it tried again before giving up");
    const [warning, error, ...rest] = jsonLines(result.stderr);
    assert.deepEqual(rest, []);
    assert.deepEqual(warning.retry_for_sec, 1);
    assert.match(
      error.error as string,
      /^logs: cannot read the job: orchesjob unusable for \d+ s \(\d+ failed calls; limit 1 s\): .*logs exited 1: .*database is locked$/,
    );
    fake.mode("");
    assert.equal(step(await env.status("lg"), "a").status, "RUNNING", "following is only reading");
    release(env);
    assert.equal((await stderrOf(driver)).code, 0);
  },
);
