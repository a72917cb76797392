/**
 * The Driver in process: a fake executor, the SQLite run repository on an in-memory database, an
 * in-process start gate and a hand-set clock. No subprocess, no sleep: each test is a few ticks.
 */
import assert from "node:assert/strict";
import type { Job, JobStatus, RunState, StartResult } from "../../src/domain/mod.ts";
import { cancelRun, createRun, Driver, type DriverOptions, loadRun, type StartGate } from "../../src/engine/mod.ts";
import { type AbortOptions, type Executor, ExecutorError, type JobRef } from "../../src/executor/mod.ts";
import { definitionHash, loadFlow, normalizeFlow } from "../../src/flow/mod.ts";
import { openDatabase, RunStore, storeWaitReason } from "../../src/store/mod.ts";

import { loadYamlLibrary } from "../../src/flow/mod.ts";
// loadFlow needs the YAML library, which the CLI imports only when it reads a flow file.
await loadYamlLibrary();

/** orchesjob's semantics, in memory, with faults on request. Every call is logged. */
class FakeExecutor implements Executor {
  readonly kind = "builtin";
  readonly jobs = new Map<string, Job>();
  readonly calls: string[] = [];
  /** Thrown, one per call, by the next starts / status reads / aborts. */
  readonly startFaults: Error[] = [];
  readonly statusFaults: Error[] = [];
  readonly abortFaults: Error[] = [];
  /** What an abort finds: the job still running (ABORTED), or already ended this way. */
  abortFinds: JobStatus = "RUNNING";
  /** An abort that ends nothing: it answers that it knows no such job, or leaves the job RUNNING. */
  abortEndsNothing: "unknown" | "still running" | null = null;

  start(runKey: string, command: readonly string[]): Promise<StartResult> {
    this.calls.push(`start ${runKey}`);
    const fault = this.startFaults.shift();
    if (fault) return Promise.reject(fault);
    const existing = this.jobs.get(runKey);
    const job = existing ?? fakeJob(runKey, [...command], "RUNNING");
    this.jobs.set(runKey, job);
    return Promise.resolve({ ...job, accepted: !existing, existing: !!existing } as StartResult);
  }

  unlock(runKey: string): Promise<boolean> {
    this.calls.push(`unlock ${runKey}`);
    return Promise.resolve(this.jobs.has(runKey));
  }

  status(runKey: string): Promise<Job | null> {
    this.calls.push(`status ${runKey}`);
    const fault = this.statusFaults.shift();
    if (fault) return Promise.reject(fault);
    return Promise.resolve(this.jobs.get(runKey) ?? null);
  }

  running(): Promise<Job[]> {
    return Promise.resolve([...this.jobs.values()].filter((job) => job.status === "RUNNING"));
  }

  abort(runKey: string, options: AbortOptions): Promise<Job | null> {
    this.calls.push(`abort ${runKey} (${options.reason})`);
    const fault = this.abortFaults.shift();
    if (fault) return Promise.reject(fault);
    if (this.abortEndsNothing === "unknown") return Promise.resolve(null);
    const job = this.jobs.get(runKey);
    if (this.abortEndsNothing === "still running") return Promise.resolve(job ?? null);
    if (!job) return Promise.resolve(null);
    if (job.status === "RUNNING") {
      const status = this.abortFinds === "RUNNING" ? "ABORTED" : this.abortFinds;
      this.finish(runKey, status, status === "SUCCEEDED" ? 0 : null);
    }
    return Promise.resolve(this.jobs.get(runKey)!);
  }

  logs(_ref: JobRef): Promise<Uint8Array | null> {
    return Promise.resolve(null);
  }

  /** The job under `runKey` ends (as its supervisor would report). */
  finish(runKey: string, status: JobStatus, exitCode: number | null): void {
    const job = this.jobs.get(runKey)!;
    this.jobs.set(runKey, { ...job, status, exit_code: exitCode, updated_at: job.updated_at! + 1 });
  }

  starts(): string[] {
    return this.calls.filter((call) => call.startsWith("start "));
  }
}

function fakeJob(runKey: string, command: string[], status: JobStatus): Job {
  return {
    job_id: `job-${runKey}`,
    run_key: runKey,
    command,
    status,
    exit_code: null,
    updated_at: 1,
    target_pid: 4242,
  } as Job;
}

/**
 * A start gate in process: callers queue for it in order. `beforeQueue` and `afterQueue` run once,
 * for the next caller, just before and just after it takes its place in the queue.
 */
class FakeGate implements StartGate {
  private tail: Promise<unknown> = Promise.resolve();
  beforeQueue: (() => void) | null = null;
  afterQueue: (() => void) | null = null;

  withStartGate<T>(_runKey: string, fn: () => Promise<T> | T): Promise<T> {
    const [before, after] = [this.beforeQueue, this.afterQueue];
    this.beforeQueue = this.afterQueue = null;
    before?.();
    const result = this.tail.then(() => fn());
    this.tail = result.catch(() => {});
    after?.();
    return result;
  }
}

const FLOW = `flow_id: f
steps:
  - {id: a, command: [work], retries: 1, retry_delay_sec: 10, timeout_sec: 5}
  - {id: b, when: a, command: [next]}
`;

function setup(flowText = FLOW) {
  const db = openDatabase(":memory:");
  const runs = new RunStore(db);
  const executor = new FakeExecutor();
  const gate = new FakeGate();
  const clock = {
    t: 1000,
    now() {
      return this.t;
    },
  };
  const flow = loadFlow(flowText, "f.yaml");
  createRun(
    runs,
    { runKey: "k", flow, definitionHash: definitionHash(flow), flowFile: null, executor: { kind: "builtin" } },
    clock.now(),
  );
  /** A driver of run k on the fake executor and clock, polling every second; `extra` adds options. */
  const driver = (extra: Partial<DriverOptions> = {}) =>
    new Driver({ runs, gate, executor, clock, pollIntervalSec: 1, ...extra }, "k");
  const state = (): RunState => loadRun(runs, "k")!.state;
  const step = (id: string) => state().steps.find((s) => s.id === id)!;
  return { db, runs, executor, gate, clock, driver, state, step, [Symbol.dispose]: () => db.close() };
}

/**
 * {@link setup} of two independent steps a and b, on an executor that says it is an external
 * orchesjob (whose `status --running` the driver asks); `head` adds lines before the steps.
 */
function setupExternal(head = "") {
  const env = setup(`flow_id: f\n${head}steps:\n  - {id: a, command: [work]}\n  - {id: b, command: [work]}\n`);
  Object.assign(env.executor, { kind: "orchesjob" });
  return env;
}

/**
 * Drives `env`'s run for `seconds` of real time (the driver really sleeps between rounds, poll interval
 * 1 s), then interrupts it; returns the last state. For counting the calls a fault makes in that time.
 */
function driveFor(
  env: ReturnType<typeof setup>,
  seconds: number,
  extra: Partial<DriverOptions> = {},
): Promise<RunState> {
  const stopAt = Date.now() + seconds * 1000;
  return new Driver({
    runs: env.runs,
    gate: env.gate,
    executor: env.executor,
    clock: env.clock,
    pollIntervalSec: 1,
    interrupted: () => Date.now() >= stopAt,
    ...extra,
  }, "k").drive();
}

