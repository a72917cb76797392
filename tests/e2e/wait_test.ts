/** `wait` through the real CLI: exit codes 0/1/4/124, no tables, and --advance for an undriven run. */
import assert from "node:assert/strict";
import { join } from "node:path";
import { catchesSignal, errorLine, eventually, hasOpen, processAlive } from "../helpers.ts";
import { type FlowEnv, flowTest, step } from "./flow_env.ts";
import { runCrashingAt, waitForFile } from "./fault_helpers.ts";
import { spawnStopped } from "./stop_point.ts";
import { both, builtin, FAILING, STUBBORN, TWO_STEPS, undrivenRun } from "./operator_env.ts";

/** A flow whose first step runs until the file `go` exists, then a second step. */
function gatedFlow(env: FlowEnv): { go: string; gated: string } {
  const go = join(env.home, "go");
  const gated = env.flow(
    "gated.yaml",
    `flow_id: gated
steps:
  - {id: hold, command: ${JSON.stringify(waitForFile(go))}}
  - {id: after, when: hold, command: ["true"]}
`,
  );
  return { go, gated };
}

flowTest(builtin, "wait blocks until the run ends and exits with its code; one JSON line, no table", async (env) => {
  const { go, gated } = gatedFlow(env);
  await env.json(["start", "--run-key", "g", "-d", gated]);
  await env.waitFor("g", "hold running", (run) => step(run, "hold").status === "RUNNING");
  const waiter = env.spawn(["wait", "--run-key", "g", "--interval", "0.1"]);
  let exited = false;
  const output = waiter.output().finally(() => (exited = true));
  // The run cannot end before `go` exists: a waiter that has read the run (it has the state file
  // open) and has exited by now exited too early.
  const db = Deno.realPathSync(join(env.home, "orchesjob-flow.sqlite3"));
  await eventually("wait has opened the state file", () => exited || hasOpen(waiter.pid, db));
  await env.waitFor("g", "still held", (run) => step(run, "hold").status === "RUNNING");
  assert.equal(exited, false, "wait returned while the run was still RUNNING");
  Deno.writeTextFileSync(go, "");
  const result = await output;
  const stdout = new TextDecoder().decode(result.stdout);
  assert.equal(result.code, 0, new TextDecoder().decode(result.stderr));
  assert.deepEqual(JSON.parse(stdout), { run_key: "g", status: "SUCCEEDED", exit_code: 0, timed_out: false });
  assert.equal(stdout.split("\n").length, 2, "exactly one line");
  assert.equal(result.stderr.length, 0);

  await env.json(["start", "--run-key", "f", env.flow("bad.yaml", FAILING)], 1);
  const failed = await env.run(["wait", "--run-key", "f"]);
  assert.equal(failed.code, 1);
  assert.equal(JSON.parse(failed.stdout).status, "FAILED");

  const pending = await undrivenRun(env, "c", env.flow("two.yaml", TWO_STEPS));
  assert.equal(pending.status, "PENDING");
  await env.json(["cancel", "--run-key", "c"]);
  const cancelled = await env.run(["wait", "--run-key", "c", "--timeout", "5"]);
  assert.equal(cancelled.code, 4);
  assert.deepEqual(JSON.parse(cancelled.stdout), { run_key: "c", status: "CANCELLED", exit_code: 4, timed_out: false });
});

flowTest(both, "wait --timeout gives 124 on an undriven run and leaves it alone; --advance drives it", async (env) => {
  const file = env.flow("two.yaml", TWO_STEPS);
  await undrivenRun(env, "u", file);
  const timedOut = await env.run(["wait", "--run-key", "u", "--timeout", "0.5", "--interval", "0.1"]);
  assert.equal(timedOut.code, 124, timedOut.stderr);
  assert.deepEqual(JSON.parse(timedOut.stdout), { run_key: "u", status: "PENDING", exit_code: 124, timed_out: true });
  const untouched = await env.status("u");
  assert.equal(untouched.status, "PENDING", "without --advance, wait does not drive the run");
  assert.deepEqual(untouched.steps.map((s: { attempt_no: number }) => s.attempt_no), [0, 0]);

  const advanced = await env.run(["wait", "--run-key", "u", "--advance", "--timeout", "120"]);
  assert.equal(advanced.code, 0, advanced.stderr);
  assert.equal(JSON.parse(advanced.stdout).status, "SUCCEEDED");
  const run = await env.status("u");
  assert.equal(run.status, "SUCCEEDED");
  assert.equal(step(run, "b").run_key, "u:b:1");
});

