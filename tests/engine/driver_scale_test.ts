/**
 * The driver at scale, through the real SQLite store with a stub executor: a 10k-step chain must run
 * to the end (rounds linear in what changed; quadratic rounds made this take over an hour; the
 * limit is a generous bound on the CPU time this test's thread spends, not a measurement: bench/run.ts
 * reports the time per step), a wide fan-out's jobs are started several at a time, never more
 * than the bound, and in random graphs each step starts once, after every step it waits for (the
 * run index's reverse edges: a step they missed would never start).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import type { FlowDefinition } from "../../src/domain/mod.ts";
import { Driver, START_CONCURRENCY } from "../../src/engine/driver.ts";
import { createRun } from "../../src/engine/runs.ts";
import { definitionHash } from "../../src/flow/normalize.ts";
import { FileLocks, openDatabase, RunStore } from "../../src/store/mod.ts";
import { cpuMicroseconds, tempDir } from "../helpers.ts";
import { chainFlow, trueStep } from "./flows.ts";
import { StubExecutor } from "./stub_executor.ts";

/** A flow of `n` independent steps and a join that waits for all of them. */
function fanOutFlow(n: number): FlowDefinition {
  const chain = chainFlow(n + 1);
  const ids = chain.steps.slice(0, n).map((step) => step.id);
  const steps = chain.steps.map((step, i) =>
    i < n
      ? { ...step, condition: null, waitsFor: [] }
      : { ...step, id: "join", condition: null, dependsOn: ids, waitsFor: ids }
  );
  return { flowId: `fan-${n}`, params: [], paramValues: {}, maxParallel: null, steps };
}

/**
 * Drives `flow` as run `runKey` in a fresh state file; returns the stored run afterwards. Fails once
 * the drive has used `limitSeconds` of CPU time (a loaded machine slows it down without adding to
 * that), or has not ended after ten times as long by the clock (a hang).
 */
async function driveFlow(flow: FlowDefinition, runKey: string, executor: StubExecutor, limitSeconds: number) {
  using dir = tempDir();
  const dbPath = join(dir.path, "state.sqlite3");
  const db = openDatabase(dbPath);
  try {
    const runs = new RunStore(db);
    createRun(runs, {
      runKey,
      flow,
      definitionHash: definitionHash(flow),
      flowFile: null,
      executor: { kind: "builtin" },
    }, 0);
    const driver = new Driver({ runs, gate: new FileLocks(dbPath), executor, pollIntervalSec: 0.1 }, runKey);
    const cpu = cpuMicroseconds();
    const deadline = performance.now() + 10 * limitSeconds * 1000;
    let timer: ReturnType<typeof setInterval> | undefined;
    const limit = new Promise<never>((_, reject) => {
      timer = setInterval(() => {
        if (cpuMicroseconds() - cpu > limitSeconds * 1e6) {
          reject(new Error(`not done within ${limitSeconds} s of CPU time`));
        }
        if (performance.now() > deadline) reject(new Error(`not done within ${10 * limitSeconds} s`));
      }, 250);
    });
    const state = await Promise.race([driver.drive(), limit]).finally(() => clearInterval(timer));
    assert.equal(state.status, "SUCCEEDED");
    return runs.load(runKey)!;
  } finally {
    db.close();
  }
}

const STEPS = 10_000;
const LIMIT_SECONDS = 60;

Deno.test(`a ${STEPS}-step chain runs to the end with a stub executor, each step started once`, async () => {
  const executor = new StubExecutor();
  const stored = await driveFlow(chainFlow(STEPS), "long", executor, LIMIT_SECONDS);
  assert.equal(stored.status, "SUCCEEDED");
  assert.equal(stored.steps.filter((step) => step.status === "SUCCEEDED").length, STEPS);
  assert.equal(executor.starts.size, STEPS);
  assert.ok([...executor.starts.values()].every((count) => count === 1), "a step was started twice");
});

Deno.test("a 40-wide fan-out starts its jobs concurrently, at most START_CONCURRENCY at once", async () => {
  const executor = new StubExecutor({ startDelaySeconds: 0.05 });
  const stored = await driveFlow(fanOutFlow(40), "fan", executor, LIMIT_SECONDS);
  assert.equal(stored.steps.filter((step) => step.status === "SUCCEEDED").length, 41);
  assert.ok(executor.maxInFlight > 1, `starts ran one at a time (max in flight ${executor.maxInFlight})`);
  assert.ok(executor.maxInFlight <= START_CONCURRENCY, `${executor.maxInFlight} starts at once`);
  assert.ok([...executor.starts.values()].every((count) => count === 1), "a step was started twice");
});

/** A stub that also keeps the order in which run keys were started. */
class OrderedStub extends StubExecutor {
  readonly order: string[] = [];
  override start(runKey: string, command: readonly string[]) {
    this.order.push(runKey);
    return super.start(runKey, command);
  }
}

/**
 * A random graph of `n` steps: each waits for up to 4 steps listed before it (`depends_on`, so it
 * runs once they all succeeded). The steps are listed in a shuffled order of ids, so that a step's
 * place in the file says nothing about its name.
 */
function randomDagFlow(n: number, seed: number): FlowDefinition {
  let state = seed;
  const next = () => (state = (state * 1103515245 + 12345) % 2147483648) / 2147483648;
  const ids = Array.from({ length: n }, (_, i) => `step-${i}`);
  for (let i = ids.length - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [ids[i], ids[j]] = [ids[j], ids[i]];
  }
  const steps = ids.map((id, i) => {
    const count = i === 0 ? 0 : Math.floor(next() * 5);
    const waitsFor = [...new Set(Array.from({ length: count }, () => ids[Math.floor(next() * i)]))];
    return trueStep(id, waitsFor, { dependsOn: waitsFor });
  });
  return { flowId: `dag-${seed}`, params: [], paramValues: {}, maxParallel: null, steps };
}

Deno.test("random graphs: every step starts once, and only after every step it waits for", async () => {
  for (const seed of [1, 2, 3, 4, 5]) {
    const flow = randomDagFlow(300, seed);
    const executor = new OrderedStub();
    const stored = await driveFlow(flow, `dag${seed}`, executor, 6);
    assert.equal(stored.status, "SUCCEEDED", `seed ${seed}`);
    assert.equal(executor.order.length, flow.steps.length, `seed ${seed}: each step started once`);
    const startedAt = new Map(executor.order.map((key, i) => [key.split(":")[1], i]));
    let edges = 0;
    for (const step of flow.steps) {
      for (const dependency of step.waitsFor) {
        edges++;
        assert.ok(
          startedAt.get(dependency)! < startedAt.get(step.id)!,
          `seed ${seed}: ${step.id} before ${dependency}`,
        );
      }
    }
    assert.ok(edges > flow.steps.length, `seed ${seed}: the graph has ${edges} edges`);
  }
});
