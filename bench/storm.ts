// deno-lint-ignore-file no-console -- the storm report is printed output
/**
 * Cron storm (opt-in, never part of `deno task test`): many flows start at the same minute against one
 * state home while operators and monitoring poll it, all through the real CLI with the built-in runner.
 *
 * At once: `--detached` (40) `start -d` of different run keys and `--foreground` (10) foreground `start`,
 * each a 20-step DAG (5 layers of 4, each step waiting for two of the layer before, `sleep 0.2`; 4 steps
 * fail their first attempt and are retried; a few runs have a step that fails both attempts, so that they
 * end FAILED and are retried by hand); 10 `start -d` and 10 foreground `start` of one run key each (cron
 * fired twice, a CI retry); loops of `list`, `status --format table` and `job status --running`, each
 * every 0.2 s; `cancel` of two live runs then `retry -d` of them, and `retry` of the runs that FAILED.
 * Then each run that has not ended is resumed once, and the invariants are checked:
 *   - every run ends, every attempt of every step ran exactly once (a `mkdir` marker per attempt);
 *   - exit codes are the documented ones (no 70; a `start -d` may exit 75 when its driver, starved of
 *     CPU, has not taken the run within the wait: listed in the report, and that run must end all the
 *     same), every stderr line (also detached drivers' logs) is
 *     one JSON object, nothing says "database is locked";
 *   - of the 10 `start -d` of one key exactly one reports `"detached": true`; all 10 foreground `start`
 *     of another key exit 0; of a third key started 3 ways at once (`start -d`, foreground `start`,
 *     `resume -d`, 3 of each), at most one reports `"detached": true` and all exit 0 (a `resume` 3: the
 *     run was not created yet);
 *   - no process of the state home is left; `PRAGMA integrity_check` is ok.
 * Figures: wall time, the slowest call of each kind, `status --format table` p50/p95 during the storm
 * and after it (the machine otherwise as it is), the most descriptors a driver held, the peak RSS of
 * all drivers together (detached drivers and foreground `start`/`retry` processes, followers included),
 * sampled every 0.3 s.
 *
 *   deno task storm [--detached 40] [--foreground 10] [--dup 10] [--keep]
 *
 * Exit 1 when an invariant broke (each violation is printed as a JSON line), else 0.
 */
import { join } from "node:path";
import { CLI, jsonObjectLine, TEST_ENV } from "../tests/helpers.ts";

function option(name: string, fallback: string): number {
  const at = Deno.args.indexOf(`--${name}`);
  return Number(at >= 0 ? Deno.args[at + 1] : fallback);
}
const DETACHED = option("detached", "40");
const FOREGROUND = option("foreground", "10");
const DUP = option("dup", "10");
const KEEP = Deno.args.includes("--keep");

const HOME = Deno.makeTempDirSync({ prefix: "ojf-storm-" });
const DB = join(HOME, "state.sqlite3");
const MARKS = join(HOME, "marks");
Deno.mkdirSync(join(MARKS, "d"), { recursive: true });
const sleep = (seconds: number) => new Promise((resolve) => setTimeout(resolve, seconds * 1000));
const t0 = performance.now();
const since = () => Math.round(performance.now() - t0) / 1000;

// ---------------------------------------------------------------------------------------------------
// The flows

/** A step: marks its attempt (a second run of it fails the mkdir), sleeps, fails attempts up to `failUpTo`. */
function command(failUpTo: number, gated = false): string {
  const id = '"$ORCHESJOB_FLOW_RUN_KEY.$ORCHESJOB_FLOW_STEP_ID.$ORCHESJOB_FLOW_ATTEMPT"';
  return [
    `id=${id}`,
    `mkdir "$STORM_MARKS/d/$id" 2> /dev/null || echo "$id" >> "$STORM_MARKS/double.log"`,
    gated ? 'while [ ! -e "$STORM_MARKS/go" ]; do sleep 0.1; done' : "sleep 0.2",
    `[ "$ORCHESJOB_FLOW_ATTEMPT" -gt ${failUpTo} ] || { echo "storm: failing on purpose" >&2; exit 3; }`,
  ].join("; ");
}