flowTest(builtin, "wait --advance leaves a run that another process drives to that process", async (env) => {
  const file = env.flow("two.yaml", TWO_STEPS);
  await undrivenRun(env, "h", file);
  {
    using _held = await env.holdDriverLock("h");
    const result = await env.run(["wait", "--run-key", "h", "--advance", "--timeout", "0.5", "--interval", "0.1"]);
    assert.equal(result.code, 124);
    assert.equal((await env.status("h")).status, "PENDING", "the lock holder drives it, not wait");
  }
});

flowTest(builtin, "wait: bad input is exit 2, an unknown run exit 3, each one JSON line", async (env) => {
  const cases: [string[], number, RegExp][] = [
    [["wait"], 2, /^wait: --run-key is required$/],
    [["wait", "--run-key", "x", "--timeout", "0"], 2, /^wait: option --timeout must be at least 0.01, got "0"/],
    [["wait", "--run-key", "x", "--timeout", "soon"], 2, /^wait: option --timeout needs a number/],
    [["wait", "--run-key", "x", "--advanced"], 2, /^wait: unknown option --advanced; did you mean --advance\?$/],
    [["wait", "--run-key", "nope"], 3, /^wait: run not found: nope/],
  ];
  for (const [args, code, pattern] of cases) {
    const result = await env.run(args);
    assert.equal(result.code, code, `${args.join(" ")}: ${result.stderr}`);
    assert.match(errorLine(result).error, pattern);
  }
});

flowTest(
  builtin,
  "a run deleted while wait follows it: exit 3 saying it went meanwhile, not an unknown key",
  async (env) => {
    const file = env.flow("slow.yaml", `flow_id: slow\nsteps:\n  - {id: a, command: "sleep 60"}\n`);
    assert.equal((await env.json(["start", "--run-key", "w", "-d", file])).detached, true);
    await env.waitFor("w", "a runs", (run) => step(run, "a").status === "RUNNING");
    const waiter = env.spawn(["wait", "--run-key", "w", "--interval", "8"]);
    // The waiter has read the run (its first look) before the run ends and is cleaned away.
    await eventually(
      "the waiter has the state file open",
      () => hasOpen(waiter.pid, join(env.home, "orchesjob-flow.sqlite3")),
    );
    await new Promise((resolve) => setTimeout(resolve, 500));
    await env.json(["cancel", "--run-key", "w", "--grace-seconds", "0"]);
    const cleaned = await env.json(["clean", "--older-than", "0"]);
    assert.deepEqual(cleaned.runs.map((run: { run_key: string }) => run.run_key), ["w"]);
    const output = await waiter.output();
    const result = { code: output.code, stdout: "", stderr: new TextDecoder().decode(output.stderr) };
    assert.equal(result.code, 3, result.stderr);
    assert.match(errorLine(result).error, /^wait: run w was deleted while this command followed it/);
  },
);

flowTest(builtin, "SIGQUIT (Ctrl-\\) stops wait and watch with exit 130; the run and its driver go on", async (env) => {
  const { go, gated } = gatedFlow(env);
  await env.json(["start", "--run-key", "q", "-d", gated]);
  await env.waitFor("q", "hold running", (run) => step(run, "hold").orchesjob_status?.status === "RUNNING");
  const db = Deno.realPathSync(join(env.home, "orchesjob-flow.sqlite3"));
  for (const args of [["wait", "--interval", "0.1"], ["watch", "--interval", "0.1", "--mode", "append"]]) {
    const child = env.spawn([...args, "--run-key", "q"]);
    // It has read the run and listens for SIGQUIT (which would otherwise kill it) before the signal is sent.
    await eventually(`${args[0]} has read the run`, () => hasOpen(child.pid, db));
    await eventually(`${args[0]} catches SIGQUIT`, () => catchesSignal(child.pid, 3));
    child.kill("SIGQUIT");
    const output = await child.output();
    const stderr = new TextDecoder().decode(output.stderr);
    assert.deepEqual([output.signal, output.code], [null, 130], `${args[0]}: ${stderr}`);
    for (const line of stderr.split("\n").filter(Boolean)) JSON.parse(line); // JSON lines only, no stack trace
  }
  const during = await env.status("q");
  assert.equal(step(during, "hold").status, "RUNNING", "the run was left as it was");
  assert.notEqual(during.driver, null, "its driver still drives it");
  Deno.writeTextFileSync(go, "");
  const done = await env.waitFor("q", "the run ends", (run) => run.status !== "RUNNING");
  assert.equal(done.status, "SUCCEEDED");
});