/** Ticks until the run ends or nothing changes any more (at most `limit` ticks). */
async function settle(driver: Driver, limit = 20): Promise<RunState> {
  let last = await driver.tick();
  for (let i = 0; i < limit && (last.progressed || last.started) && last.state.status === "RUNNING"; i++) {
    last = await driver.tick();
  }
  return last.state;
}

Deno.test("a driver that died after the intent is resumed: the same attempt is started once, under the same key", async () => {
  using env = setup();
  // The first driver records the intent (a RUNNING, attempt 1) and dies as it calls orchesjob.
  env.executor.startFaults.push(new Error("killed"));
  await assert.rejects(env.driver().tick(), /killed/);
  assert.deepEqual([env.step("a").status, env.step("a").attemptNo], ["RUNNING", 1]);
  assert.deepEqual(env.executor.jobs.size, 0, "orchesjob never heard of it");

  const resumed = env.driver();
  await resumed.tick(); // polls k:a:1, finds nothing, starts it
  assert.deepEqual(env.executor.starts(), ["start k:a:1", "start k:a:1"]);
  assert.equal(env.executor.jobs.get("k:a:1")?.status, "RUNNING");
  env.executor.finish("k:a:1", "SUCCEEDED", 0);
  env.executor.jobs.set("k:b:1", fakeJob("k:b:1", ["next"], "SUCCEEDED"));
  const final = await settle(resumed);
  assert.equal(final.status, "SUCCEEDED");
  assert.deepEqual(env.executor.starts(), ["start k:a:1", "start k:a:1", "start k:b:1"]);
  assert.equal(env.step("a").attemptNo, 1);
});

Deno.test("a driver that died after orchesjob started the job does not start it again", async () => {
  using env = setup();
  await env.driver().tick(); // intent, then the start
  assert.deepEqual(env.executor.starts(), ["start k:a:1"]);
  // A new driver (as after a crash) polls the recorded attempt and finds its job.
  const before = env.executor.calls.length;
  await env.driver().tick();
  assert.deepEqual(env.executor.calls.slice(before), ["status k:a:1"]);
});

Deno.test("a refused start is recorded, then decide retries it after the delay, under the next attempt's key", async () => {
  using env = setup();
  // Exit 2 (invalid arguments): orchesjob refused, and would refuse the same start again.
  env.executor.startFaults.push(new ExecutorError("orchesjob exited 2: boom", "exit", 2));
  const first = await env.driver().tick();
  assert.ok(first.progressed, "the refusal asks for another decision at once");
  assert.deepEqual(
    [env.step("a").status, env.step("a").error, env.step("a").job],
    ["RUNNING", "start failed: orchesjob exited 2: boom", null],
    "the driver only records what happened",
  );
  await env.driver().tick();
  assert.deepEqual([env.step("a").status, env.step("a").nextAttemptAt], ["DELAYED", 1010]);
  env.clock.t = 1009.999;
  await env.driver().tick();
  assert.equal(env.step("a").status, "DELAYED");
  env.clock.t = 1010;
  await env.driver().tick();
  assert.deepEqual([env.step("a").status, env.step("a").attemptNo, env.step("a").error], ["RUNNING", 2, null]);
  assert.deepEqual(env.executor.starts(), ["start k:a:1", "start k:a:2"]);
});

Deno.test("a start that fails with orchesjob's general error (exit 1) is a fault: the next poll finds the job it may have made", async () => {
  using env = setup(`flow_id: f
executor_unavailable_sec: 30
steps:
  - {id: a, command: [work]}
`);
  const locked = () => new ExecutorError("orchesjob start exited 1: database is locked", "exit", 1, "locked");
  // It may have created the job before failing: the next poll finds it, and nothing starts twice.
  env.executor.startFaults.push(locked());
  env.executor.jobs.set("k:a:1", fakeJob("k:a:1", ["work"], "RUNNING"));
  await env.driver().tick();
  assert.deepEqual([env.step("a").status, env.step("a").error, env.step("a").executorError?.count], [
    "RUNNING",
    null,
    1,
  ]);
  await env.driver().tick();
  assert.deepEqual(env.executor.starts(), ["start k:a:1"], "found by the poll, not started again");
  assert.deepEqual([env.step("a").job?.run_key, env.step("a").executorError], ["k:a:1", null]);
});

Deno.test("a start that keeps failing with exit 1 and leaves no job is tried again until executor_unavailable_sec", async () => {
  using env = setup(`flow_id: f
executor_unavailable_sec: 30
steps:
  - {id: a, command: [work]}
`);
  const locked = () => new ExecutorError("orchesjob start exited 1: disk I/O error", "exit", 1);
  env.executor.startFaults.push(locked(), locked(), locked(), locked());
  await env.driver().tick();
  env.clock.t = 1010;
  const round = await env.driver().tick(); // no job under the key: started again, fails again
  // Nothing started: the loop's pause keeps growing (a start that keeps failing is not hammered).
  assert.deepEqual([round.started, round.progressed], [false, false]);
  env.clock.t = 1029;
  await env.driver().tick();
  assert.deepEqual([env.step("a").status, env.step("a").executorError?.count], ["RUNNING", 3]);
  assert.equal(env.step("a").executorError?.firstAt, 1000, "an answer of no job does not end the fault");
  env.clock.t = 1030;
  await env.driver().tick(); // failed calls over 29 s: tried again, fails again
  assert.deepEqual([env.step("a").status, env.step("a").executorError?.count], ["RUNNING", 4]);
  env.clock.t = 1031;
  await env.driver().tick();
  assert.equal(env.step("a").status, "FAILED");
  assert.match(
    env.step("a").error ?? "",
    /^orchesjob unusable for 30 s \(4 failed calls; limit 30 s\): .*disk I\/O error/,
  );
  assert.deepEqual(env.executor.starts(), ["start k:a:1", "start k:a:1", "start k:a:1", "start k:a:1"]);
});

Deno.test("a failed start resumed after a driver outage longer than the limit is tried again, not failed", async () => {
  using env = setup(`flow_id: f
executor_unavailable_sec: 30
steps:
  - {id: a, command: [work]}
`);
  env.executor.startFaults.push(new ExecutorError("orchesjob start exited 1: database is locked", "exit", 1));
  await env.driver().tick(); // the start fails; then no driver runs for 1000 s
  env.clock.t = 2000;
  await env.driver().tick(); // orchesjob answers: no job under the key
  assert.deepEqual(env.executor.starts(), ["start k:a:1", "start k:a:1"], "started again");
  assert.deepEqual([env.step("a").status, env.step("a").job?.run_key, env.step("a").error], ["RUNNING", "k:a:1", null]);
});

Deno.test("a refused start with no retries left fails the step, and the run fails once all ended", async () => {
  using env = setup(`flow_id: f
steps:
  - {id: a, command: [work]}
  - {id: b, when: "!a", command: [next]}
`);
  env.executor.startFaults.push(new ExecutorError("orchesjob not found: /x", "missing"));
  env.executor.jobs.set("k:b:1", fakeJob("k:b:1", ["next"], "SUCCEEDED"));
  const final = await settle(env.driver());
  assert.deepEqual([env.step("a").status, env.step("a").error], ["FAILED", "start failed: orchesjob not found: /x"]);
  assert.equal(env.step("b").status, "SUCCEEDED", "the failure branch ran");
  assert.equal(final.status, "FAILED");
});

