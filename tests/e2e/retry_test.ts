/** `retry` through the real CLI: what reruns, what does not, run keys, budgets, rounds, and refusals. */
import assert from "node:assert/strict";
import { join } from "node:path";
import { errorLine, eventually, hasOpen, processAlive } from "../helpers.ts";
import { type FlowEnv, flowTest, statuses, step } from "./flow_env.ts";
import { both, builtin, lines, logged, STUBBORN, undrivenRun } from "./operator_env.ts";
import { spawnStopped } from "./stop_point.ts";
import { waitForFile } from "./fault_helpers.ts";

flowTest(both, "retry of a run whose middle step failed reruns only that step and its downstream", async (env) => {
  const log = join(env.home, "ran");
  const fixed = join(env.home, "fixed");
  const file = env.flow(
    "chain.yaml",
    `flow_id: chain
steps:
  - {id: a, command: ${logged(log, "a")}}
  - {id: b, when: a, command: ${logged(log, "b", `[ -f '${fixed}' ] || { echo 'input not ready' >&2; exit 5; }`)}}
  - {id: c, when: b, command: ${logged(log, "c")}}
  - {id: d, when: a, command: ${logged(log, "d")}}
  - {id: on_fail, when: "!b", command: ${logged(log, "on_fail")}}
`,
  );
  const failed = await env.json(["start", "--run-key", "r", file], 1);
  assert.deepEqual(statuses(failed), {
    a: "SUCCEEDED",
    b: "FAILED",
    c: "SKIPPED",
    d: "SUCCEEDED",
    on_fail: "SUCCEEDED",
  });
  assert.deepEqual(failed.rounds, []);
  assert.deepEqual(lines(log).sort(), ["a", "b", "d", "on_fail"]);

  Deno.writeTextFileSync(fixed, "");
  const retried = await env.json(["retry", "--run-key", "r"], 0, { USER: "alice" });
  assert.equal(retried.status, "SUCCEEDED");
  assert.deepEqual(statuses(retried), {
    a: "SUCCEEDED",
    b: "SUCCEEDED",
    c: "SUCCEEDED",
    d: "SUCCEEDED",
    on_fail: "SUCCEEDED",
  });
  // Nothing that had SUCCEEDED ran again: a, d and on_fail ran once; b twice; c once, after the retry.
  const ran = lines(log);
  assert.deepEqual(ran.slice(4), ["b", "c"]);
  assert.deepEqual(ran.filter((id) => id === "a" || id === "d" || id === "on_fail").sort(), ["a", "d", "on_fail"]);
  assert.equal(step(retried, "b").run_key, "r:b:2");
  assert.equal(step(retried, "b").attempt_no, 2);
  assert.equal(step(retried, "c").run_key, "r:c:1", "c never started before, so its first attempt is :1");
  assert.equal(step(retried, "a").run_key, "r:a:1");
  assert.deepEqual((await env.jobs("r:b:1")).map((job) => job.status), ["FAILED"]);
  assert.deepEqual((await env.jobs("r:b:2")).map((job) => job.status), ["SUCCEEDED"]);
  assert.deepEqual(await env.jobs("r:a:2"), [], "no new attempt of a was started");
  assert.deepEqual(await env.jobs("r:d:2"), []);
  assert.equal(retried.rounds.length, 1);
  assert.deepEqual({ ...retried.rounds[0], at: 0 }, { round: 2, at: 0, steps: ["b", "c"], user: "alice" });
  assert.ok(retried.rounds[0].at >= failed.finished_at);
  // status also says who drives the run: nobody, now that the retry has finished.
  assert.deepEqual(await env.status("r"), { ...retried, driver: null });
  const table = await env.run(["status", "--run-key", "r", "--format", "table"]);
  assert.match(table.stdout, /\nRetried: 1 time, last \d{4}-\d\d-\d\d \d\d:\d\d:\d\d by alice: b, c\n/);
});