/** A run whose one step ignores SIGTERM (only the SIGKILL at the end of an abort's grace ends it). */
async function stubbornRun(
  env: FlowEnv,
  runKey: string,
): Promise<{ pid: number; starter: Deno.ChildProcess; file: string }> {
  const file = env.flow("stubborn.yaml", STUBBORN);
  // Driven in the foreground: that `start` prints the run's final state when the cancel ends its drive.
  const starter = env.spawn(["start", "--run-key", runKey, file]);
  const run = await env.waitFor(runKey, "a runs", (run) => step(run, "a").orchesjob_status?.target_pid > 0);
  return { pid: step(run, "a").orchesjob_status.target_pid, starter, file };
}

/**
 * Starts `cancel --grace-seconds grace` of `runKey` and returns it once its CANCELLED is committed,
 * with the step's command `pid` seen alive then: the situation these tests are about, a run that
 * reads CANCELLED while its command lives through the grace.
 */
async function cancelInGrace(env: FlowEnv, runKey: string, pid: number, grace: number): Promise<Deno.ChildProcess> {
  const cancel = env.spawn(["cancel", "--run-key", runKey, "--grace-seconds", String(grace)]);
  await env.waitFor(runKey, "the cancel is committed", (run) => run.status === "CANCELLED");
  assert.ok(processAlive(pid), "the command ignores SIGTERM: it lives through the grace");
  return cancel;
}

/** Runs `child` to its end, noting whether `pid` was still alive the moment it exited. */
async function exitSeenWith(child: Deno.ChildProcess, pid: number) {
  const output = await child.output();
  return { output, aliveAtExit: processAlive(pid), stdout: new TextDecoder().decode(output.stdout) };
}

flowTest(
  builtin,
  "a run being cancelled ends for wait, watch and its foreground start only once the cancel has ended its steps",
  async (env) => {
    const { pid, starter } = await stubbornRun(env, "c");
    const waiter = env.spawn(["wait", "--run-key", "c", "--interval", "0.1"]);
    const watcher = env.spawn(["watch", "--run-key", "c", "--no-advance", "--mode", "append", "--interval", "0.1"]);
    const db = Deno.realPathSync(join(env.home, "orchesjob-flow.sqlite3"));
    await eventually("wait and watch have read the run", () => hasOpen(waiter.pid, db) && hasOpen(watcher.pid, db));
    const [waited, watched, started] = [waiter, watcher, starter].map((child) => exitSeenWith(child, pid));
    // A grace long enough that the command is still alive when the commit is seen, on a loaded machine.
    const cancel = await cancelInGrace(env, "c", pid, 8);
    assert.equal((await cancel.output()).code, 0);

    const wait = await waited;
    assert.equal(wait.aliveAtExit, false, "wait returned while the cancelled command still ran");
    assert.equal(wait.output.code, 4);
    assert.deepEqual(JSON.parse(wait.stdout), { run_key: "c", status: "CANCELLED", exit_code: 4, timed_out: false });
    const watch = await watched;
    assert.equal(watch.aliveAtExit, false, "watch returned while the cancelled command still ran");
    assert.equal(watch.output.code, 4);
    assert.match(watch.stdout.trimEnd().split("\nFlow: ").at(-1)!, /\ba +\S+ CANCELLED/, "its last table");
    const start = await started;
    assert.equal(start.aliveAtExit, false, "the foreground start returned while the cancelled command still ran");
    assert.equal(start.output.code, 4);
    const final = JSON.parse(start.stdout);
    assert.deepEqual([final.status, step(final, "a").status], ["CANCELLED", "CANCELLED"]);
  },
);

flowTest(builtin, "a cancel that died half done does not keep wait waiting; cancelling again ends it", async (env) => {
  const { pid, starter } = await stubbornRun(env, "d");
  const { log } = await runCrashingAt(env, "cancel:after-commit", ["cancel", "--run-key", "d", "--grace-seconds", "1"]);
  assert.equal(log.length, 1, "the cancel died right after its commit");
  const between = await env.status("d");
  assert.deepEqual([between.status, step(between, "a").status], ["CANCELLED", "RUNNING"]);
  assert.ok(processAlive(pid), "nothing aborted the command");
  // No cancel is under way any more: wait reports the run as it reads, rather than wait for nobody.
  const waited = await env.run(["wait", "--run-key", "d", "--interval", "0.1", "--timeout", "30"]);
  assert.equal(waited.code, 4, waited.stderr);
  assert.equal(JSON.parse(waited.stdout).status, "CANCELLED");
  assert.equal((await starter.output()).code, 4);
  const again = await env.json(["cancel", "--run-key", "d", "--grace-seconds", "1"]);
  assert.equal(step(again, "a").status, "CANCELLED");
  assert.ok(!processAlive(pid), "the second cancel ended the command");
});