Deno.test("a timed-out attempt is aborted, counts as failed, and is retried", async () => {
  using env = setup();
  await env.driver().tick();
  assert.equal(env.step("a").status, "RUNNING");
  env.clock.t = 1004.999;
  await env.driver().tick();
  assert.ok(!env.executor.calls.some((call) => call.startsWith("abort")), "not yet due");
  env.clock.t = 1005;
  await env.driver().tick();
  assert.deepEqual(env.executor.calls.filter((c) => c.startsWith("abort")), ["abort k:a:1 (timed out after 5 s)"]);
  assert.deepEqual(
    [env.step("a").status, env.step("a").error, env.step("a").job?.status],
    ["RUNNING", "timed out after 5 s", "ABORTED"],
    "the abort is recorded; the decision is decide's",
  );
  await env.driver().tick();
  assert.deepEqual([env.step("a").status, env.step("a").error], ["DELAYED", "timed out after 5 s"]);
  env.clock.t = 1015;
  await env.driver().tick();
  assert.deepEqual([env.step("a").status, env.step("a").attemptNo], ["RUNNING", 2]);
  assert.deepEqual(env.executor.starts(), ["start k:a:1", "start k:a:2"]);
});

Deno.test("a job that finished as its time ran out succeeds", async () => {
  using env = setup();
  await env.driver().tick();
  env.executor.abortFinds = "SUCCEEDED";
  env.clock.t = 1006;
  await env.driver().tick();
  assert.deepEqual([env.step("a").error, env.step("a").job?.status], ["timed out after 5 s", "SUCCEEDED"]);
  await env.driver().tick();
  assert.deepEqual([env.step("a").status, env.step("a").error], ["SUCCEEDED", null]);
});

Deno.test("a timed-out job its abort did not reach fails the attempt when it ends SUCCEEDED past its limit", async () => {
  // The job's own times (whole seconds): the first ran 9 s against a 5 s limit; the second 5 s.
  for (const [ran, expected] of [[9, "DELAYED"], [5, "SUCCEEDED"]] as const) {
    using env = setup();
    await env.driver().tick();
    env.clock.t = 1005;
    env.executor.abortFaults.push(new ExecutorError("orchesjob abort timed out after 60 s", "timeout"));
    await env.driver().tick();
    assert.equal(env.executor.calls.filter((c) => c.startsWith("abort")).length, 1, "the timeout's abort was tried");
    assert.deepEqual(
      [env.step("a").status, env.step("a").error, env.step("a").job?.status],
      ["RUNNING", "timed out after 5 s", "RUNNING"],
      "the abort did not reach the job",
    );
    // Before the abort is tried again, the job ends by itself, successfully.
    const job = env.executor.jobs.get("k:a:1")!;
    env.executor.jobs.set("k:a:1", {
      ...job,
      status: "SUCCEEDED",
      exit_code: 0,
      started_at: 1000,
      finished_at: 1000 + ran,
    });
    env.clock.t = 1005.1;
    await env.driver().tick();
    assert.equal(env.step("a").status, expected, `ran ${ran} s`);
    if (expected === "DELAYED") {
      assert.match(
        env.step("a").error ?? "",
        /^timed out after 5 s; its abort did not end the job, which ran on for 9 s/,
      );
      assert.equal(env.step("b").status, "PENDING", "its dependent did not start on a success");
    } else {
      assert.equal(env.step("a").error, null);
    }
  }
});

Deno.test("a cancel that wins the start gate: the recorded attempt is never started", async () => {
  using env = setup();
  const race: { cancel?: Promise<RunState | null> } = {};
  // As the driver asks for the gate (its intent already committed), a cancel gets there first.
  env.gate.beforeQueue = () => {
    assert.equal(env.step("a").status, "RUNNING", "the intent is committed before the gate");
    race.cancel = cancelRun({ runs: env.runs, gate: env.gate, executor: env.executor, clock: env.clock }, "k", 1);
  };
  await env.driver().tick();
  assert.ok(race.cancel, "the race happened");
  const final = (await race.cancel)!;
  assert.deepEqual(env.executor.starts(), [], "no job starts once a cancel is committed");
  assert.equal(final.status, "CANCELLED");
  assert.deepEqual(final.steps.map((s) => [s.id, s.status]), [["a", "CANCELLED"], ["b", "CANCELLED"]]);
});

Deno.test("an abort that fails with an error other than the executor's fails the one-shot tick that started it", async () => {
  using env = setup();
  await env.driver().tick();
  env.clock.t = 1005;
  // The abort runs beside the round; its failure (a fault of the store, say) must not be lost when
  // no later round of this driver is left to report it.
  env.executor.abortFaults.push(new Error("disk gone"));
  await assert.rejects(env.driver().tick(), /disk gone/);
  assert.deepEqual(env.executor.calls.filter((c) => c.startsWith("abort")), ["abort k:a:1 (timed out after 5 s)"]);
  assert.deepEqual([env.step("a").status, env.step("a").error], ["RUNNING", "timed out after 5 s"], "the reason stays");
});

Deno.test("a timeout's abort that fails is tried again after a pause that grows, and shows on the step", async () => {
  using env = setup();
  const driver = new Driver(
    { runs: env.runs, gate: env.gate, executor: env.executor, clock: env.clock, pollIntervalSec: 1 },
    "k",
  );
  await driver.tick();
  env.clock.t = 1005;
  const aborts = () => env.executor.calls.filter((c) => c.startsWith("abort")).length;
  const locked = () => new ExecutorError("orchesjob abort exited 1: database is locked", "exit", 1);
  env.executor.abortFaults.push(locked(), locked());
  await driver.tick();
  assert.equal(aborts(), 1);
  assert.deepEqual([env.step("a").status, env.step("a").executorError?.message], [
    "RUNNING",
    "orchesjob abort exited 1: database is locked",
  ]);
  // The same instant, and just before the first pause (0.5 s) is over: the step is polled, not aborted.
  await driver.tick();
  env.clock.t = 1005.499;
  await driver.tick();
  assert.equal(aborts(), 1, "no abort before its pause is over");
  assert.ok(env.executor.calls.filter((c) => c === "status k:a:1").length >= 2, "the step is still observed");
  env.clock.t = 1005.5;
  await driver.tick();
  assert.equal(aborts(), 2);
  // The second failure doubles the pause, up to the poll interval (1 s).
  env.clock.t = 1006.499;
  await driver.tick();
  assert.equal(aborts(), 2);
  env.clock.t = 1006.5;
  await driver.tick();
  assert.equal(aborts(), 3);
  assert.deepEqual([env.step("a").job?.status, env.step("a").error], ["ABORTED", "timed out after 5 s"]);
  await driver.tick();
  assert.deepEqual([env.step("a").status, env.step("a").executorError], ["DELAYED", null]);
});

