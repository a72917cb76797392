// deno-lint-ignore-file no-console -- a benchmark report is printed output
/**
 * `deno task bench`: performance figures, each as a ratio or difference against a baseline measured
 * in the same run on the same machine.
 *
 * 1. Launch: BuiltinRunner.start() of `sleep 30` until RUNNING (target PID known), against a bare
 *    Deno.Command spawn of the same command until its PID is known.
 * 2. Supervision cost: resident memory (RSS) of one job's supervisor, against a bare `sleep`.
 * 3. Flow hand-over: a chain of trivial steps through the CLI, against running the commands directly.
 */
import { join } from "node:path";
import { BuiltinRunner } from "../src/executor/mod.ts";
import { jobsDirectory, openDatabase } from "../src/store/mod.ts";

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
runner.db.close();
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

// ---- 3. Flow hand-over ----
// A chain of five `true` steps, driven by a foreground `start` at the default --poll-interval (5 s):
// the first poll after a change comes at 0.1 s, so the chain should cost far less than 5 x 5 s.
// Baseline: the same five commands run one after another by Deno.Command, plus one bare CLI start-up
// (`--version`), both measured here.
const CHAIN_STEPS = 5;
const FLOW_ROUNDS = Number(Deno.env.get("BENCH_FLOW_ROUNDS") ?? 3);
const repo = new URL("..", import.meta.url).pathname;
const cliArgs = ["run", "--allow-all", "--no-prompt", "--config", `${repo}deno.json`, `${repo}main.ts`];

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

async function cliRun(args: string[], env: Record<string, string> = {}): Promise<void> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [...cliArgs, ...args],
    env,
    stdout: "null",
    stderr: "piped",
  })
    .output();
  if (!out.success && args.includes("start")) throw new Error(new TextDecoder().decode(out.stderr));
}

const flowHome = Deno.makeTempDirSync({ prefix: "ojf-bench-flow-" });
const chain = `${flowHome}/chain.yaml`;
Deno.writeTextFileSync(
  chain,
  "flow_id: chain\nsteps:\n" +
    Array.from({ length: CHAIN_STEPS }, (_, i) => `  - {id: s${i}, ${i ? `when: s${i - 1}, ` : ""}command: ["true"]}`)
      .join("\n") +
    "\n",
);
const wrapper = `${flowHome}/orchesjob-wrapper`;
Deno.writeTextFileSync(
  wrapper,
  `#!/bin/sh\nexec '${Deno.execPath()}' ${cliArgs.map((a) => `'${a}'`).join(" ")} job "$@"\n`,
);
Deno.chmodSync(wrapper, 0o755);

const direct: number[] = [];
const startup: number[] = [];
const builtinFlow: number[] = [];
const externalFlow: number[] = [];
for (let i = 0; i < FLOW_ROUNDS; i++) {
  direct.push(
    await timed(async () => {
      for (let s = 0; s < CHAIN_STEPS; s++) await new Deno.Command("true").output();
    }),
  );
  startup.push(await timed(() => cliRun(["--version"])));
  const db = ["--db", `${flowHome}/state-${i}.sqlite3`];
  builtinFlow.push(await timed(() => cliRun([...db, "--executor", "builtin", "start", "--run-key", `b${i}`, chain])));
  externalFlow.push(
    await timed(() => cliRun([...db, "--orchesjob-bin", wrapper, "start", "--run-key", `e${i}`, chain])),
  );
}
Deno.removeSync(flowHome, { recursive: true });
const baseline = median(direct) + median(startup);
console.log(`flow hand-over: ${CHAIN_STEPS} chained \`true\` steps at --poll-interval 5 (median of ${FLOW_ROUNDS}):`);
console.log(`  baseline (CLI start-up + the commands run directly): ${baseline.toFixed(0)} ms`);
for (const [name, values] of [["built-in executor", builtinFlow], ["external (job wrapper)", externalFlow]] as const) {
  const ms = median(values);
  console.log(
    `  ${name.padEnd(22)} ${ms.toFixed(0)} ms = x${(ms / baseline).toFixed(1)} baseline; ` +
      `${((ms - baseline) / CHAIN_STEPS).toFixed(0)} ms per step hand-over`,
  );
}
