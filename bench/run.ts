// deno-lint-ignore-file no-console -- a benchmark report is printed output
/**
 * `deno task bench`: performance figures, each as a ratio or difference against a baseline measured
 * in the same run on the same machine.
 *
 * 1. Launch: BuiltinRunner.start() of `sleep 30` until RUNNING (target PID known), against a bare
 *    Deno.Command spawn of the same command until its PID is known.
 * 2. Supervision cost: resident memory (RSS) of one job's supervisor, against a bare `sleep`.
 * 3. Flow hand-over (see flow section): end-to-end time of a chain of trivial steps.
 */
import { join } from "node:path";
import { BuiltinRunner, jobsDirectory } from "../src/executor/builtin/runner.ts";
import { openDatabase } from "../src/store/db.ts";

const ROUNDS = Number(Deno.env.get("BENCH_ROUNDS") ?? 30);

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

function rssKiB(pid: number): number {
  if (Deno.build.os === "linux") {
    const status = Deno.readTextFileSync(`/proc/${pid}/status`);
    return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN);
  }
  const out = new Deno.Command("ps", { args: ["-o", "rss=", "-p", String(pid)] }).outputSync();
  return Number(new TextDecoder().decode(out.stdout).trim());
}

const home = Deno.makeTempDirSync({ prefix: "ojf-bench-" });
const dbPath = join(home, "state.sqlite3");
const runner = new BuiltinRunner(openDatabase(dbPath), jobsDirectory(dbPath));

// Warm both paths once (first spawn, first SQLite statement preparation).
Deno.kill((new Deno.Command("sleep", { args: ["30"] }).spawn()).pid, "SIGKILL");
const warm = await runner.start("warm", ["sleep", "30"], { strict: false });
await runner.abort("warm", { graceSeconds: 1 });

const bare: number[] = [];
const builtin: number[] = [];
const supervisorRss: number[] = [];
const bareRss: number[] = [];
for (let i = 0; i < ROUNDS; i++) {
  let t0 = performance.now();
  const child = new Deno.Command("sleep", { args: ["30"], stdin: "null", stdout: "null", stderr: "null" }).spawn();
  const pid = child.pid;
  bare.push(performance.now() - t0);
  await new Promise((resolve) => setTimeout(resolve, 20));
  bareRss.push(rssKiB(pid));
  child.kill("SIGKILL");
  await child.status;

  t0 = performance.now();
  const job = await runner.start(`bench-${i}`, ["sleep", "30"], { strict: false });
  builtin.push(performance.now() - t0);
  if (job.status !== "RUNNING") throw new Error(`job ${i} is ${job.status}`);
  supervisorRss.push(rssKiB(job.worker_pid!));
  await runner.abort(`bench-${i}`, { graceSeconds: 1 });
}
runner.close();
Deno.removeSync(home, { recursive: true });
void warm;

const bareMs = median(bare);
const builtinMs = median(builtin);
console.log(`launch (median of ${ROUNDS}):`);
console.log(`  bare Deno.Command spawn of sleep:            ${bareMs.toFixed(2)} ms`);
console.log(`  built-in start until RUNNING (target PID):   ${builtinMs.toFixed(2)} ms`);
console.log(
  `  added by the built-in runner:                ${(builtinMs - bareMs).toFixed(2)} ms (x${
    (builtinMs / bareMs).toFixed(1)
  })`,
);
console.log(`supervision memory (median RSS of ${ROUNDS}):`);
console.log(`  bare sleep process:                          ${(median(bareRss) / 1024).toFixed(2)} MiB`);
console.log(
  `  one job's supervisor shell:                  ${(median(supervisorRss) / 1024).toFixed(2)} MiB (x${
    (median(supervisorRss) / median(bareRss)).toFixed(1)
  })`,
);
console.log(`  largest supervisor seen:                     ${(Math.max(...supervisorRss) / 1024).toFixed(2)} MiB`);