Deno.test("a timeout is enforced and its abort paced when status fails or the abort ends nothing", async () => {
  const failing = (faults: Error[]) => {
    for (let i = 0; i < 10_000; i++) faults.push(new ExecutorError("orchesjob exited 1", "exit", 1));
  };
  // Each case: what goes wrong, and the executor error the step then shows (none: the abort works).
  const cases: [string, (executor: FakeExecutor) => void, RegExp | null][] = [
    ["status fails", (executor) => failing(executor.statusFaults), null],
    ["abort fails", (executor) => failing(executor.abortFaults), /^orchesjob exited 1$/],
    ["abort knows no such job", (executor) => executor.abortEndsNothing = "unknown", /^orchesjob abort does not know/],
    [
      "abort leaves the job RUNNING",
      (executor) => executor.abortEndsNothing = "still running",
      /^orchesjob abort left job/,
    ],
  ];
  for (const [what, fault, shown] of cases) {
    using env = setup();
    await env.driver().tick();
    fault(env.executor);
    // The real clock, past a's timeout: every round finds the step timed out.
    env.clock.now = () => Date.now() / 1000 + 10;
    const told: string[] = [];
    const final = await driveFor(env, 2, { onExecutorError: ({ fault }) => told.push(fault.message) });
    const aborts = env.executor.calls.filter((c) => c.startsWith("abort")).length;
    const polls = env.executor.calls.filter((c) => c.startsWith("status")).length;
    if (shown === null) {
      // The abort needs no status: the limit holds on the job last seen, and the abort ends the job.
      assert.equal(aborts, 1, what);
      assert.equal(env.executor.jobs.get("k:a:1")?.status, "ABORTED", what);
    } else {
      assert.equal(final.status, "RUNNING", what);
      assert.ok(aborts >= 2, `${what}: the abort was tried again: ${aborts}`);
      assert.ok(aborts <= 5, `${what}: ${aborts} aborts in 2 s`);
      // Shown on the step (until a status call answers again) and told to the CLI, which prints it.
      assert.ok(told.some((message) => shown.test(message)), `${what}: ${JSON.stringify(told)}`);
    }
    // 2 s with pauses growing to 1 s: a few polls; a loop without a pause makes thousands.
    assert.ok(polls <= 30, `${what}: ${polls} polls in 2 s`);
  }
});

Deno.test("a cancelled DELAYED step keeps no next attempt time", async () => {
  using env = setup();
  await env.driver().tick();
  env.executor.finish("k:a:1", "FAILED", 1);
  await env.driver().tick();
  assert.deepEqual([env.step("a").status, env.step("a").nextAttemptAt], ["DELAYED", 1010]);
  await cancelRun({ runs: env.runs, gate: env.gate, executor: env.executor, clock: env.clock }, "k", 1);
  assert.deepEqual([env.step("a").status, env.step("a").nextAttemptAt], ["CANCELLED", null]);
});

Deno.test("status --running entries that are not active, or another job, are not taken for the step's job", async () => {
  using env = setupExternal();
  await env.driver().tick();
  assert.deepEqual([env.step("a").status, env.step("b").status], ["RUNNING", "RUNNING"]);
  // A runner out of its contract lists a finished job under a's key, and another job under b's.
  env.executor.running = () =>
    Promise.resolve([
      { ...env.executor.jobs.get("k:a:1")!, status: "SUCCEEDED", exit_code: 0 },
      { ...env.executor.jobs.get("k:b:1")!, job_id: "someone-else", status: "RUNNING" },
    ]);
  await env.driver().tick();
  assert.deepEqual([env.step("a").status, env.step("b").status], ["RUNNING", "RUNNING"]);
  assert.deepEqual(env.step("b").job?.job_id, "job-k:b:1");
  assert.deepEqual(
    env.executor.calls.filter((c) => c.startsWith("status")),
    ["status k:a:1", "status k:b:1"],
    "each key was asked itself",
  );
});

Deno.test("a cancel repeated tries again the abort a first one could not deliver", async () => {
  using env = setup();
  await env.driver().tick();
  const cancel = () => cancelRun({ runs: env.runs, gate: env.gate, executor: env.executor, clock: env.clock }, "k", 1);
  const aborts = () => env.executor.calls.filter((c) => c.startsWith("abort")).length;
  env.executor.abortFaults.push(new ExecutorError("orchesjob abort exited 1: database is locked", "exit", 1));
  await cancel();
  assert.equal(aborts(), 1);
  assert.match(env.step("a").error ?? "", /^flow cancelled; abort failed: orchesjob abort exited 1/);
  assert.equal(env.executor.jobs.get("k:a:1")?.status, "RUNNING", "the job still runs");
  const finishedAt = env.step("a").finishedAt;
  const again = (await cancel())!;
  assert.equal(aborts(), 2, "the second cancel aborted the job");
  assert.equal(env.executor.jobs.get("k:a:1")?.status, "ABORTED");
  const a = again.steps.find((s) => s.id === "a")!;
  assert.deepEqual([a.status, a.error, a.job?.status, a.finishedAt], [
    "CANCELLED",
    "flow cancelled",
    "ABORTED",
    finishedAt,
  ]);
  await cancel();
  assert.equal(aborts(), 2, "nothing left to abort");

  // An abort answered with the job still active ended nothing either: tried again by the next cancel.
  using other = setup();
  await other.driver().tick();
  other.executor.abortEndsNothing = "still running";
  await cancelRun({ runs: other.runs, gate: other.gate, executor: other.executor, clock: other.clock }, "k", 1);
  assert.match(
    other.step("a").error ?? "",
    /^flow cancelled; abort failed: orchesjob abort left job job-k:a:1 RUNNING/,
  );
  other.executor.abortEndsNothing = null;
  await cancelRun({ runs: other.runs, gate: other.gate, executor: other.executor, clock: other.clock }, "k", 1);
  assert.deepEqual([other.step("a").error, other.step("a").job?.status], ["flow cancelled", "ABORTED"]);
});

Deno.test("advance goes as far as the run goes now: a chain of skips in one call, not one level per call", async () => {
  using env = setup(`flow_id: f
steps:
  - {id: a, command: [work]}
  - {id: b, when: a, command: [x]}
  - {id: c, when: b, command: [x]}
  - {id: d, when: c, command: [x]}
  - {id: e, when: "!c", command: [x]}
`);
  await env.driver().advance();
  assert.equal(env.step("a").status, "RUNNING");
  env.executor.finish("k:a:1", "FAILED", 1);
  const statusCalls = () => env.executor.calls.filter((c) => c.startsWith("status")).length;
  const before = statusCalls();
  const { state } = await env.driver().advance();
  assert.deepEqual(state.steps.map((s) => [s.id, s.status]), [
    ["a", "FAILED"],
    ["b", "SKIPPED"],
    ["c", "SKIPPED"],
    ["d", "SKIPPED"],
    ["e", "RUNNING"],
  ]);
  assert.equal(statusCalls() - before, 1, "the later rounds asked the executor nothing more");
  env.executor.finish("k:e:1", "SUCCEEDED", 0);
  assert.equal((await env.driver().advance()).state.status, "FAILED", "and the run ends in the same call");
});