flowTest(builtin, "retry: attempt numbers go on and each step's retries apply afresh", async (env) => {
  const counter = join(env.home, "count");
  const file = env.flow(
    "flaky.yaml",
    `flow_id: flaky
steps:
  - id: flaky
    retries: 1
    command: ${JSON.stringify(`echo x >> '${counter}'; [ $(wc -l < '${counter}') -ge 4 ]`)}
`,
  );
  const failed = await env.json(["start", "--run-key", "k", file], 1);
  assert.equal(step(failed, "flaky").attempt_no, 2, "both attempts of the first round were used");
  const retried = await env.json(["retry", "--run-key", "k"]);
  assert.equal(retried.status, "SUCCEEDED");
  const flaky = step(retried, "flaky");
  assert.equal(flaky.attempt_no, 4, "the new round had its own retry: :3 failed, :4 succeeded");
  assert.equal(flaky.run_key, "k:flaky:4");
  for (const [n, status] of [[1, "FAILED"], [2, "FAILED"], [3, "FAILED"], [4, "SUCCEEDED"]] as const) {
    assert.deepEqual((await env.jobs(`k:flaky:${n}`)).map((job) => job.status), [status], `k:flaky:${n}`);
  }
  const table = await env.run(["status", "--run-key", "k", "--format", "table"]);
  assert.match(table.stdout, /\nflaky +OK SUCCEEDED +4\/4 /);
});

flowTest(
  builtin,
  "retry --step reruns one step of a SUCCEEDED run; --downstream also what waits on it",
  async (env) => {
    const log = join(env.home, "ran");
    const file = env.flow(
      "ab.yaml",
      `flow_id: ab
steps:
  - {id: a, command: ${logged(log, "a")}}
  - {id: b, when: a, command: ${logged(log, "b")}}
  - {id: other, command: ${logged(log, "other")}}
`,
    );
    await env.json(["start", "--run-key", "s", file]);
    const refused = await env.run(["retry", "--run-key", "s"]);
    assert.equal(refused.code, 2);
    assert.equal(errorLine(refused).error, "retry: run s SUCCEEDED: name the step to run again with --step");

    const one = await env.json(["retry", "--run-key", "s", "--step", "a"]);
    assert.equal(one.status, "SUCCEEDED");
    assert.equal(step(one, "a").run_key, "s:a:2");
    assert.equal(step(one, "b").run_key, "s:b:1");
    const down = await env.json(["retry", "--run-key", "s", "--step", "a", "--downstream"]);
    assert.equal(step(down, "a").run_key, "s:a:3");
    assert.equal(step(down, "b").run_key, "s:b:2");
    assert.equal(step(down, "other").run_key, "s:other:1");
    assert.deepEqual(lines(log).filter((id) => id !== "other"), ["a", "b", "a", "a", "b"]);
    assert.equal(lines(log).filter((id) => id === "a").length, 3);
    assert.equal(lines(log).filter((id) => id === "b").length, 2);
    assert.equal(lines(log).filter((id) => id === "other").length, 1);
    assert.deepEqual(down.rounds.map((r: { steps: string[] }) => r.steps), [["a"], ["a", "b"]]);
    assert.deepEqual(down.rounds.map((r: { round: number }) => r.round), [2, 3]);
  },
);

