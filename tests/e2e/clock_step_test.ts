/**
 * Steps of the wall clock while a run is in flight (NTP, a VM restored, `date -s`), through the
 * test-only clock offset (ORCHESJOB_FLOW_TEST_CLOCK_OFFSET_FILE): a running step's timeout and a
 * delayed retry keep the time they had left.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { CRASH_AT_VARIABLE } from "../../src/shared/crash_point.ts";
import { collectText, eventually, processAlive } from "../helpers.ts";
import { type FlowEnv, flowTest, step } from "./flow_env.ts";
import { spawnStopped } from "./stop_point.ts";
import { countLines, logged } from "./fault_helpers.ts";

const OFFSET_VARIABLE = "ORCHESJOB_FLOW_TEST_CLOCK_OFFSET_FILE";
const NOTICE = "the wall clock stepped by";

flowTest(["builtin"], "a step of the clock an hour forward does not time out a running step", async (env) => {
  const offset = join(env.home, "clock-offset");
  const release = join(env.home, "release");
  const file = env.flow(
    "forward.yaml",
    `flow_id: forward
steps:
  - {id: a, timeout_sec: 600, command: "while [ ! -e '${release}' ]; do sleep 0.05; done"}
`,
  );
  const child = env.spawn(["start", "--run-key", "r", file], { [OFFSET_VARIABLE]: offset });
  const stderr = collectText(child.stderr);
  const stdout = collectText(child.stdout);
  const before = await env.waitFor(
    "r",
    "a's job running",
    (run) => step(run, "a").orchesjob_status?.status === "RUNNING",
  );
  Deno.writeTextFileSync(offset, "3600");
  // The driver's next round sees the step (its notice), or, without the fix, times the step out.
  await eventually("the step seen, or a timed out", async () => {
    if (stderr.text.includes(NOTICE)) return true;
    return step(await env.status("r"), "a").error !== null;
  });
  Deno.writeTextFileSync(release, "");
  assert.equal((await child.status).code, 0, await stderr.done);
  const run = JSON.parse(await stdout.done);
  assert.equal(step(run, "a").status, "SUCCEEDED", step(run, "a").error);
  assert.equal(step(run, "a").attempt_no, 1);
  const notice = JSON.parse((await stderr.done).split("\n").find((line) => line.includes(NOTICE))!);
  assert.deepEqual([Math.round(notice.step_sec), notice.running, notice.delayed], [3600, ["a"], []]);
  // The attempt's start moved with the clock (it is on the new wall clock, as every later time is).
  assert.ok(step(run, "a").started_at >= step(before, "a").started_at + 3599);
});

flowTest(["builtin"], "a step of the clock an hour back does not lengthen a retry delay", async (env) => {
  const offset = join(env.home, "clock-offset");
  const mark = join(env.home, "failed-once");
  const file = env.flow(
    "back.yaml",
    `flow_id: back
steps:
  - {id: a, retries: 1, retry_delay_sec: 2, command: "[ -e '${mark}' ] || { touch '${mark}'; exit 1; }"}
`,
  );
  // Stopped just after its first attempt's failure was recorded, DELAYED for 2 s: the clock steps then.
  const stopped = await spawnStopped(env, ["start", "--run-key", "r", file], "driver:retry-recorded", {
    [OFFSET_VARIABLE]: offset,
  });
  const delayed = await env.status("r");
  assert.equal(step(delayed, "a").status, "DELAYED");
  Deno.writeTextFileSync(offset, "-3600");
  const finished = stopped.finish();
  // Without the fix, the retry waits an hour and two seconds.
  const run = await env.waitFor("r", "the run ended", (run) => run.status !== "RUNNING");
  assert.equal(run.status, "SUCCEEDED");
  assert.equal(step(run, "a").attempt_no, 2);
  const { code, stderr } = await finished;
  assert.equal(code, 0, stderr);
  const notice = JSON.parse(stderr.split("\n").find((line) => line.includes(NOTICE))!);
  assert.deepEqual([Math.round(notice.step_sec), notice.running, notice.delayed], [-3600, [], ["a"]]);
});

flowTest(["builtin"], "a step of the clock an hour back does not put off a running step's timeout", async (env) => {
  const offset = join(env.home, "clock-offset");
  const file = env.flow(
    "timeout.yaml",
    `flow_id: timeout
steps:
  - {id: a, timeout_sec: 2, command: "sleep 600"}
`,
  );
  // Stopped between the attempt's intent and its command's start: the clock steps back then.
  const stopped = await spawnStopped(env, ["start", "--run-key", "r", file], "runner:after-job-row", {
    [OFFSET_VARIABLE]: offset,
  });
  Deno.writeTextFileSync(offset, "-3600");
  const finished = stopped.finish();
  // Without the fix, the attempt times out an hour and two seconds after its start.
  const run = await env.waitFor("r", "the run ended", (run) => run.status !== "RUNNING");
  assert.equal(run.status, "FAILED");
  assert.match(step(run, "a").error, /timed out after 2 s/);
  const { code, stderr } = await finished;
  assert.equal(code, 1, stderr);
  const notice = JSON.parse(stderr.split("\n").find((line) => line.includes(NOTICE))!);
  assert.deepEqual([Math.round(notice.step_sec), notice.running, notice.delayed], [-3600, ["a"], []]);
});

flowTest(
  ["builtin"],
  "a delayed retry stored ahead of a clock that stepped back with no driver waits its delay",
  async (env) => {
    const offset = join(env.home, "clock-offset");
    const mark = join(env.home, "failed-once");
    const file = env.flow(
      "resumed.yaml",
      `flow_id: resumed
steps:
  - {id: a, retries: 1, retry_delay_sec: 2, command: "[ -e '${mark}' ] || { touch '${mark}'; exit 1; }"}
`,
    );
    const stopped = await spawnStopped(env, ["start", "--run-key", "r", file], "driver:retry-recorded");
    Deno.kill(stopped.pid, "SIGKILL");
    await stopped.finish();
    const delayed = await env.status("r");
    assert.equal(step(delayed, "a").status, "DELAYED");
    // The clock steps back while no driver runs: the stored retry time is an hour and 2 s ahead.
    Deno.writeTextFileSync(offset, "-3600");
    const resumed = env.spawn(["resume", "--run-key", "r"], { [OFFSET_VARIABLE]: offset });
    const stderr = collectText(resumed.stderr);
    // Without the fix, the retry waits an hour and two seconds.
    const run = await env.waitFor("r", "the run ended", (run) => run.status !== "RUNNING");
    assert.equal(run.status, "SUCCEEDED");
    assert.equal(step(run, "a").attempt_no, 2);
    assert.equal((await resumed.status).code, 0, await stderr.done);
    const notice = JSON.parse((await stderr.done).split("\n").find((line) => line.includes("stored ahead"))!);
    assert.deepEqual([notice.step_sec, notice.running, notice.delayed], [null, [], ["a"]]);
  },
);

flowTest(
  ["builtin"],
  "an abort's deadline left ahead of a clock that stepped back is not waited for an hour",
  async (env) => {
    const pidFile = join(env.home, "pid");
    const marker = join(env.home, "second");
    // Attempt 1 ignores SIGTERM, so only the SIGKILL at its abort's deadline ends it; attempt 2 succeeds.
    const script = `if [ -e '${pidFile}' ]; then touch '${marker}'; exit 0; fi; echo $$ > '${pidFile}'; ` +
      "trap '' TERM; while :; do sleep 0.1; done";
    const file = env.flow(
      "grace.yaml",
      `flow_id: grace\nsteps:\n  - {id: a, retries: 1, timeout_sec: 1, command: ${JSON.stringify(script)}}\n`,
    );
    // The driver dies in the timeout's abort grace, after SIGTERM, before its SIGKILL.
    const crashed = await env.run(["start", "--run-key", "k", file], { [CRASH_AT_VARIABLE]: "runner:abort-grace" });
    assert.equal(crashed.code, 137, crashed.stderr);
    const pid = Number(Deno.readTextFileSync(pidFile).trim());
    assert.ok(processAlive(pid), "the timed-out command outlived its driver");
    // The clock steps back an hour: the abort's deadline (5 s of grace) now lies an hour ahead.
    const offset = join(env.home, "clock-offset");
    Deno.writeTextFileSync(offset, "-3600");
    const resumed = env.spawn(["start", "--run-key", "k", file], { [OFFSET_VARIABLE]: offset });
    // Without the fix, attempt 2 waits for attempt 1's SIGKILL an hour away.
    const run = await env.waitFor("k", "the run ended", (run) => run.status !== "RUNNING");
    assert.equal(run.status, "SUCCEEDED", JSON.stringify(run));
    assert.equal(step(run, "a").attempt_no, 2);
    assert.equal((await resumed.output()).code, 0);
    assert.ok(!processAlive(pid), "attempt 1 was killed");
  },
);

/**
 * A flow of one step whose first start makes the job, waits for it to end and is SIGKILLed (as a call
 * killed with its driver's process group): its answer lost, the attempt has no job recorded when the
 * driver sees the clock's step of `offset` seconds, made by the fake before it makes the job
 * (`stepFirst`) or after. Unless the attempt's intent time is kept on its own job's side of the step,
 * that job reads as an earlier run's under the same key (made before the intent), and the key is
 * unlocked and started again: the command ran twice.
 */
