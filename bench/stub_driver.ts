// deno-lint-ignore-file no-console -- prints its measurement as one JSON line
/**
 * One driver process for bench/run.ts: `deno run -A bench/stub_driver.ts chain|fan N` drives a flow of
 * N steps through the real Driver and SQLite store with jobs that end as they start (the stub
 * executor), so the figures are the engine's own cost. Prints {ms, steps, peak_rss_kib}. It imports
 * nothing the driver does not: `node:path` here loaded Node's compatibility layer, which no driver
 * loads, and added 2-3 MiB to the 10k-step peaks.
 */
import type { FlowDefinition } from "../src/domain/mod.ts";
import { Driver } from "../src/engine/driver.ts";
import { createRun } from "../src/engine/runs.ts";
import { definitionHash } from "../src/flow/mod.ts";
import { join } from "../src/shared/posix_path.ts";
import { FileLocks, openDatabase, RunStore } from "../src/store/mod.ts";
import { trueStep } from "../tests/engine/flows.ts";
import { StubExecutor } from "../tests/engine/stub_executor.ts";

export function stubFlow(shape: string, n: number): FlowDefinition {
  // A chain by depends_on alone (no condition), as a flow file's `depends_on` gives it.
  const step = (i: number, waitsFor: string[]) => trueStep(`s${i}`, waitsFor, { dependsOn: waitsFor });
  if (shape === "chain") {
    return {
      flowId: "chain",
      params: [],
      paramValues: {},
      maxParallel: null,
      steps: Array.from({ length: n }, (_, i) => step(i, i ? [`s${i - 1}`] : [])),
    };
  }
  const fan = Array.from({ length: n - 1 }, (_, i) => step(i, []));
  return {
    flowId: "fan",
    params: [],
    paramValues: {},
    maxParallel: null,
    steps: [...fan, step(n - 1, fan.map((s) => s.id))],
  };
}

function peakRssKiB(): number {
  const status = Deno.readTextFileSync("/proc/self/status");
  return Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? NaN);
}

/** Creates run "r" of `shape` with `n` steps in the state file `dbPath`. */
function create(runs: RunStore, shape: string, n: number): void {
  const flow = stubFlow(shape, n);
  createRun(runs, {
    runKey: "r",
    flow,
    definitionHash: definitionHash(flow),
    flowFile: null,
    executor: { kind: "builtin" },
  }, 0);
}

/** Drives run "r" to its end; throws unless it SUCCEEDED. */
async function drive(runs: RunStore, dbPath: string): Promise<void> {
  const driver = new Driver(
    { runs, gate: new FileLocks(dbPath), executor: new StubExecutor(), pollIntervalSec: 5 },
    "r",
  );
  const state = await driver.drive();
  if (state.status !== "SUCCEEDED") throw new Error(`run ended ${state.status}`);
}

/**
 * `SHAPE N`: creates the run and drives it in this process, as a foreground `start` does. `SHAPE N
 * DIR create`, then `SHAPE N DIR drive`: one process creates it in DIR, another drives it, as `start
 * -d` and its background driver do.
 */
if (import.meta.main) {
  const [shape, count, stateDir, phase] = Deno.args;
  const n = Number(count);
  const dir = stateDir ?? Deno.makeTempDirSync({ prefix: "ojf-bench-stub-" });
  const dbPath = join(dir, "state.sqlite3");
  const db = openDatabase(dbPath);
  const runs = new RunStore(db);
  const t0 = performance.now();
  if (phase !== "drive") create(runs, shape, n);
  if (phase !== "create") await drive(runs, dbPath);
  const ms = performance.now() - t0;
  db.close();
  if (stateDir === undefined) Deno.removeSync(dir, { recursive: true });
  console.log(JSON.stringify({ ms, steps: n, peak_rss_kib: Deno.build.os === "linux" ? peakRssKiB() : null }));
}