flowTest(builtin, "retry -d of a CANCELLED run reopens the cancelled steps in the background", async (env) => {
  const go = join(env.home, "go");
  const file = env.flow(
    "gate.yaml",
    `flow_id: gate
steps:
  - {id: first, command: ["true"]}
  - {id: hold, when: first, command: ${JSON.stringify(`while [ ! -f '${go}' ]; do sleep 0.05; done`)}}
  - {id: after, when: hold, command: ["true"]}
`,
  );
  await env.json(["start", "--run-key", "c", "-d", file]);
  await env.waitFor("c", "hold running", (run) => step(run, "hold").status === "RUNNING");
  const cancelled = await env.json(["cancel", "--run-key", "c", "--grace-seconds", "1"]);
  assert.deepEqual(statuses(cancelled), { first: "SUCCEEDED", hold: "CANCELLED", after: "CANCELLED" });
  await env.waitFor("c", "the driver let go", (run) => run.status === "CANCELLED");
  Deno.writeTextFileSync(go, "");
  let detached;
  for (let tries = 0;; tries++) {
    // The cancelled run's detached driver may still be on its way out, holding the lock.
    const result = await env.run(["retry", "--run-key", "c", "-d"]);
    if (result.code === 0) {
      detached = JSON.parse(result.stdout);
      break;
    }
    assert.match(errorLine(result).error, /is held by another process/);
    assert.ok(tries < 100, "the old driver never let go");
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  assert.equal(detached.detached, true);
  assert.equal(typeof detached.pid, "number");
  const done = await env.waitFor("c", "the run ends", (run) => run.status !== "PENDING" && run.status !== "RUNNING");
  assert.equal(done.status, "SUCCEEDED");
  assert.equal(step(done, "hold").run_key, "c:hold:2");
  assert.equal(step(done, "first").run_key, "c:first:1");
  assert.deepEqual(done.rounds.map((r: { steps: string[] }) => r.steps), [["hold", "after"]]);
});

flowTest(
  builtin,
  "retry --step of a CANCELLED run: a step the cancel left CANCELLED keeps the run from SUCCEEDED",
  async (env) => {
    const log = join(env.home, "ran");
    const file = env.flow(
      "pair.yaml",
      `flow_id: pair\nsteps:\n  - {id: a, command: ${logged(log, "a")}}\n  - {id: b, command: ${logged(log, "b")}}\n`,
    );
    await undrivenRun(env, "k", file);
    const cancelled = await env.json(["cancel", "--run-key", "k"]);
    assert.deepEqual([cancelled.status, statuses(cancelled)], ["CANCELLED", { a: "CANCELLED", b: "CANCELLED" }]);
    // Only b: a stays CANCELLED, its command never ran, so the run did not succeed.
    const partial = await env.json(["retry", "--run-key", "k", "--step", "b", "-q"], 1);
    assert.deepEqual([partial.status, statuses(partial)], ["FAILED", { a: "CANCELLED", b: "SUCCEEDED" }]);
    assert.deepEqual(lines(log), ["b"]);
    assert.equal((await env.run(["status", "--run-key", "k"])).code, 0);
    // FAILED with no FAILED step: the counts say what it is instead of "0 failed" alone.
    const [listed] = await env.json(["list"]);
    assert.deepEqual(listed.step_counts, { total: 2, done: 2, running: 0, failed: 0, cancelled: 1 });
    const table = await env.run(["status", "--run-key", "k", "--format", "table"]);
    assert.match(table.stdout, /\nStatus: X FAILED {2}Steps: 2\/2 done, 0 running, 0 failed, 1 cancelled\n/);
    const listTable = await env.run(["list", "--format", "table"]);
    assert.match(listTable.stdout, / +Done +Failed +Cancelled +Driver\n/);
    assert.match(listTable.stdout, /\nk +pair +FAILED .* 2\/2 +0 +1 +-\n/);
    // The default retry picks up the step left CANCELLED; then the run has succeeded.
    const whole = await env.json(["retry", "--run-key", "k", "-q"]);
    assert.deepEqual([whole.status, statuses(whole)], ["SUCCEEDED", { a: "SUCCEEDED", b: "SUCCEEDED" }]);
    assert.deepEqual(lines(log), ["b", "a"]);
  },
);

flowTest(
  builtin,
  "retry while a cancel is still in its grace says the cancel is under way, not 'cancel first'",
  async (env) => {
    const file = env.flow("stubborn.yaml", STUBBORN);
    await env.json(["start", "--run-key", "g", "-d", file]);
    await env.waitFor("g", "a running", (run) => step(run, "a").status === "RUNNING");
    // The cancel stops in its abort's grace: the run is CANCELLED, step a still RUNNING, the cancel lock held.
    const cancel = await spawnStopped(env, ["cancel", "--run-key", "g", "--grace-seconds", "1"], "runner:abort-grace");
    const during = await env.status("g");
    assert.deepEqual([during.status, step(during, "a").status], ["CANCELLED", "RUNNING"]);
    const refused = await env.run(["retry", "--run-key", "g"]);
    assert.equal(refused.code, 2, refused.stderr);
    assert.equal(
      errorLine(refused).error,
      "retry: run g: step a is still RUNNING (its job may be alive); its cancel is still aborting it " +
        "(SIGKILL at the end of the grace); retry once the cancel has ended",
    );
    assert.equal((await cancel.finish()).code, 0);
    assert.equal(step(await env.status("g"), "a").status, "CANCELLED");
  },
);

flowTest(builtin, "retry refuses what it cannot do, with one JSON line and no change", async (env) => {
  const failing = env.flow("bad.yaml", 'flow_id: bad\nsteps:\n  - {id: load, command: ["false"]}\n');
  await env.json(["start", "--run-key", "f", failing], 1);
  const before = await env.status("f");
  const sleeping = env.flow("slow.yaml", 'flow_id: slow\nsteps:\n  - {id: nap, command: ["sleep", "60"]}\n');
  await env.json(["start", "--run-key", "live", "-d", sleeping]);
  try {
    await env.waitFor("live", "running", (run) => run.status === "RUNNING");
    const cases: [string[], number, RegExp][] = [
      [["retry"], 2, /^retry: --run-key is required$/],
      [["retry", "--run-key", "nope"], 3, /^retry: run not found: nope/],
      [["retry", "--run-key", "f", "--downstream"], 2, /^retry: --downstream needs --step$/],
      [["retry", "--run-key", "f", "--step", "lod"], 2, /^retry: run f has no step "lod"; did you mean "load"\?$/],
      [["retry", "--run-key", "live"], 2, /^retry: run live is RUNNING: only a run that has ended can be retried$/],
    ];
    for (const [args, code, pattern] of cases) {
      const result = await env.run(args);
      assert.equal(result.code, code, `${args.join(" ")}: ${result.stderr}`);
      assert.match(errorLine(result).error, pattern, args.join(" "));
    }
    {
      using _held = await env.holdDriverLock("f");
      const held = await env.run(["retry", "--run-key", "f"]);
      assert.equal(held.code, 2);
      assert.match(errorLine(held).error, /^retry: run f is held by another process/);
    }
    assert.deepEqual(await env.status("f"), before, "refusals changed nothing");
  } finally {
    await env.run(["cancel", "--run-key", "live", "--grace-seconds", "1"]);
  }
});

flowTest(
  builtin,
  "a retry killed right after it reopened the run leaves it resumable, and nothing runs twice",
  async (env) => {
    const log = join(env.home, "ran");
    const fixed = join(env.home, "fixed");
    const file = env.flow(
      "chain.yaml",
      `flow_id: chain
steps:
  - {id: a, command: ${logged(log, "a")}}
  - {id: b, when: a, command: ${logged(log, "b", `[ -f '${fixed}' ]`)}}
  - {id: c, when: b, command: ${logged(log, "c")}}
`,
    );
    await env.json(["start", "--run-key", "k", file], 1);
    Deno.writeTextFileSync(fixed, "");
    const killed = await env.run(["retry", "--run-key", "k"], { ORCHESJOB_FLOW_CRASH_AT: "retry:reopened" });
    assert.equal(killed.code, 137, `killed by SIGKILL at the crash point: ${killed.stderr}`);
    const reopened = await env.status("k");
    assert.equal(reopened.status, "PENDING", "the reopening was committed before the crash");
    assert.deepEqual(statuses(reopened), { a: "SUCCEEDED", b: "PENDING", c: "PENDING" });
    assert.deepEqual(reopened.rounds.map((r: { steps: string[] }) => r.steps), [["b", "c"]]);
    assert.deepEqual(await env.jobs("k:b:2"), [], "no job was started before the crash");

    const again = await env.run(["retry", "--run-key", "k"]);
    assert.equal(again.code, 2);
    assert.match(
      errorLine(again).error,
      /is PENDING: .*nobody drives it: carry it on with '.*wait --run-key k --advance'$/,
    );
    const carried = await env.run(["wait", "--run-key", "k", "--advance", "--timeout", "120"]);
    assert.equal(carried.code, 0, carried.stderr);
    const done = await env.status("k");
    assert.equal(step(done, "b").run_key, "k:b:2");
    assert.deepEqual(lines(log), ["a", "b", "b", "c"], "a once, b once per round, c once");
  },
);

flowTest(
  builtin,
  "retry of a run cancelled while SCHEDULED keeps its time, and waits for a holder of the ended run to let go",
  async (env) => {
    const go = join(env.home, "go");
    const file = env.flow(
      "later.yaml",
      `flow_id: later\nsteps:\n  - id: s\n    command: ${JSON.stringify(waitForFile(go))}\n`,
    );
    // Its time an hour ahead: the retry makes it SCHEDULED again for that time, and nothing starts.
    // The driver lock is held (as by the cancelled run's driver on its way out) until the retry has
    // read the run and is still there: it waits for the lock instead of refusing.
    const far = await env.json(["start", "--run-key", "far", "-d", "--not-before", "+1h", file]);
    assert.equal((await env.json(["cancel", "--run-key", "far"])).status, "CANCELLED");
    await eventually("the cancelled run's driver exits", () => !processAlive(far.pid), 30);
    const retry = await (async () => {
      using _held = await env.holdDriverLock("far");
      const child = env.spawn(["retry", "--run-key", "far", "-d"]);
      await eventually(
        "the retry has read the run",
        () => hasOpen(child.pid, join(env.home, "orchesjob-flow.sqlite3")),
      );
      await new Promise((resolve) => setTimeout(resolve, 300));
      assert.ok(processAlive(child.pid), "the retry waits while the lock is held");
      return child;
    })();
    const { code, stdout, stderr } = await retry.output();
    assert.equal(code, 0, new TextDecoder().decode(stderr));
    const reopened = JSON.parse(new TextDecoder().decode(stdout));
    assert.equal(reopened.status, "SCHEDULED");
    assert.equal(reopened.detached, true);
    assert.equal(reopened.not_before, far.not_before, "the retry did not move the time");
    assert.deepEqual(statuses(reopened), { s: "PENDING" });
    assert.equal((await env.json(["cancel", "--run-key", "far"])).status, "CANCELLED");
    assert.deepEqual(await env.jobs("far:s:1"), [], "nothing started before the time");

    // Its time passed while it was cancelled: the retry begins it at once.
    // Its driver is stopped at once, so that even a slow machine cancels the run before its time.
    const near = await env.json(["start", "--run-key", "near", "-d", "--not-before", "+10s", file]);
    Deno.kill(near.pid, "SIGSTOP");
    assert.equal((await env.json(["cancel", "--run-key", "near"])).status, "CANCELLED");
    Deno.kill(near.pid, "SIGCONT");
    assert.deepEqual(await env.jobs("near:s:1"), [], "cancelled while SCHEDULED: nothing had started");
    await eventually("the cancelled run's driver exits", () => !processAlive(near.pid), 30);
    await eventually("its time has passed", () => Date.now() / 1000 > near.not_before + 0.1, 30);
    Deno.writeTextFileSync(go, "");
    const retried = await env.json(["retry", "-q", "--run-key", "near"]);
    assert.equal(retried.status, "SUCCEEDED");
    assert.equal(retried.not_before, near.not_before, "the retry did not move the time");
    assert.equal(step(retried, "s").attempt_no, 1);
    assert.ok(step(retried, "s").started_at >= near.not_before);
  },
);

flowTest(
  builtin,
  "retry of a run whose orchesjob is gone refuses before reopening; retry --orchesjob-bin replaces it",
  async (env) => {
    const gone = join(env.home, "old-orchesjob");
    Deno.copyFileSync(env.wrapper, gone);
    Deno.chmodSync(gone, 0o755);
    const fixed = join(env.home, "fixed");
    const file = env.flow("f.yaml", `flow_id: f\nsteps:\n  - {id: a, command: ["test", "-e", "${fixed}"]}\n`);
    await env.json(["--orchesjob-bin", gone, "start", "-q", "--run-key", "r", file], 1);
    const before = await env.status("r");
    Deno.removeSync(gone);
    Deno.writeTextFileSync(fixed, "");
    const refused = await env.run(["retry", "-q", "--run-key", "r"]);
    assert.equal(refused.code, 2, refused.stderr);
    assert.equal(
      errorLine(refused).error,
      `retry: run r's orchesjob ${gone} cannot be run (no such file): ` +
        "give another with 'orchesjob-flow --orchesjob-bin PATH retry --run-key r'",
    );
    assert.deepEqual(await env.status("r"), before, "no attempt was spent on the missing binary");

    const retried = await env.json(["--orchesjob-bin", env.wrapper, "retry", "-q", "--run-key", "r"]);
    assert.equal(retried.status, "SUCCEEDED");
    assert.equal(step(retried, "a").run_key, "r:a:2");
    assert.equal(retried.executor.bin, env.wrapper);
    assert.deepEqual(retried.executor.replaced.map((r: { bin: string }) => r.bin), [gone]);
  },
);

/**
 * Run r FAILED, and its driver's stderr log unopenable (a directory in its place): the shell of a
 * background driver launched for it exits at once.
 */
async function failedRunWithUnopenableLog(env: FlowEnv): Promise<void> {
  const file = env.flow("bad.yaml", 'flow_id: bad\nsteps:\n  - {id: load, command: ["false"]}\n');
  await env.json(["start", "--run-key", "r", file], 1);
  Deno.mkdirSync(join(env.home, "logs", "orchesjob-flow-r.stderr.log"), { recursive: true });
}

flowTest(
  builtin,
  "retry -d reports detached: false with the driver's exit when its background driver fails",
  async (env) => {
    await failedRunWithUnopenableLog(env);
    const result = await env.run(["retry", "-d", "--run-key", "r"]);
    assert.notEqual(result.code, 0, result.stdout);
    const report = JSON.parse(result.stdout);
    assert.equal(report.detached, false);
    assert.equal(typeof report.exit_code, "number");
    assert.equal(report.status, "PENDING", "reopened, and nobody drives it");
    assert.equal((await env.status("r")).driver, null);
  },
);

flowTest(
  builtin,
  "retry -d under POSIXLY_CORRECT reports a background driver that could not open its log as failed, not driving",
  async (env) => {
    await failedRunWithUnopenableLog(env);
    // POSIXLY_CORRECT puts bash, the driver's wrapper, in POSIX mode, where a failed redirection of
    // `exec` ends the shell at once with 1: the code of a driver whose run FAILED.
    const result = await env.run(["retry", "-d", "--run-key", "r"], { POSIXLY_CORRECT: "1" });
    const report = JSON.parse(result.stdout);
    assert.equal(report.detached, false, result.stdout);
    assert.notEqual(result.code, 0, result.stdout);
    assert.notEqual(report.exit_code, 1, "the wrapper's own failure, not a driver's FAILED run");
    assert.equal(report.status, "PENDING", "reopened, and nobody drives it");
    assert.equal((await env.status("r")).driver, null);
  },
);