Deno.test("a logs call that hangs holds a failed attempt's round a few seconds, once, not the call limit", async () => {
  using env = setup(`flow_id: f
steps:
  - {id: a, command: [work]}
  - {id: b, command: [work]}
`);
  await env.driver().tick();
  let asked = 0;
  env.executor.logs = () => {
    asked++;
    return new Promise<Uint8Array | null>(() => {});
  };
  env.executor.finish("k:a:1", "FAILED", 3);
  env.executor.finish("k:b:1", "FAILED", 4);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const hung = new Promise<"hung">((resolve) => timer = setTimeout(() => resolve("hung"), 30_000));
  const ticked = await Promise.race([env.driver().tick().then(() => "ticked" as const), hung]);
  clearTimeout(timer);
  assert.equal(ticked, "ticked");
  // The first failed attempt waited for its stderr line; the second, after that call hung, did not ask.
  assert.equal(asked, 1);
  assert.deepEqual([env.step("a").status, env.step("a").error], ["FAILED", "orchesjob status FAILED (exit code 3)"]);
  assert.deepEqual([env.step("b").status, env.step("b").error], ["FAILED", "orchesjob status FAILED (exit code 4)"]);
});

Deno.test("a failed abort's retry time that passed when the step is no longer timed out does not spin the driver", async () => {
  using env = setup();
  // A runner whose clock is 6 s ahead: its job starts "later" than a's 5 s limit from the intent.
  let offset = 0;
  env.clock.now = () => Date.now() / 1000 + offset;
  const start = env.executor.start.bind(env.executor);
  env.executor.start = async (runKey: string, command: readonly string[]) => {
    const result = await start(runKey, command);
    const job = { ...env.executor.jobs.get(runKey)!, started_at: env.clock.now() + 6 };
    env.executor.jobs.set(runKey, job);
    return { ...result, ...job };
  };
  await env.driver().tick();
  // 5.7 s later: over the limit from the intent (the job's start lies ahead), so a timeout whose abort
  // fails; from 6 s on, the job's own start counts and the step is no longer over its limit.
  offset = 5.7;
  env.executor.abortFaults.push(new ExecutorError("orchesjob exited 1", "exit", 1));
  await driveFor(env, 2.5);
  const aborts = env.executor.calls.filter((c) => c.startsWith("abort"));
  assert.equal(aborts.length, 1, `one abort, which failed: ${env.executor.calls.join(", ")}`);
  const polls = env.executor.calls.filter((c) => c.startsWith("status")).length;
  assert.ok(polls <= 30, `${polls} polls in 2.5 s`);
});

Deno.test("a cancel that loses the start gate aborts the job the driver started", async () => {
  using env = setup();
  const race: { cancel?: Promise<RunState | null> } = {};
  // The driver takes its place at the gate first; the cancel queues behind it.
  env.gate.afterQueue = () => {
    race.cancel = cancelRun({ runs: env.runs, gate: env.gate, executor: env.executor, clock: env.clock }, "k", 1);
  };
  await env.driver().tick();
  assert.ok(race.cancel, "the race happened");
  const final = (await race.cancel)!;
  assert.deepEqual(env.executor.starts(), ["start k:a:1"]);
  assert.deepEqual(env.executor.calls.filter((c) => c.startsWith("abort")), ["abort k:a:1 (flow cancelled)"]);
  assert.deepEqual(final.steps.map((s) => [s.id, s.status]), [["a", "CANCELLED"], ["b", "CANCELLED"]]);
  assert.equal(env.executor.jobs.get("k:a:1")?.status, "ABORTED");
});

Deno.test("executor errors: an unreadable poll changes nothing, an unknown start is polled, a failed abort is retried", async () => {
  using env = setup();
  // The start's answer is lost (a timeout): whether it started is unknown, so nothing is recorded...
  env.executor.startFaults.push(new ExecutorError("did not answer", "timeout"));
  await env.driver().tick();
  assert.deepEqual([env.step("a").status, env.step("a").error, env.step("a").job], ["RUNNING", null, null]);
  // ...and the next round polls: orchesjob never heard of it, so the same attempt is started again.
  await env.driver().tick();
  assert.deepEqual(env.executor.starts(), ["start k:a:1", "start k:a:1"]);
  assert.equal(env.step("a").job?.status, "RUNNING");

  // A poll that fails leaves the step as it was.
  env.executor.finish("k:a:1", "FAILED", 3);
  env.executor.statusFaults.push(new ExecutorError("orchesjob exited 1", "exit", 1));
  const unobserved = await env.driver().tick();
  assert.deepEqual([env.step("a").status, unobserved.progressed], ["RUNNING", false]);
  await env.driver().tick();
  assert.deepEqual([env.step("a").status, env.step("a").error], ["DELAYED", "orchesjob status FAILED (exit code 3)"]);

  // Attempt 2 times out and the first abort fails: the next round aborts again.
  env.clock.t = 1010;
  await env.driver().tick();
  env.clock.t = 1016;
  env.executor.abortFaults.push(new ExecutorError("orchesjob exited 1", "exit", 1));
  await env.driver().tick();
  await env.driver().tick();
  assert.deepEqual(env.executor.calls.filter((c) => c.startsWith("abort")), [
    "abort k:a:2 (timed out after 5 s)",
    "abort k:a:2 (timed out after 5 s)",
  ]);
  await env.driver().tick();
  assert.deepEqual([env.step("a").status, env.step("a").error], ["FAILED", "timed out after 5 s"]);

  // Anything else an executor throws is a bug, and escapes.
  using other = setup();
  other.executor.startFaults.push(new TypeError("bug"));
  await assert.rejects(other.driver().tick(), TypeError);
});

Deno.test("failed polls are recorded on the step at once, cleared by an answer, and bounded by executor_unavailable_sec", async () => {
  using env = setup(`flow_id: f
executor_unavailable_sec: 30
steps:
  - {id: a, command: [work], retries: 1}
`);
  const told: number[] = [];
  const driver = () => env.driver({ onExecutorError: ({ fault }) => told.push(fault.count) });
  await driver().tick(); // starts attempt 1
  const locked = () => new ExecutorError("orchesjob status exited 1: database is locked", "exit", 1, "locked");
  env.executor.statusFaults.push(locked(), locked());
  await driver().tick();
  env.clock.t = 1010;
  await driver().tick();
  const fault = env.step("a").executorError!;
  assert.deepEqual([fault.count, fault.firstAt, fault.lastAt, fault.exitCode, fault.stderrTail], [
    2,
    1000,
    1010,
    1,
    "locked",
  ]);
  assert.deepEqual(told, [1, 2], "the driver told of each failed call");
  await driver().tick();
  assert.equal(env.step("a").executorError, null, "an answer clears it");

  // Unusable for 30 s: the attempt fails (abort tried first) and is retried under a new key.
  env.executor.statusFaults.push(locked(), locked(), locked());
  env.clock.t = 1020;
  await driver().tick();
  env.clock.t = 1049.9;
  await driver().tick();
  assert.equal(env.step("a").status, "RUNNING", "within the bound");
  env.clock.t = 1050;
  await driver().tick();
  assert.deepEqual(env.executor.calls.filter((c) => c.startsWith("abort")).length, 1);
  assert.match(env.step("a").error ?? "", /^orchesjob unusable for 30 s \(3 failed calls; limit 30 s\)/);
  await settle(driver());
  assert.deepEqual(env.executor.starts(), ["start k:a:1", "start k:a:2"]);
  assert.equal(env.step("a").executorError, null, "a new attempt starts clean");
});