async function assertOnceAcrossLostStart(env: FlowEnv, offset: number, stepFirst: boolean): Promise<void> {
  const offsetFile = join(env.home, "clock-offset");
  const once = join(env.home, "start-failed-once");
  const fake = join(env.home, "fake-orchesjob");
  const stepClock = `  echo ${offset} > '${offsetFile}'\n`;
  Deno.writeTextFileSync(
    fake,
    `#!/bin/sh
if [ "$1" = start ] && [ ! -e '${once}' ]; then
  : > '${once}'
${stepFirst ? stepClock : ""}  '${env.wrapper}' "$@" > /dev/null
  while '${env.wrapper}' status --run-key "$3" | grep -Eq '"status": "(STARTING|RUNNING)"'; do sleep 0.05; done
${stepFirst ? "" : stepClock}  kill -KILL $$
fi
exec '${env.wrapper}' "$@"
`,
  );
  Deno.chmodSync(fake, 0o755);
  const log = join(env.home, "ran");
  const file = env.flow("one.yaml", `flow_id: one\nsteps:\n  - {id: a, strict: false, command: ${logged(log, "a")}}\n`);
  const run = await env.run(["--orchesjob-bin", fake, "start", "-q", "--run-key", "k", file], {
    [OFFSET_VARIABLE]: offsetFile,
  });
  assert.match(
    run.stderr,
    /fake-orchesjob start was killed by signal SIGKILL/,
    `the start's answer was lost: ${run.stderr}${run.stdout}`,
  );
  assert.match(run.stderr, new RegExp(NOTICE), "the driver saw the step");
  assert.deepEqual(countLines(log), { a: 1 }, "the command ran once");
  assert.equal(run.code, 0, run.stderr + run.stdout);
  assert.equal(step(JSON.parse(run.stdout), "a").status, "SUCCEEDED");
  assert.equal((await env.jobs("k:a:1")).length, 1, "one job for the attempt");
}