/** `doomed`: one step fails until a `retry`; `gated`: the first step waits for `marks/go` (to be cancelled). */
function flow(name: string, doomed: boolean, gated = false): string {
  const steps = [];
  for (let layer = 0; layer < 5; layer++) {
    for (let i = 0; i < 4; i++) {
      const id = `s${layer}${i}`;
      const before = layer === 0 ? [] : [`s${layer - 1}${i}`, `s${layer - 1}${(i + 1) % 4}`];
      // Attempts that fail: one step per layer from layer 1 fails once (retried); in a doomed flow one
      // step fails both of its attempts, until a `retry` gives it a third.
      const failUpTo = doomed && id === "s21" ? 2 : i === layer % 4 && layer > 0 ? 1 : 0;
      steps.push({
        id,
        ...(before.length ? { depends_on: before } : {}),
        retries: 1,
        command: command(failUpTo, gated && id === "s00"),
      });
    }
  }
  const file = join(HOME, `${name}.json`);
  Deno.writeTextFileSync(file, JSON.stringify({ flow_id: name, steps }, null, 1));
  return file;
}
const STORM_FLOW = flow("storm", false);
const DOOMED_FLOW = flow("doomed", true);
const GATED_FLOW = flow("gated", false, true);

// ---------------------------------------------------------------------------------------------------
// Running the CLI, and what it said

const violations: Record<string, unknown>[] = [];
function violation(kind: string, detail: Record<string, unknown>) {
  const entry = { kind, ...detail, at: since() };
  violations.push(entry);
  console.log(JSON.stringify({ violation: entry }));
}
/** Wall milliseconds of each call, by kind. */
const timings = new Map<string, number[]>();
const exits = new Map<string, number>();
/** PIDs of the foreground drivers (start, resume, retry without -d) now running. */
const foreground = new Set<number>();
const ALLOWED = new Set([0, 1, 2, 3, 4, 5]);

function checkStderr(text: string, where: string) {
  for (const line of text.split("\n")) {
    if (line === "") continue;
    if (jsonObjectLine(line) === null) violation("non-json-stderr", { where, line: line.slice(0, 400) });
    if (/database is locked/i.test(line)) violation("database-is-locked", { where, line: line.slice(0, 400) });
  }
}

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