/** What a `status --running` of an orchesjob whose database is locked fails with. */
function listLocked(): ExecutorError {
  return new ExecutorError("orchesjob status exited 1: database is locked", "exit", 1, "locked");
}

Deno.test("a failing status --running shows as the run's error, is told once per pause, fails nothing, and clears once the list answers", async () => {
  using env = setupExternal("executor_unavailable_sec: 1\n");
  const told: { count: number; firstAt: number; error: string | null }[] = [];
  const driver = () =>
    env.driver({
      onListFault: ({ fault }) => told.push({ count: fault.count, firstAt: fault.firstAt, error: env.state().error }),
    });
  const one = driver();
  await one.tick(); // starts a and b
  let lists = 0;
  let failing = true;
  const running = env.executor.running.bind(env.executor);
  env.executor.running = () => {
    lists++;
    return failing ? Promise.reject(listLocked()) : running();
  };
  const keyAsks = () => env.executor.calls.filter((c) => c === "status k:a:1").length;
  await one.tick();
  assert.equal(lists, 1, "the list was asked, and failed");
  assert.equal(keyAsks(), 1, "then a was asked by its key");
  const note = /^orchesjob status --running failing \(1 failed call\): orchesjob status exited 1: database is locked; /;
  assert.match(env.state().error ?? "", note);
  assert.equal(told.length, 1);
  assert.match(told[0].error ?? "", note, "recorded before it was told");
  // Rounds within the pause (past executor_unavailable_sec): the keys answer, so nothing fails, and the
  // list is neither asked nor told of again.
  for (let round = 0; round < 5; round++) {
    env.clock.t += 10;
    await one.tick();
  }
  assert.equal(lists, 1);
  assert.equal(keyAsks(), 6, "each round asked a by its key");
  assert.equal(told.length, 1, "told once per pause, not once per round");
  for (const id of ["a", "b"]) {
    assert.deepEqual([env.step(id).status, env.step(id).executorError], ["RUNNING", null], id);
  }
  // After the pause the list is asked again and fails again: told again, the failures counted.
  env.clock.t += 11;
  await one.tick();
  assert.equal(lists, 2);
  assert.deepEqual(told.map(({ count, firstAt }) => [count, firstAt]), [[1, 1000], [2, 1000]]);
  assert.match(env.state().error ?? "", /^orchesjob status --running failing \(2 failed calls\)/);
  // A driver that stopped meanwhile left the note: the next one clears it once the list answers.
  failing = false;
  await driver().tick();
  assert.equal(lists, 3);
  assert.equal(env.state().error, null, "cleared once the list answers");
  assert.equal(told.length, 2);
  assert.equal(env.state().status, "RUNNING");
});

Deno.test("a failing status --running's note goes once the list is no longer needed", async () => {
  using env = setupExternal();
  const one = env.driver();
  await one.tick(); // starts a and b
  let lists = 0;
  env.executor.running = () => {
    lists++;
    return Promise.reject(listLocked());
  };
  await one.tick();
  assert.equal(lists, 1);
  assert.match(env.state().error ?? "", /^orchesjob status --running failing \(1 failed call\)/);
  // b ends: from now on only a runs, asked by its key, and the list is never asked again.
  env.executor.finish("k:b:1", "SUCCEEDED", 0);
  env.clock.t += 10;
  await one.tick();
  assert.equal(env.step("b").status, "SUCCEEDED");
  assert.match(env.state().error ?? "", /^orchesjob status --running failing/, "within the pause: still said");
  // Past the pause, rounds that need no list: nothing is failing any more, and the run must not say so
  // for as long as a runs (hours), nor keep that note once it ends otherwise than by its driver.
  for (let round = 0; round < 3; round++) {
    env.clock.t += 60;
    await one.tick();
  }
  assert.equal(lists, 1, "the list was not needed, so not asked");
  assert.equal(env.state().error, null, "the note of a list no longer asked is gone");
});

Deno.test("a driver's note still showing when the run is cancelled is not the CANCELLED run's error", async () => {
  using env = setupExternal();
  env.executor.running = () => Promise.reject(listLocked());
  const one = env.driver();
  await one.tick(); // starts a and b
  await one.tick(); // the list fails
  assert.match(env.state().error ?? "", /^orchesjob status --running failing/, "the note shows");
  await cancelRun({ runs: env.runs, gate: env.gate, executor: env.executor, clock: env.clock }, "k", 0);
  assert.deepEqual([env.state().status, env.state().error], ["CANCELLED", null]);
});

Deno.test("a full disk under the driver is waited out with backoff, shown as the run's error, then cleared", async () => {
  using t = setup(`flow_id: f\nsteps:\n  - {id: a, command: [work]}\n  - {id: b, when: a, command: [next]}\n`);
  let full = 0;
  // The store refuses step writes while `full` lasts, as SQLite does on a full disk (SQLITE_FULL).
  const runs = new Proxy(t.runs, {
    get(target, name, receiver) {
      const value = Reflect.get(target, name, receiver);
      if (name !== "updateStep") return typeof value === "function" ? value.bind(target) : value;
      return (...args: Parameters<RunStore["updateStep"]>) => {
        if (full > 0) {
          full--;
          throw new Error("database or disk is full");
        }
        return target.updateStep(...args);
      };
    },
  });
  const waits: { reason: string; error: string | null }[] = [];
  const start = t.executor.start.bind(t.executor);
  t.executor.start = async (runKey: string, command: readonly string[]) => {
    const job = await start(runKey, command);
    t.executor.finish(runKey, "SUCCEEDED", 0);
    if (runKey === "k:a:1") full = 3; // a ends: recording that hits the full disk three times
    return job;
  };
  const driver = new Driver({
    runs,
    gate: t.gate,
    executor: t.executor,
    clock: t.clock,
    pollIntervalSec: 0.01,
    storeWaitReason,
    onStoreWait: ({ reason }) => waits.push({ reason, error: t.state().error }),
  }, "k");
  const final = await driver.drive();
  assert.equal(final.status, "SUCCEEDED");
  assert.equal(waits.length, 3, "three rounds met the full disk");
  assert.ok(waits.every((w) => w.reason === "database or disk is full"));
  // From the second report on, the run's error shows the wait (the first report precedes that write).
  assert.match(waits[2].error ?? "", /state database unusable, retrying: database or disk is full/);
  assert.equal(t.state().error, null, "cleared once the store took writes again");
  assert.deepEqual(t.executor.starts(), ["start k:a:1", "start k:b:1"], "each step started once");
});

/**
 * Drives `t`'s run on the real clock (the driver really sleeps between rounds) with an executor that
 * gives hints as the built-in runner does: `hint` names run keys (or none).
 */