// Forward, after the job was made: the intent must not move past its own job's start.
flowTest(
  ["builtin"],
  "a step of the clock forward while an attempt's job is unknown does not make it take its own job for an earlier run's",
  (env) => assertOnceAcrossLostStart(env, 3600, false),
);

// Back, before the job is made: its start is an hour before the intent's time, which must move back too.
flowTest(
  ["builtin"],
  "a step of the clock back while an attempt's job is unknown does not make it take its own job for an earlier run's",
  (env) => assertOnceAcrossLostStart(env, -3600, true),
);

flowTest(
  ["builtin"],
  "a step of the clock forward while an attempt's start keeps failing does not time out the job it then makes",
  async (env) => {
    // The first start fails (exit 1: a fault, the start is tried again). The second steps this test's
    // clock an hour forward, makes the job and fails too (its answer lost): the attempt has a fault and no
    // job when the driver sees the step. Its intent stays (its job unknown), and its fault moves. The
    // job it then finds started after the step: timeout_sec counts from that start, not from the intent
    // an hour before on the clock, and not from that start moved an hour further (past the clock).
    const offset = join(env.home, "clock-offset");
    const release = join(env.home, "release");
    const calls = join(env.home, "start-calls");
    const fake = join(env.home, "fake-orchesjob");
    Deno.writeTextFileSync(
      fake,
      `#!/bin/sh
if [ "$1" = start ] && [ ! -e '${calls}' ]; then
  : > '${calls}'
  exit 1
fi
if [ "$1" = start ] && [ ! -e '${calls}.2' ]; then
  : > '${calls}.2'
  echo 3600 > '${offset}'
  '${env.wrapper}' "$@" > /dev/null
  exit 1
fi
exec '${env.wrapper}' "$@"
`,
    );
    Deno.chmodSync(fake, 0o755);
    const file = env.flow(
      "slow.yaml",
      `flow_id: slow
steps:
  - {id: a, timeout_sec: 600, command: "while [ ! -e '${release}' ]; do sleep 0.05; done"}
`,
    );
    const child = env.spawn(["--orchesjob-bin", fake, "start", "--run-key", "r", file], {
      [OFFSET_VARIABLE]: offset,
    });
    const stderr = collectText(child.stderr);
    const stdout = collectText(child.stdout);
    // The job recorded (found by status after the lost answer), or, without the fix, timed out.
    await env.waitFor("r", "a's job recorded", (run) => step(run, "a").orchesjob_status !== null);
    assert.ok(Deno.statSync(`${calls}.2`).isFile, "the second start was made");
    await eventually("a round past the job's record", async () => {
      const run = await env.status("r");
      return step(run, "a").orchesjob_status?.status === "RUNNING" || step(run, "a").error !== null;
    });
    Deno.writeTextFileSync(release, "");
    const code = (await child.status).code;
    const run = JSON.parse(await stdout.done);
    const notice = JSON.parse((await stderr.done).split("\n").find((line) => line.includes(NOTICE))!);
    assert.deepEqual([Math.round(notice.step_sec), notice.running], [3600, ["a"]], "the step seen, a's fault moved");
    assert.match(await stderr.done, /"count":2/, "both starts failed");
    assert.equal(step(run, "a").status, "SUCCEEDED", step(run, "a").error);
    assert.equal(step(run, "a").attempt_no, 1);
    assert.equal(code, 0, await stderr.done);
  },
);