flowTest(
  builtin,
  "a second cancel does not wait behind a first one in its grace: it ends the step at once",
  async (env) => {
    const { pid, starter } = await stubbornRun(env, "e");
    const first = await cancelInGrace(env, "e", pid, 60);
    const firstOutput = first.output();
    const began = performance.now();
    const second = await env.run(["cancel", "--run-key", "e", "--grace-seconds", "0"]);
    assert.equal(second.code, 0, second.stderr);
    // Queued behind the first, it would return only after that one's 60 s grace. (Not "before the first
    // returned": the first sees the group gone once the second's SIGKILL lands, and may exit first.)
    assert.ok(performance.now() - began < 45_000, "the second cancel waited out the first one's grace");
    assert.ok(!processAlive(pid), "the second cancel's SIGKILL ended the command");
    assert.equal((await firstOutput).code, 0);
    assert.equal((await starter.output()).code, 4);
    assert.equal(step(await env.status("e"), "a").status, "CANCELLED");
  },
);

flowTest(
  builtin,
  "while a cancel is under way, wait --timeout times out and a new foreground start waits",
  async (env) => {
    const { pid, starter, file } = await stubbornRun(env, "f");
    // A grace no load on the machine outlasts (a short one ran out before a slow `wait --timeout 1`
    // did): a second cancel cuts it short once wait has timed out and the new start is waiting.
    const cancel = await cancelInGrace(env, "f", pid, 600);
    const restart = env.spawn(["start", "--run-key", "f", file]);
    let exited = false;
    const restarted = exitSeenWith(restart, pid).finally(() => (exited = true));
    const waited = await env.run(["wait", "--run-key", "f", "--interval", "0.1", "--timeout", "1"]);
    assert.ok(processAlive(pid), "wait's timeout came first");
    assert.equal(waited.code, 124, waited.stderr);
    assert.deepEqual(JSON.parse(waited.stdout), { run_key: "f", status: "CANCELLED", exit_code: 124, timed_out: true });
    const db = Deno.realPathSync(join(env.home, "orchesjob-flow.sqlite3"));
    await eventually("the new start has read the run", () => exited || hasOpen(restart.pid, db));
    assert.equal((await env.run(["cancel", "--run-key", "f", "--grace-seconds", "0"])).code, 0);
    const start = await restarted;
    assert.equal(start.aliveAtExit, false, "the start issued after the commit returned while the command still ran");
    assert.equal(start.output.code, 4);
    assert.equal(step(JSON.parse(start.stdout), "a").status, "CANCELLED");
    assert.equal((await cancel.output()).code, 0);
    assert.equal((await starter.output()).code, 4);
  },
);

flowTest(
  builtin,
  "a cancel that ends between a reader's read of the run and its look at the cancel lock: the reader reads it again",
  async (env) => {
    const { pid, starter, file } = await stubbornRun(env, "s");
    const first = await cancelInGrace(env, "s", pid, 600);
    // The stop point is passed only by a reader that read the run CANCELLED with a step RUNNING, before
    // it looks whether a cancel holds the run's cancel lock: here, the cancel in its grace.
    const reader = await spawnStopped(env, ["start", "--run-key", "s", file], "follow:cancel-probe");
    // Meanwhile the cancel ends the step (a second cancel cuts the grace short), records it and lets go.
    assert.equal((await env.run(["cancel", "--run-key", "s", "--grace-seconds", "0"])).code, 0);
    assert.equal((await first.output()).code, 0);
    assert.ok(!processAlive(pid), "the second cancel's SIGKILL ended the command");
    assert.equal(step(await env.status("s"), "a").status, "CANCELLED", "recorded before the reader goes on");
    // The lock is free now: the run the reader read before is stale, and is not what it prints.
    const start = await reader.finish();
    assert.equal(start.code, 4, start.stderr);
    const final = JSON.parse(start.stdout);
    assert.deepEqual([final.status, step(final, "a").status], ["CANCELLED", "CANCELLED"]);
    assert.equal((await starter.output()).code, 4);
  },
);