function driveWithHints(t: ReturnType<typeof setup>, pollIntervalSec: number) {
  let send: ((runKeys?: readonly string[]) => void) | null = null;
  Object.assign(t.executor, {
    watch(onChange: (runKeys?: readonly string[]) => void): Disposable {
      send = onChange;
      return { [Symbol.dispose]() {} };
    },
  });
  t.clock.now = () => Date.now() / 1000;
  const driven = new Driver({ runs: t.runs, gate: t.gate, executor: t.executor, clock: t.clock, pollIntervalSec }, "k")
    .drive();
  return { driven, hint: (runKeys?: readonly string[]) => send!(runKeys) };
}

/** Waits (up to 20 s) until `ok` holds. */
async function until(t: ReturnType<typeof setup>, what: string, ok: () => boolean): Promise<void> {
  for (const deadline = Date.now() + 20_000; !ok();) {
    assert.ok(Date.now() < deadline, `waited for ${what}: ${t.executor.calls.join(", ")}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

Deno.test("a round woken by a hint asks only about the hinted jobs; a pause that runs its course asks about all", async () => {
  using t = setup(`flow_id: f
steps:
  - {id: a, command: [work]}
  - {id: b, command: [work]}
  - {id: c, command: [work]}
`);
  const statusCalls = () => t.executor.calls.filter((call) => call.startsWith("status "));
  // A poll interval far beyond the test: every round after the start is one a hint woke.
  const { driven, hint } = driveWithHints(t, 3600);
  await until(t, "the three starts", () => t.executor.starts().length === 3);
  // The first poll is a quarter of a second away: the hint comes first, and its round asks about "a" only.
  const before = statusCalls().length;
  t.executor.finish("k:a:1", "SUCCEEDED", 0);
  hint(["k:a:1"]);
  await until(t, "the hinted round", () => t.step("a").status === "SUCCEEDED");
  assert.deepEqual(statusCalls().slice(before), ["status k:a:1"]);
  // A hint that names no job (as an external orchesjob's) makes the next round ask about every running step.
  t.executor.finish("k:b:1", "SUCCEEDED", 0);
  const beforeAll = statusCalls().length;
  hint();
  await until(t, "the round after an unnamed hint", () => t.step("b").status === "SUCCEEDED");
  assert.deepEqual(statusCalls().slice(beforeAll).sort(), ["status k:b:1", "status k:c:1"]);
  // A job that ends with no hint at all (lost) is found by the next poll, here the first pause's end.
  t.executor.finish("k:c:1", "SUCCEEDED", 0);
  const state = await driven;
  assert.equal(state.status, "SUCCEEDED");
  assert.deepEqual(t.executor.starts(), ["start k:a:1", "start k:b:1", "start k:c:1"]);
});

Deno.test("hints about other runs' jobs neither wake the driver nor starve its polls: a job that ends unhinted is seen", async () => {
  using t = setup(`flow_id: f
steps:
  - {id: a, command: [work]}
`);
  const { driven, hint } = driveWithHints(t, 0.5);
  await until(t, "the step's start", () => t.executor.starts().length === 1);
  // Another run of the same state file ends a job every 20 ms, for as long as this test lasts: its
  // hints come far more often than this driver's pauses run out. (A run key that merely starts with
  // this run's key, "k2", is another run too.)
  let n = 0;
  const noise = setInterval(() => hint([`other:s${n}:1`, `k2:s${n++}:1`]), 20);
  try {
    // The job ends with no hint (its supervisor died: LOST, no exit file). Polls see it within about
    // a poll interval; a driver that only follows hints never does (the cap below is not a speed
    // goal: it turns "never" into a failure instead of a hung test).
    t.executor.finish("k:a:1", "LOST", null);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const never = new Promise<null>((resolve) => timer = setTimeout(() => resolve(null), 30_000));
    const state = await Promise.race([driven, never]);
    clearTimeout(timer);
    assert.notEqual(state, null, "the driver never saw its job end while another run's hints kept coming");
    assert.equal(state!.status, "FAILED");
    assert.ok(n > 0, "the other run's hints came while the driver waited");
  } finally {
    clearInterval(noise);
  }
});

Deno.test("a created run is driven with its stored definition read back, not the caller's flow as the loader made it", () => {
  using db = {
    handle: openDatabase(":memory:"),
    [Symbol.dispose]() {
      this.handle.close();
    },
  };
  const runs = new RunStore(db.handle);
  const flow = loadFlow(
    "flow_id: f\nsteps:\n  - {id: a, command: [echo, a]}\n  - {id: b, command: [echo, b], depends_on: [a], env: {X: y}}\n",
    "f.yaml",
  );
  // A hash no other test uses: the process keeps one parsed definition per hash.
  const hash = `${definitionHash(flow)}-stored-copy`;
  const record = createRun(runs, {
    runKey: "k",
    flow,
    definitionHash: hash,
    flowFile: null,
    executor: { kind: "builtin" },
  }, 1);
  // The loader's objects (with the places of each step in the file) are not kept for the whole run.
  assert.notEqual(record.state.flow, flow);
  assert.ok(record.state.flow.steps.every((step, i) => step !== flow.steps[i]));
  assert.deepEqual(normalizeFlow(record.state.flow), normalizeFlow(flow));
  assert.equal(loadRun(runs, "k")!.state.flow, record.state.flow, "one parsed copy per definition");
});

Deno.test("a clock step back moves the executor's job start with the attempt's: timeout_sec keeps its length", async () => {
  using env = setup();
  let monotonicMs = 0;
  const driver = env.driver({ monotonicMs: () => monotonicMs });
  await driver.tick(); // a starts at 1000; its job's own start, later than the intent, is 1001
  env.executor.jobs.set("k:a:1", { ...env.executor.jobs.get("k:a:1")!, started_at: 1001 });
  [env.clock.t, monotonicMs] = [1003, 3000];
  await driver.tick();
  // 4 s after the start the clock steps 3 s back: 1001 where 1004 was due.
  [env.clock.t, monotonicMs] = [1001, 4000];
  await driver.tick();
  assert.equal(env.step("a").startedAt, 997, "the intent moved with the clock");
  [env.clock.t, monotonicMs] = [1002.5, 5500];
  await driver.tick();
  assert.equal(env.step("a").error, null, "4.5 s since the job's start: not timed out");
  // 5 s since the job's start. Counted from its start as reported (1001), it would be 2 s.
  [env.clock.t, monotonicMs] = [1003, 6000];
  await driver.tick();
  assert.equal(env.step("a").error, "timed out after 5 s");
  assert.ok(env.executor.calls.some((call) => call.startsWith("abort k:a:1")));
});

Deno.test("a clock step during a batch of starts moves the intents made before it, not those made after", async () => {
  // 65 steps: one round's starts come in two batches (64, then 1), the second's intent after the
  // first's start calls, during which the clock steps an hour back.
  const steps = Array.from({ length: 65 }, (_, i) => `  - {id: s${i}, command: [work], timeout_sec: 600}`);
  using env = setup(`flow_id: f\nsteps:\n${steps.join("\n")}\n`);
  let monotonicMs = 0;
  const start = env.executor.start.bind(env.executor);
  env.executor.start = (...args) => {
    if (env.executor.starts().length === 0) env.clock.t -= 3600;
    return start(...args);
  };
  const driver = env.driver({ monotonicMs: () => monotonicMs });
  await driver.tick();
  assert.equal(env.executor.starts().length, 65, "every step started in one round");
  assert.equal(env.step("s0").startedAt, -2600, "an intent made before the step moved with it");
  [env.clock.t, monotonicMs] = [-2599, 1000];
  await driver.tick();
  for (const id of ["s0", "s64"]) {
    assert.equal(env.step(id).error, null, `${id} not timed out`);
    assert.equal(env.step(id).startedAt, -2600, `${id}'s intent on the clock as it is`);
  }
});