async function run(args: string[], allowed = ALLOWED): Promise<Ran> {
  const kind = args.filter((arg) => !arg.startsWith("/") && !KEYS.has(arg) && !/^\d+$/.test(arg)).slice(0, 4).join(" ");
  const started = performance.now();
  const child = new Deno.Command(CLI[0], {
    args: [...CLI.slice(1), "--db", DB, "--executor", "builtin", ...args],
    cwd: HOME,
    env: { ...TEST_ENV, STORM_MARKS: MARKS },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const driving = ["start", "resume", "retry"].includes(args[0]) && !args.includes("-d");
  if (driving) foreground.add(child.pid);
  const out = await child.output();
  foreground.delete(child.pid);
  const ms = performance.now() - started;
  const stdout = new TextDecoder().decode(out.stdout);
  const stderr = new TextDecoder().decode(out.stderr);
  timings.set(kind, [...(timings.get(kind) ?? []), ms]);
  exits.set(`${kind} -> ${out.code}`, (exits.get(`${kind} -> ${out.code}`) ?? 0) + 1);
  checkStderr(stderr, kind);
  if (!allowed.has(out.code)) violation("exit-code", { args, code: out.code, stderr: stderr.slice(-600) });
  return { code: out.code, stdout, stderr, ms };
}

// ---------------------------------------------------------------------------------------------------
// Processes: drivers' descriptors and memory, and what is left at the end

interface Proc {
  pid: number;
  cmdline: string[];
}

function processesOfHome(): Proc[] {
  const found: Proc[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const raw = Deno.readTextFileSync(`/proc/${entry.name}/cmdline`);
      if (raw.includes(HOME)) {
        found.push({ pid: Number(entry.name), cmdline: raw.split("\0").filter((part) => part !== "") });
      }
    } catch { /* gone */ }
  }
  return found;
}

function rssKib(pid: number): number {
  try {
    const status = Deno.readTextFileSync(`/proc/${pid}/status`);
    return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  } catch {
    return 0;
  }
}

function fdCount(pid: number): number {
  try {
    return [...Deno.readDirSync(`/proc/${pid}/fd`)].length;
  } catch {
    return 0;
  }
}

const peaks = { fds: 0, rssKib: 0, drivers: 0 };
function sampleDrivers() {
  const drivers = processesOfHome().filter((proc) => proc.cmdline.includes("_drive")).map((proc) => proc.pid);
  const all = [...drivers, ...foreground];
  let rss = 0;
  for (const pid of all) {
    rss += rssKib(pid);
    peaks.fds = Math.max(peaks.fds, fdCount(pid));
  }
  peaks.rssKib = Math.max(peaks.rssKib, rss);
  peaks.drivers = Math.max(peaks.drivers, all.length);
}

// ---------------------------------------------------------------------------------------------------
// The storm

let stormOver = false;

async function poller(args: () => string[], seen?: (ran: Ran) => void) {
  while (!stormOver) {
    const ran = await run(args());
    seen?.(ran);
    await sleep(0.2);
  }
}

/** Each run's status, as the `list` poller last saw it. */
const statuses = new Map<string, string>();
function noteList(ran: Ran) {
  if (ran.code !== 0) return;
  for (const state of JSON.parse(ran.stdout)) statuses.set(state.run_key, state.status);
}

const detachedKeys = Array.from({ length: DETACHED }, (_, i) => `d${String(i).padStart(2, "0")}`);
const foregroundKeys = Array.from({ length: FOREGROUND }, (_, i) => `f${String(i).padStart(2, "0")}`);
/** Every fourth detached run is doomed: it ends FAILED and is retried by hand. */
const doomed = (key: string) => Number(key.slice(1)) % 10 === 3;
const allKeys = [...detachedKeys, ...foregroundKeys, "dup-d", "dup-f", "dup-m"];
const KEYS = new Set(allKeys);

/**
 * Run keys whose `start -d` exited 75: its driver neither took the run nor exited within the wait (15 s),
 * which a starved CPU can stretch. Documented, so no violation; the run must still end without a `resume`.
 */
const unconfirmed: string[] = [];

async function startDetached(key: string) {
  const file = doomed(key) ? DOOMED_FLOW : cancelled.includes(key) ? GATED_FLOW : STORM_FLOW;
  const ran = await run(["start", "-d", "--run-key", key, file], new Set([...ALLOWED, 75]));
  if (ran.code === 75) unconfirmed.push(key);
  if (ran.code !== 0) return;
  const out = JSON.parse(ran.stdout);
  if (out.detached !== true) violation("not-detached", { key, out: ran.stdout.slice(0, 400) });
}

async function startForeground(key: string) {
  const ran = await run(["start", "-q", "--run-key", key, STORM_FLOW]);
  if (ran.code !== 0) violation("foreground-not-succeeded", { key, code: ran.code, stderr: ran.stderr.slice(-400) });
}

/** `DUP` `start -d` of one key at once: one reports `"detached": true`, the others `false`, all exit 0. */
async function duplicateDetached() {
  const results = await Promise.all(
    Array.from({ length: DUP }, () => run(["start", "-d", "--run-key", "dup-d", STORM_FLOW])),
  );
  const detached = results.filter((ran) => ran.code === 0 && JSON.parse(ran.stdout).detached === true).length;
  const codes = results.map((ran) => ran.code);
  console.log(JSON.stringify({ dup_detached: { detached_true: detached, codes } }));
  if (detached !== 1 || codes.some((code) => code !== 0)) violation("dup-detached", { detached, codes });
}

/** `DUP` foreground `start` of one key at once: all follow the one run and exit 0. */
async function duplicateForeground() {
  const results = await Promise.all(
    Array.from({ length: DUP }, () => run(["start", "-q", "--run-key", "dup-f", STORM_FLOW])),
  );
  const codes = results.map((ran) => ran.code);
  console.log(JSON.stringify({ dup_foreground: { codes } }));
  if (codes.some((code) => code !== 0)) violation("dup-foreground", { codes, stderr: results.map((r) => r.stderr) });
}

/**
 * One key started every way at once (cron's `start -d`, a CI's foreground `start`, an operator's
 * `resume -d`): at most one `start -d` reports `"detached": true`, none if a foreground one drives;
 * every foreground `start` exits 0, a `resume` 0 or 3 (the run was not created yet).
 */
async function duplicateMixed() {
  const n = Math.max(1, Math.floor(DUP / 3));
  const calls = [
    ...Array.from({ length: n }, () => run(["start", "-d", "--run-key", "dup-m", STORM_FLOW])),
    ...Array.from({ length: n }, () => run(["start", "-q", "--run-key", "dup-m", STORM_FLOW])),
    ...Array.from({ length: n }, () => run(["resume", "-d", "--run-key", "dup-m"])),
  ];
  const results = await Promise.all(calls);
  const codes = results.map((ran) => ran.code);
  const detached = results.slice(0, n).filter((ran) => ran.code === 0 && JSON.parse(ran.stdout).detached === true);
  console.log(JSON.stringify({ dup_mixed: { detached_true: detached.length, codes } }));
  const bad = codes.some((code, i) => code !== 0 && !(i >= 2 * n && code === 3));
  if (detached.length > 1 || bad) violation("dup-mixed", { detached: detached.length, codes });
}

async function waitFor(key: string, wanted: (status: string | null) => boolean) {
  for (let i = 0; i < 2400 && !wanted(statuses.get(key) ?? null); i++) await sleep(0.1);
}

const cancelled = detachedKeys.filter((key) => !doomed(key)).slice(-2);
async function markerOf(name: string) {
  for (let i = 0; i < 2400; i++) {
    try {
      Deno.statSync(join(MARKS, "d", name));
      return;
    } catch {
      await sleep(0.1);
    }
  }
  violation("never-started", { name });
}

/**
 * Cancels two runs while their first step runs (it waits for `marks/go`), then retries them; retries
 * the doomed runs once they FAILED.
 */
async function operator() {
  await Promise.all(cancelled.map((key) => markerOf(`${key}.s00.1`)));
  await Promise.all(cancelled.map((key) => run(["cancel", "--run-key", key, "--grace-seconds", "2"])));
  Deno.writeTextFileSync(join(MARKS, "go"), "");
  await Promise.all(cancelled.map((key) => run(["retry", "-d", "--run-key", key])));
  const failing = detachedKeys.filter(doomed);
  await Promise.all(failing.map((key) => waitFor(key, (status) => status === "FAILED")));
  // A cancel of a run that has ended changes nothing (exit 0); then the retry, in the foreground.
  await Promise.all(failing.map((key) => run(["cancel", "--run-key", key])));
  await Promise.all(failing.map((key) => run(["retry", "-q", "--run-key", key])));
}

async function storm() {
  const pick = (keys: string[]) => keys[Math.floor(Math.random() * keys.length)];
  const pollers = [
    poller(() => ["list", "--limit", "0"], noteList),
    poller(() => ["status", "--run-key", pick(allKeys), "--format", "table"]),
    poller(() => ["job", "status", "--running"]),
  ];
  const sampler = (async () => {
    while (!stormOver) {
      sampleDrivers();
      await sleep(0.3);
    }
  })();
  const work = [
    ...detachedKeys.map(startDetached),
    ...foregroundKeys.map(startForeground),
    duplicateDetached(),
    duplicateForeground(),
    duplicateMixed(),
    operator(),
  ];
  await Promise.all(work);
  // The detached runs end by themselves: wait for that while the pollers go on.
  await Promise.all(detachedKeys.map((key) => waitFor(key, (status) => isEnded(status))));
  await waitFor("dup-d", isEnded);
  await waitFor("dup-m", isEnded);
  stormOver = true;
  await Promise.all([...pollers, sampler]);
}

const isEnded = (status: string | null) => status === "SUCCEEDED" || status === "FAILED" || status === "CANCELLED";

// ---------------------------------------------------------------------------------------------------
// Checks

async function finalRuns(): Promise<
  Record<string, { status: string; steps: { id: string; attempt_no: number; status: string }[] }>
> {
  const runs: Record<string, { status: string; steps: { id: string; attempt_no: number; status: string }[] }> = {};
  for (const key of allKeys) {
    let ran = await run(["status", "--run-key", key]);
    if (ran.code === 0 && !isEnded(JSON.parse(ran.stdout).status)) {
      violation("not-ended", { key, status: JSON.parse(ran.stdout).status });
      await run(["resume", "-q", "--run-key", key]);
      ran = await run(["status", "--run-key", key]);
    }
    if (ran.code !== 0) {
      violation("status-failed", { key, code: ran.code });
      continue;
    }
    runs[key] = JSON.parse(ran.stdout);
  }
  return runs;
}

function checkMarkers(runs: Awaited<ReturnType<typeof finalRuns>>) {
  try {
    violation("attempt-ran-twice", { attempts: Deno.readTextFileSync(join(MARKS, "double.log")).split("\n") });
  } catch { /* none */ }
  const marked = new Set([...Deno.readDirSync(join(MARKS, "d"))].map((entry) => entry.name));
  let attempts = 0;
  for (const [key, state] of Object.entries(runs)) {
    if (state.status !== "SUCCEEDED") violation("not-succeeded", { key, status: state.status });
    for (const step of state.steps) {
      for (let n = 1; n <= step.attempt_no; n++) {
        attempts++;
        if (!marked.delete(`${key}.${step.id}.${n}`)) {
          // A cancel may abort an attempt before its command ran.
          if (!cancelled.includes(key) || step.status !== "SUCCEEDED" || n === step.attempt_no) {
            violation("attempt-not-run", { key, step: step.id, attempt: n, status: step.status });
          }
        }
      }
    }
  }
  if (marked.size > 0) violation("marker-without-attempt", { markers: [...marked].slice(0, 20) });
  return attempts;
}

function checkDriverLogs() {
  for (const entry of Deno.readDirSync(join(HOME, "logs"))) {
    if (entry.name.endsWith(".stderr.log")) {
      checkStderr(Deno.readTextFileSync(join(HOME, "logs", entry.name)), entry.name);
    }
  }
}

async function checkLeftovers() {
  for (let i = 0; i < 40 && processesOfHome().length > 0; i++) await sleep(0.25);
  const left = processesOfHome();
  if (left.length > 0) violation("processes-left", { left: left.map((proc) => proc.cmdline.join(" ").slice(0, 200)) });
  const integrity = new Deno.Command("sqlite3", { args: [DB, "PRAGMA integrity_check;"] }).outputSync();
  const said = new TextDecoder().decode(integrity.stdout).trim();
  if (said !== "ok") violation("integrity", { said });
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return Math.round(sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? NaN);
}

let stormStatus: number[] = [];
async function idleStatus(): Promise<number[]> {
  stormStatus = [...timings.get("status --run-key --format table") ?? []];
  const times: number[] = [];
  for (let i = 0; i < 20; i++) times.push((await run(["status", "--run-key", "d00", "--format", "table"])).ms);
  return times;
}

function report(wallSeconds: number, attempts: number, idle: number[]) {
  const storm = stormStatus;
  const slowest = Object.fromEntries(
    [...timings].map(([kind, values]) => [kind, { n: values.length, max_ms: Math.round(Math.max(...values)) }]),
  );
  console.log(JSON.stringify(
    {
      wall_s: wallSeconds,
      runs: allKeys.length,
      attempts,
      status_table_storm_ms: { n: storm.length, p50: percentile(storm, 0.5), p95: percentile(storm, 0.95) },
      status_table_idle_ms: { p50: percentile(idle, 0.5), p95: percentile(idle, 0.95) },
      max_fds_per_driver: peaks.fds,
      peak_rss_all_drivers_mib: Math.round(peaks.rssKib / 1024),
      peak_drivers: peaks.drivers,
      start_d_unconfirmed_75: unconfirmed,
      slowest,
      exits: Object.fromEntries([...exits].filter(([kind]) => !kind.startsWith("status --run-key --format table"))),
      load: Deno.loadavg(),
    },
    null,
    1,
  ));
}

async function main() {
  console.log(
    JSON.stringify({ home: HOME, detached: DETACHED, foreground: FOREGROUND, dup: DUP, load: Deno.loadavg() }),
  );
  await storm();
  const wall = since();
  const runs = await finalRuns();
  const attempts = checkMarkers(runs);
  checkDriverLogs();
  await checkLeftovers();
  const idle = await idleStatus();
  report(wall, attempts, idle);
  console.log(JSON.stringify({ violations: violations.length }));
  if (!KEEP && violations.length === 0) Deno.removeSync(HOME, { recursive: true });
  Deno.exit(violations.length > 0 ? 1 : 0);
}

await main();