flowTest(
  ["builtin"],
  "a step of the clock forward while the driver asks a running job's status does not time it out",
  async (env) => {
    // The step comes inside a round, between the driver's look at the clocks at its start and its
    // decision: its status call (not a \`status\` of this test's, which has no clock offset) steps this
    // test's clock an hour forward before it answers. The decision
    // must not count that hour as time the step ran (timeout_sec 600: it would be aborted at once).
    const offset = join(env.home, "clock-offset");
    const release = join(env.home, "release");
    const trigger = join(env.home, "step-now");
    const fake = join(env.home, "fake-orchesjob");
    Deno.writeTextFileSync(
      fake,
      `#!/bin/sh
if [ "$1" = status ] && [ -n "$${OFFSET_VARIABLE}" ] && [ -e '${trigger}' ] && [ ! -e '${trigger}.done' ]; then
  : > '${trigger}.done'
  echo 3600 > '${offset}'
fi
exec '${env.wrapper}' "$@"
`,
    );
    Deno.chmodSync(fake, 0o755);
    const file = env.flow(
      "slow.yaml",
      `flow_id: slow
steps:
  - {id: a, timeout_sec: 600, command: "while [ ! -e '${release}' ]; do sleep 0.05; done"}
`,
    );
    const child = env.spawn(["--orchesjob-bin", fake, "start", "--run-key", "r", file], {
      [OFFSET_VARIABLE]: offset,
    });
    const stderr = collectText(child.stderr);
    const stdout = collectText(child.stdout);
    await env.waitFor("r", "a's job running", (run) => step(run, "a").orchesjob_status?.status === "RUNNING");
    Deno.writeTextFileSync(trigger, "");
    // The driver's next status call steps the clock. A round sees the step (its notice): the one that
    // asked, or (without the fix) the next one, after the asking one timed a out (the reason recorded
    // before the abort goes out, and before the next round). Until a ends, a timeout cannot be missed.
    await eventually("the step seen", () => stderr.text.includes(NOTICE));
    assert.ok(Deno.statSync(`${trigger}.done`).isFile, "a status call stepped the clock");
    assert.equal(step(await env.status("r"), "a").error, null, "not timed out");
    Deno.writeTextFileSync(release, "");
    const code = (await child.status).code;
    const run = JSON.parse(await stdout.done);
    assert.equal(step(run, "a").status, "SUCCEEDED", step(run, "a").error);
    assert.equal(step(run, "a").attempt_no, 1);
    assert.equal(code, 0, await stderr.done);
  },
);