Deno.test("a driver that takes over after a clock step counts timeout_sec from the job start as it was moved", async () => {
  using env = setup(`flow_id: f\nsteps:\n  - {id: a, command: [work], timeout_sec: 5000}\n`);
  let monotonicMs = 0;
  const first = env.driver({ monotonicMs: () => monotonicMs });
  await first.tick(); // a starts at 1000, its job too
  env.executor.jobs.set("k:a:1", { ...env.executor.jobs.get("k:a:1")!, started_at: 1000, updated_at: 2 });
  [env.clock.t, monotonicMs] = [1010, 10_000];
  await first.tick(); // its job recorded, started at 1000
  assert.equal(env.step("a").job?.started_at, 1000);
  [env.clock.t, monotonicMs] = [-2589, 11_000]; // an hour back
  await first.tick();
  assert.deepEqual([env.step("a").startedAt, env.step("a").job?.started_at], [-2600, -2600], "moved with the clock");
  // Its driver dies; another takes over 5001 s after the start (the executor still says 1000).
  const second = env.driver({ monotonicMs: () => monotonicMs });
  env.clock.t = 2401;
  await second.tick();
  assert.equal(env.step("a").error, "timed out after 5000 s");
});

Deno.test("a pause between the driver's reads of the wall and monotonic clocks is no clock step", async () => {
  using env = setup();
  // One time for both clocks: a pause (a SIGSTOP, a loaded machine) moves both alike.
  let real = 1000;
  let pauseAfterWallRead = false;
  env.clock.now = () => {
    const wall = real;
    if (pauseAfterWallRead) [real, pauseAfterWallRead] = [real + 5, false];
    return wall;
  };
  const steps: unknown[] = [];
  const driver = env.driver({ monotonicMs: () => real * 1000, onClockStep: (event) => steps.push(event) });
  await driver.tick(); // a starts at 1000
  real = 1001;
  pauseAfterWallRead = true; // 5 s pass between the next round's first wall read and what follows
  await driver.tick();
  assert.ok(!pauseAfterWallRead && real === 1006, "the pause came");
  assert.deepEqual(steps, [], "no step told");
  assert.equal(env.step("a").startedAt, 1000, "the intent stays");
});

Deno.test("a clock step during a failing status --running does not put off the list's next ask by the step", async () => {
  using env = setupExternal();
  let monotonicMs = 0;
  const steps: (number | null)[] = [];
  const driver = env.driver({ monotonicMs: () => monotonicMs, onClockStep: ({ stepSec }) => steps.push(stepSec) });
  await driver.tick(); // starts a and b
  let lists = 0;
  env.executor.running = () => {
    lists++;
    if (lists === 1) env.clock.t += 3600; // the clock steps an hour forward while the call fails
    return Promise.reject(listLocked());
  };
  await driver.tick();
  assert.deepEqual([lists, steps], [1, [3600]], "the list failed, and the step was seen");
  // 61 s on both clocks: past the list's pause (60 s), which the step must not have moved twice.
  [env.clock.t, monotonicMs] = [env.clock.t + 61, 61_000];
  await driver.tick();
  assert.equal(lists, 2, "the list asked again after its pause");
});

Deno.test("a clock step during a timeout's failing abort does not put off its retry by the step", async () => {
  using env = setup();
  let monotonicMs = 0;
  const driver = env.driver({ monotonicMs: () => monotonicMs });
  await driver.tick(); // a starts at 1000 (timeout_sec 5)
  [env.clock.t, monotonicMs] = [1005, 5000];
  const aborts = () => env.executor.calls.filter((c) => c.startsWith("abort")).length;
  const abort = env.executor.abort.bind(env.executor);
  env.executor.abort = (...args) => {
    if (aborts() === 0) {
      env.clock.t += 3600; // the clock steps an hour forward while the abort fails
      env.executor.abortFaults.push(new ExecutorError("orchesjob abort exited 1: database is locked", "exit", 1));
    }
    return abort(...args);
  };
  await driver.tick();
  assert.equal(aborts(), 1);
  const fault = env.step("a").executorError!;
  assert.deepEqual([fault.count, fault.firstAt, env.clock.t], [1, 4605, 4605], "the abort failed after the step");
  // 0.5 s on both clocks: the first pause is over, so the abort is tried again.
  [env.clock.t, monotonicMs] = [env.clock.t + 0.5, 5500];
  await driver.tick();
  assert.equal(aborts(), 2, "the abort tried again after its pause");
});

Deno.test("a clock step an abort beside the round sees moves the retry time the round decided before it", async () => {
  // The round decides b's retry on the clock before the step; a's failing abort, beside the round,
  // sees the step (with its fault) before b's retry is written: that write is on the decision's clock,
  // and no later look moves it, so it must move with the step itself.
  using env = setup(`flow_id: f
steps:
  - {id: a, command: [work], timeout_sec: 5}
  - {id: b, command: [work], retries: 1, retry_delay_sec: 10}
`);
  // The monotonic clock stands still: only the step moves the wall clock apart from it.
  const monotonicMs = 0;
  await env.driver({ monotonicMs: () => monotonicMs }).tick(); // a and b start at 1000
  env.clock.t = 1005;
  let release: (() => void) | null = null;
  const abort = env.executor.abort.bind(env.executor);
  env.executor.abort = (...args) => {
    if (env.executor.calls.some((c) => c.startsWith("abort"))) return abort(...args);
    env.executor.calls.push("abort (held)");
    env.executor.finish("k:b:1", "FAILED", 1); // b fails while a's abort is under way
    return new Promise((_, reject) => {
      release = () => {
        env.clock.t += 3600; // the clock steps an hour forward; then the abort fails
        reject(new ExecutorError("orchesjob abort exited 1: database is locked", "exit", 1));
      };
    });
  };
  // b's retry asks for its stderr after the decision: a's abort fails (with the step) meanwhile.
  env.executor.logs = async () => {
    release?.();
    release = null;
    await new Promise((resolve) => setTimeout(resolve, 50));
    return null;
  };
  let driving = true;
  const driver = env.driver({
    monotonicMs: () => monotonicMs,
    interrupted: () => driving && env.step("b").status === "DELAYED",
  });
  await driver.drive();
  assert.equal(env.step("b").status, "DELAYED");
  assert.equal(env.step("a").executorError?.firstAt, 4605, "a's abort failed after the step");
  // A later round's look at the clocks moves nothing more.
  driving = false;
  await driver.tick();
  const b = env.step("b");
  assert.deepEqual([b.retryHistory[0].failed_at, b.retryHistory[0].delay_sec], [1005, 10], "decided before the step");
  assert.equal(b.nextAttemptAt, 4615, "the retry 10 s after the failure, not 3590 s before the clock");
});