flowTest(
  ["builtin"],
  "a step of the clock forward during a start that fails does not count as time orchesjob was unusable",
  async (env) => {
    // Two starts fail (exit 1, no job made: tried again, counted toward executor_unavailable_sec by the
    // span of the failed calls); the second steps this test's clock an hour forward before it exits. Its
    // fault's last time is taken on the new clock: the step must not move it a second time, or the span
    // is an hour and the attempt fails as "orchesjob unusable" (limit 600 s) at the next round. The
    // third start waits for the test, which reads the fault meanwhile.
    const offset = join(env.home, "clock-offset");
    const calls = join(env.home, "start-call");
    const go = join(env.home, "go");
    const fake = join(env.home, "fake-orchesjob");
    Deno.writeTextFileSync(
      fake,
      `#!/bin/sh
if [ "$1" = start ] && [ ! -e '${calls}.1' ]; then
  : > '${calls}.1'
  exit 1
fi
if [ "$1" = start ] && [ ! -e '${calls}.2' ]; then
  : > '${calls}.2'
  echo 3600 > '${offset}'
  exit 1
fi
if [ "$1" = start ] && [ ! -e '${calls}.3' ]; then
  : > '${calls}.3'
  while [ ! -e '${go}' ]; do sleep 0.05; done
fi
exec '${env.wrapper}' "$@"
`,
    );
    Deno.chmodSync(fake, 0o755);
    const file = env.flow(
      "start.yaml",
      "flow_id: start\nexecutor_unavailable_sec: 600\nsteps:\n  - {id: a, command: 'true'}\n",
    );
    const child = env.spawn(["--orchesjob-bin", fake, "start", "--run-key", "r", file], {
      [OFFSET_VARIABLE]: offset,
    });
    const stderr = collectText(child.stderr);
    const stdout = collectText(child.stdout);
    // The third start made (a waits in it), or, without the fix, the attempt failed as unusable.
    const during = await env.waitFor(
      "r",
      "the third start, or a failed",
      (run) => isFile(`${calls}.3`) || step(run, "a").status === "FAILED",
    );
    Deno.writeTextFileSync(go, "");
    assert.ok(isFile(`${calls}.2`), "the start that stepped the clock was made");
    const a = step(during, "a");
    assert.deepEqual([a.status, a.error, a.executor_error?.count], ["RUNNING", null, 2], JSON.stringify(a));
    const { first_failure_at: first, last_failure_at: last } = a.executor_error;
    assert.ok(last >= first && last - first < 600, `the failed calls' span is not the step: ${first} .. ${last}`);
    const code = (await child.status).code;
    const run = JSON.parse(await stdout.done);
    const notice = JSON.parse((await stderr.done).split("\n").find((line) => line.includes(NOTICE))!);
    assert.deepEqual([Math.round(notice.step_sec), notice.running], [3600, ["a"]], "the step seen, a's fault moved");
    assert.equal(step(run, "a").status, "SUCCEEDED", step(run, "a").error);
    assert.equal(step(run, "a").attempt_no, 1);
    assert.equal(code, 0, await stderr.done);
  },
);

function isFile(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}
