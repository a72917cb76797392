// deno-lint-ignore-file no-console -- the chaos report is printed output
/**
 * Chaos soak (opt-in, never part of `deno task test`): for `--minutes M`, `--actors A` concurrent actors
 * run random commands (`start`, `start -d`, `resume [-d]`, `retry [-d]`, `cancel`, `tick`, `clean`,
 * `status`, `list`, `wait [--advance]`) of the real CLI with the built-in runner on `--keys K` run keys
 * of one state file, whose flows have mixed shapes (a chain with retries, a fan-out with a join and a
 * failure branch, `when` branches with a timeout, a retry-heavy step before a wide fan-out). Every
 * step command appends to `marks/ran.log` and makes `marks/d/<gen>.<run>.<step>.<attempt>` with
 * mkdir, which fails when the same attempt of the same run (a run's `gen` is a variable of the `start`
 * that created it, kept with the run) runs a second time. Meanwhile a fault loop, at random: SIGKILLs
 * CLI processes (foreground commands and detached drivers), launch servers, job supervisors and job
 * commands; SIGSTOPs a CLI process for 1-5 s; holds the state file's write lock from `sqlite3`
 * (BEGIN IMMEDIATE) for 1-20 s; interrupts foreground drivers with SIGTERM. Then the faults stop,
 * every run is resumed and waited for, and the invariants are checked:
 *   1. no attempt's command ran twice (mkdir guard), and every SUCCEEDED step's attempt ran;
 *   2. every run ends (terminal status, every step ended, no job left STARTING/RUNNING, no process of
 *      the state home left alive);
 *   3. every line any CLI wrote on stderr (also detached drivers' logs) is one JSON object;
 *   4. every exit code is a documented one (README "Exit codes"); 65, 70 and 74 count as violations,
 *      since nothing here damages or replaces the state file.
 *
 * With `--external` (or `--orchesjob-bin PATH`), steps run through the external executor path: the CLI's
 * orchesjob is a bash wrapper around this project's `orchesjob-flow job` (its own state file in
 * `orchesjob-home/`; or around PATH) that, until the faults stop, fails a call with "database is locked"
 * (exit 1), answers non-JSON, hangs 2-8 s, or SIGKILLs itself, before forwarding it or after (the call
 * took effect, its answer is lost or late); the fault loop also kills orchesjob calls and holds
 * orchesjob's write lock. Every command has a watchdog (`--watchdog`, 120 s; a foreground driver:
 * 30 s after its SIGTERM): one that outlives it is a violation, with its process tree, its run's steps
 * and the last orchesjob calls. `--mix detached` runs mostly `start -d`, `resume -d` and `retry -d`;
 * a -d that exits 130 carries its driver's log and what the fault loop did to the driver.
 *
 *   deno task chaos --minutes 10 [--actors 4] [--keys 4] [--seed N] [--faults all|kill|stop|lock|none]
 *     [--external | --orchesjob-bin PATH] [--wrapper-faults none] [--mix detached] [--watchdog S] [--keep]
 *
 * Exit 1 when an invariant broke (each violation is printed as a JSON line), else 0.
 */
import { join } from "node:path";
import { CLI, jsonObjectLine, REPO, seededRandom, TEST_ENV } from "../tests/helpers.ts";

// ---------------------------------------------------------------------------------------------------
// Options

function option(name: string, fallback: string): string {
  const at = Deno.args.indexOf(`--${name}`);
  return at >= 0 ? Deno.args[at + 1] : fallback;
}
const MINUTES = Number(option("minutes", "5"));
const ACTORS = Number(option("actors", "4"));
const KEYS = Number(option("keys", "4"));
const SEED = Number(option("seed", String(Date.now() % 1_000_000)));
const FAULTS = option("faults", "all");
const KEEP = Deno.args.includes("--keep");
/** `detached`: mostly `start -d`, `resume -d`, `retry -d` (with cancels to reopen runs); else the mixed operators. */
const MIX = option("mix", "all");
/**
 * The external executor path: `--orchesjob-bin PATH` an orchesjob-compatible program, or `--external`
 * this project's own `orchesjob-flow job` (with a state file of its own); either behind the faulty
 * wrapper below unless `--wrapper-faults none`.
 */
const INNER_BIN = option("orchesjob-bin", "");
const EXTERNAL = INNER_BIN !== "" || Deno.args.includes("--external");
const WRAPPER_FAULTS = option("wrapper-faults", "all") !== "none";
/** Seconds after which any CLI call that has not ended (nor been interrupted on purpose) is reported as hung. */
const WATCHDOG = Number(option("watchdog", "120"));
const random = seededRandom(SEED);
const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)];
const between = (low: number, high: number) => low + random() * (high - low);
const sleep = (seconds: number) => new Promise((resolve) => setTimeout(resolve, seconds * 1000));

const HOME = Deno.makeTempDirSync({ prefix: "ojf-chaos-" });
const DB = join(HOME, "state.sqlite3");
const MARKS = join(HOME, "marks");
Deno.mkdirSync(join(MARKS, "d"), { recursive: true });
const TAG = `chaos-step-${HOME.split("/").pop()}`;
const KEY_NAMES = Array.from({ length: KEYS }, (_, i) => `k${i}`);
/** The external orchesjob's own home and state file (the built-in job CLI's, with `--external`). */
const JOB_HOME = join(HOME, "orchesjob-home");
const JOB_DB = join(JOB_HOME, "orchesjob-flow.sqlite3");
const WRAPPER = join(HOME, "orchesjob-wrapper");
/** While this file exists the wrapper injects its faults. */
const WRAPPER_FAULTS_ON = join(HOME, "wrapper-faults-on");
/** One line per wrapper call: its PID, the call, and the fault it chose. */
const CALLS_LOG = join(HOME, "wrapper-calls.log");

/**
 * The orchesjob the CLI is given on the external path: a bash script that forwards each call to the
 * inner program and, while {@link WRAPPER_FAULTS_ON} exists, at random: fails it with orchesjob's
 * "database is locked" (exit 1), answers non-JSON, hangs 2-8 s, or SIGKILLs itself, either before
 * forwarding the call (nothing happened) or after it (the call took effect and its answer is lost or late).
 */
function writeWrapper(): string {
  const quote = (arg: string) => `'${arg.replaceAll("'", "'\\''")}'`;
  const inner = INNER_BIN !== "" ? [INNER_BIN] : [...CLI, "--db", JOB_DB, "job"];
  Deno.mkdirSync(JOB_HOME, { recursive: true });
  if (WRAPPER_FAULTS) Deno.writeTextFileSync(WRAPPER_FAULTS_ON, "");
  const script = `#!/bin/bash
inner=(${inner.map(quote).join(" ")})
fault=none
[ -e ${quote(WRAPPER_FAULTS_ON)} ] && fault=$(( RANDOM % 100 ))
case $fault in
  none) ;;
  [0-1]) fault=locked-before ;;
  [2-3]) fault=garbage-before ;;
  [4-5]) fault=hang-before ;;
  6) fault=kill-before ;;
  [7-8]) fault=locked-after ;;
  9) fault=garbage-after ;;
  1[0-1]) fault=hang-after ;;
  1[2-3]) fault=kill-after ;;
  *) fault=none ;;
esac
echo "$$ $1 $fault" >> ${quote(CALLS_LOG)}
case $fault in
  none) exec "\${inner[@]}" "$@" ;;
  locked-before) echo "Error: database is locked" >&2; exit 1 ;;
  garbage-before) echo "<html>502 Bad Gateway</html>"; exit 0 ;;
  hang-before) sleep "$(( RANDOM % 7 + 2 ))"; exec "\${inner[@]}" "$@" ;;
  kill-before) kill -KILL $$ ;;
esac
out=$(mktemp) err=$(mktemp)
"\${inner[@]}" "$@" > "$out" 2> "$err"
code=$?
case $fault in
  locked-after) rm -f "$out" "$err"; echo "Error: database is locked" >&2; exit 1 ;;
  garbage-after) rm -f "$out" "$err"; echo "Traceback (most recent call last):"; exit 0 ;;
  hang-after) sleep "$(( RANDOM % 7 + 2 ))" ;;
  kill-after) rm -f "$out" "$err"; kill -KILL $$ ;;
esac
cat "$out"; cat "$err" >&2; rm -f "$out" "$err"
exit "$code"
`;
  Deno.writeTextFileSync(WRAPPER, script);
  Deno.chmodSync(WRAPPER, 0o755);
  return WRAPPER;
}
if (EXTERNAL) writeWrapper();
const EXECUTOR = EXTERNAL ? ["--executor", "orchesjob", "--orchesjob-bin", WRAPPER] : ["--executor", "builtin"];

// ---------------------------------------------------------------------------------------------------
// Flows

/**
 * A step command: marks the attempt (the mkdir fails on a second run of it), sleeps 0.05-1.95 s (or
 * `sleep` when given), and fails with probability `failPercent`.
 */
function command(failPercent: number, sleepText?: string): string {
  const id = '"$CHAOS_GEN.$ORCHESJOB_FLOW_RUN_KEY.$ORCHESJOB_FLOW_STEP_ID.$ORCHESJOB_FLOW_ATTEMPT"';
  return [
    `: ${TAG}`,
    `id=${id}`,
    `echo "$id $$" >> "$CHAOS_MARKS/ran.log"`,
    `mkdir "$CHAOS_MARKS/d/$id" 2> /dev/null || echo "$id" >> "$CHAOS_MARKS/double.log"`,
    "n=$(od -An -N1 -tu1 /dev/urandom | tr -d ' ')",
    sleepText ?? 'sleep "$((n % 2)).$((n % 10))5"',
    `[ "$(( (n * 7) % 100 ))" -ge ${failPercent} ] || { echo "chaos: failing on purpose" >&2; exit 3; }`,
  ].join("; ");
}

interface StepSpec {
  id: string;
  when?: string;
  depends_on?: string[];
  retries?: number;
  retry_delay_sec?: number;
  retry_on_exit_codes?: number[];
  timeout_sec?: number;
  command: string;
}

const FLOWS: Record<string, StepSpec[]> = {
  chain: ["a", "b", "c", "d"].map((id, i) => ({
    id,
    ...(i > 0 ? { when: ["a", "b", "c"][i - 1] } : {}),
    retries: 2,
    command: command(25),
  })),
  fanout: [
    { id: "a", retries: 1, command: command(15) },
    ...["b", "c", "d", "e"].map((id) => ({ id, when: "a", retries: 1, command: command(20) })),
    { id: "f", when: "b && c && d && e", command: command(10) },
    { id: "g", when: "!f", depends_on: ["f"], command: command(0, "sleep 0.05") },
  ],
  branches: [
    { id: "a", command: command(50) },
    { id: "b", when: "a", retries: 1, retry_on_exit_codes: [3], command: command(30) },
    { id: "c", when: "!a", timeout_sec: 1, retries: 1, command: command(10, 'sleep "$((n % 3))"') },
    { id: "d", when: "b || c", retries: 2, retry_delay_sec: 0.3, command: command(20) },
  ],
  retries: [
    { id: "x", retries: 3, retry_delay_sec: 0.2, command: command(60) },
    ...["z1", "z2", "z3", "z4", "z5", "z6"].map((id) => ({
      id,
      when: "x",
      command: command(5, "sleep 0.0$((n % 9 + 1))"),
    })),
    { id: "y", when: "z1 && z2 && z3 && z4 && z5 && z6", retries: 1, command: command(20) },
  ],
};
// On the external path a run key comes again after clean while orchesjob keeps its jobs: a strict step
// (the default) is then refused (its key ran before), so the first two flows' steps are not strict,
// and their attempts get new jobs under the old keys (the driver unlocks such a key, then starts it, strict).
const NOT_STRICT = new Set(EXTERNAL ? ["chain", "fanout"] : []);
const FLOW_FILES: string[] = Object.entries(FLOWS).map(([name, steps]) => {
  const file = join(HOME, `${name}.json`);
  const shaped = NOT_STRICT.has(name) ? steps.map((step) => ({ ...step, strict: false })) : steps;
  Deno.writeTextFileSync(file, JSON.stringify({ flow_id: name, steps: shaped }, null, 1));
  return file;
});
const flowOf = (key: string) => FLOW_FILES[KEY_NAMES.indexOf(key) % FLOW_FILES.length];

// ---------------------------------------------------------------------------------------------------
// Running the CLI, and what it said

const ALLOWED_CODES = new Set([0, 1, 2, 3, 4, 5, 75, 124, 130]);
const BAD_CODES = new Set([65, 70, 74]);
const violations: Record<string, unknown>[] = [];
function violation(kind: string, detail: Record<string, unknown>) {
  const entry = { kind, ...detail, at: Math.round((performance.now() - t0) / 100) / 10 };
  violations.push(entry);
  console.log(JSON.stringify({ violation: entry }));
}
const counts: Record<string, number> = {};
const count = (name: string, n = 1) => counts[name] = (counts[name] ?? 0) + n;
/** Error messages seen on stderr, with digits and paths blurred, and how often. */
const messages = new Map<string, number>();
/** PIDs of our own CLI processes that the fault loop or a watchdog signalled (their end is ours). */
const signalled = new Set<number>();
const t0 = performance.now();

/** Lines of `text` that are not one JSON object each; each good one is counted into `messages`. */
function checkStderr(text: string, where: string, command: string) {
  for (const line of text.split("\n")) {
    if (line === "") continue;
    const parsed = jsonObjectLine(line);
    if (parsed === null) {
      violation("non-json-stderr", { where, command, line: line.slice(0, 400) });
      continue;
    }
    const text = String(parsed.error ?? parsed.warning ?? "");
    const blurred = text.replaceAll(HOME, "H").replace(/\d+(\.\d+)?/g, "N").slice(0, 160);
    messages.set(`${command}: ${blurred}`, (messages.get(`${command}: ${blurred}`) ?? 0) + 1);
  }
}

interface Ran {
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs the CLI with `args`; after `limit` seconds sends SIGTERM (a foreground driver then exits 130),
 * and 30 s later, if it still runs, reports it as hung and SIGKILLs it.
 */
async function run(args: string[], limit: number, gen = crypto.randomUUID().slice(0, 8)): Promise<Ran> {
  const name = args[0] + (args.includes("-d") ? " -d" : "");
  count(`cmd ${name}`);
  // Each command leads a process group of its own, as a shell's job would: in the soak's group, a
  // stopped command would get the kernel's SIGHUP for an orphaned group with stopped members whenever
  // another member exited (the soak runs under nohup, its group orphaned), a fault of this harness.
  const child = new Deno.Command("perl", {
    args: [
      "-e",
      "setpgrp(0, 0); exec @ARGV or die",
      ...CLI,
      "--db",
      DB,
      "--poll-interval",
      "0.1",
      ...EXECUTOR,
      ...args,
    ],
    cwd: HOME,
    // ORCHESJOB_HOME: where the driver watches for job-end hints of the external orchesjob.
    env: { ...TEST_ENV, CHAOS_GEN: gen, CHAOS_MARKS: MARKS, ORCHESJOB_HOME: EXTERNAL ? JOB_HOME : "" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  live.add(child.pid);
  let termed = false;
  // Only a foreground driver (and a wait) is interrupted on purpose, as an operator's Ctrl-C; any other
  // command must end by itself, and one that outlives the watchdog has hung.
  const driving = ["start", "resume", "retry", "wait"].includes(args[0]) && !args.includes("-d");
  const term = driving
    ? setTimeout(() => {
      termed = true;
      signalled.add(child.pid);
      try {
        child.kill("SIGTERM");
      } catch { /* ended */ }
    }, limit * 1000)
    : undefined;
  const hung = setTimeout(() => {
    violation(driving ? "hung-after-sigterm" : "hung", {
      args,
      pid: child.pid,
      seconds: driving ? limit + 30 : Math.max(WATCHDOG, limit),
      state: snapshot(args, child.pid),
    });
    try {
      child.kill("SIGCONT");
      child.kill("SIGKILL");
    } catch { /* ended */ }
  }, (driving ? limit + 30 : Math.max(WATCHDOG, limit)) * 1000);
  const key = args.includes("--run-key") ? args[args.indexOf("--run-key") + 1] : null;
  const genBefore = args[0] === "status" && key !== null ? genOf(key) : undefined;
  const out = await child.output();
  if (genBefore !== undefined && out.code === 0) checkSucceededRan(key!, out.stdout, genBefore);
  clearTimeout(term);
  clearTimeout(hung);
  live.delete(child.pid);
  const stdout = new TextDecoder().decode(out.stdout);
  const stderr = new TextDecoder().decode(out.stderr);
  const ours = signalled.delete(child.pid);
  checkStderr(stderr, "cli", name);
  if (out.signal !== null) {
    count(`signal ${out.signal}`);
    if (!ours) violation("unexpected-signal", { args, signal: out.signal, stderr: stderr.slice(-400) });
    // A command listens for SIGTERM from its start; only `deno run` loading it (before any of it runs)
    // dies of it, which takes well under 8 s even on a loaded machine.
    if (out.signal === "SIGTERM" && termed && limit > 8) {
      violation("died-of-sigterm", { args, limit, stderr: stderr.slice(-400) });
    }
  } else {
    count(`exit ${name} ${out.code}`);
    if (BAD_CODES.has(out.code) || !ALLOWED_CODES.has(out.code)) {
      violation("bad-exit-code", { args, code: out.code, stderr: stderr.slice(-600) });
    }
    if (out.code === 130 && !termed && !ours) {
      let error: unknown = stdout.slice(-400);
      let driver: Record<string, unknown> = {};
      try {
        const said = JSON.parse(stdout);
        error = said.error; // -d: what became of the background driver
        driver = { pid: said.pid, faults: faultLog.get(said.pid) ?? [], log: tail(said.stderr_log, 1200) };
      } catch { /* not one JSON value */ }
      // A -d whose background driver the fault loop killed before it took the run says so (130); a
      // SIGKILL that the fault loop did not send is no fault of this harness.
      const killedByUs = ((driver.faults ?? []) as string[]).some((f) => f.startsWith("SIGKILL@"));
      if (!String(error).includes("background driver was killed by SIGKILL") || !killedByUs) {
        violation("unexplained-130", { args, stderr: stderr.slice(-400), error, driver });
      } else count(`130 ${name}: driver SIGKILLed by the fault loop`);
    }
  }
  return { code: out.code, signal: out.signal, stdout, stderr };
}
/**
 * What a hung command was doing: its process tree (state, wait channel, command line), the run's status
 * from the state file, and the last calls of the external orchesjob.
 */
function snapshot(args: string[], pid: number): Record<string, unknown> {
  const tree: string[] = [];
  const children = (parent: number): number[] => {
    try {
      return Deno.readTextFileSync(`/proc/${parent}/task/${parent}/children`).trim().split(" ").filter(Boolean).map(
        Number,
      );
    } catch {
      return [];
    }
  };
  const visit = (at: number, depth: number) => {
    let line = `${at}`;
    try {
      const stat = Deno.readTextFileSync(`/proc/${at}/stat`);
      const wchan = Deno.readTextFileSync(`/proc/${at}/wchan`);
      const cmd = Deno.readTextFileSync(`/proc/${at}/cmdline`).replaceAll("\0", " ").replaceAll(HOME, "H");
      line += ` ${stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3)} ${wchan} ${cmd.slice(0, 300)}`;
    } catch { /* gone */ }
    tree.push(`${"  ".repeat(depth)}${line}`);
    if (depth < 6) { for (const child of children(at)) visit(child, depth + 1); }
  };
  visit(pid, 0);
  const key = args[args.indexOf("--run-key") + 1];
  const run = args.includes("--run-key")
    ? rows(
      `SELECT status, (SELECT json_group_array(step_id || ':' || status || ':' || attempt_no || ':' || ` +
        `coalesce(executor_error, '')) FROM flow_steps s WHERE s.run_key = r.run_key) AS steps ` +
        `FROM flow_runs r WHERE run_key = '${key}'`,
    )
    : [];
  return { tree, run, calls: tail(CALLS_LOG, 1500) };
}

/** The `gen` of the run now under `key` (the variable of the `start` that created it), if there is one. */
function genOf(key: string): string | undefined {
  return rows(`SELECT json_extract(launch, '$.env.CHAOS_GEN') AS gen FROM flow_runs WHERE run_key = '${key}'`)[0]
    ?.gen as string | undefined;
}

/**
 * Every SUCCEEDED step that a `status` showed ran (its attempt's marker exists): checked on the way, as
 * a run deleted by clean before the end is never checked there. Only while the run's `gen` was the same
 * before and after the status (no clean and new start of the key in between).
 */
function checkSucceededRan(key: string, stdout: Uint8Array, genBefore: string) {
  if (genOf(key) !== genBefore) return;
  let state: { steps: { id: string; status: string; attempt_no: number }[] };
  try {
    state = JSON.parse(new TextDecoder().decode(stdout));
  } catch {
    return;
  }
  for (const step of state.steps ?? []) {
    if (step.status !== "SUCCEEDED") continue;
    try {
      Deno.statSync(join(MARKS, "d", `${genBefore}.${key}.${step.id}.${step.attempt_no}`));
    } catch {
      violation("succeeded-never-ran", {
        key,
        gen: genBefore,
        step: step.id,
        attempt: step.attempt_no,
        seen: "status",
      });
    }
  }
}

/** The last `size` characters of the file at `path` ("" when there is none). */
function tail(path: unknown, size: number): string {
  try {
    return Deno.readTextFileSync(String(path)).slice(-size);
  } catch {
    return "";
  }
}

/** Our CLI processes alive now. */
const live = new Set<number>();

// ---------------------------------------------------------------------------------------------------
// Actors

let stopping = false;

/** Half the time, `--step S` (of the key's flow) for a retry, sometimes with `--downstream`. */
function stepOption(key: string): string[] {
  if (random() < 0.5) return [];
  const steps = FLOWS[Object.keys(FLOWS)[KEY_NAMES.indexOf(key) % FLOW_FILES.length]];
  return ["--step", pick(steps).id, ...(random() < 0.5 ? ["--downstream"] : [])];
}

/** One operator command of the `detached` mix: mostly background drivers, with cancels so that retries reopen runs. */
async function detachedCommand(key: string) {
  const roll = random();
  if (roll < 0.3) await run(["start", "-d", "--run-key", key, flowOf(key)], 60);
  else if (roll < 0.5) await run(["resume", "-d", "--run-key", key], 60);
  else if (roll < 0.75) await run(["retry", "-d", "--run-key", key, ...stepOption(key)], 60);
  else if (roll < 0.85) await run(["cancel", "--run-key", key, "--grace-seconds", pick(["0", "0.5"])], 60);
  else if (roll < 0.92) await run(["clean", "--older-than", "0"], 60);
  else await run(["status", "--run-key", key], 60);
}

async function actor() {
  while (!stopping) {
    const key = pick(KEY_NAMES);
    const roll = random();
    const fg = between(0.5, 15);
    if (MIX === "detached") await detachedCommand(key);
    else if (roll < 0.14) await run(["start", "-q", "--run-key", key, flowOf(key)], fg);
    else if (roll < 0.26) await run(["start", "-d", "--run-key", key, flowOf(key)], 60);
    else if (roll < 0.34) await run(["resume", "-q", "--run-key", key], fg);
    else if (roll < 0.42) await run(["resume", "-d", "--run-key", key], 60);
    else if (roll < 0.52) await run(["retry", "-d", "--run-key", key, ...stepOption(key)], 60);
    else if (roll < 0.56) await run(["retry", "-q", "--run-key", key, ...stepOption(key)], fg);
    else if (roll < 0.64) await run(["cancel", "--run-key", key, "--grace-seconds", pick(["0", "0.5", "2"])], 60);
    else if (roll < 0.72) await run(["tick", "--run-key", key], 60);
    else if (roll < 0.75) await run(["status", "--run-key", key], 60);
    else if (roll < 0.78) {
      await run(
        ["clean", "--older-than", "0", ...(random() < 0.5 ? ["--status", pick(["FAILED", "CANCELLED"])] : [])],
        60,
      );
    } else if (roll < 0.86) await run(["status", "--run-key", key], 60);
    else if (roll < 0.9) await run(["list", "--limit", "0"], 60);
    else {await run([
        "wait",
        "--run-key",
        key,
        "--timeout",
        String(between(0.5, 5)),
        ...(random() < 0.5 ? ["--advance"] : []),
      ], 60);}
    await sleep(between(0, 0.5));
  }
}

// ---------------------------------------------------------------------------------------------------
// Faults

interface Proc {
  pid: number;
  /** `orchesjob`: a call of the external orchesjob (the wrapper, or the job CLI it runs). */
  kind: "cli" | "server" | "supervisor" | "batch" | "job" | "orchesjob";
}

/** Processes of this state home, by what they are. */
function processes(): Proc[] {
  const found: Proc[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    const pid = Number(entry.name);
    if (!Number.isInteger(pid) || pid === Deno.pid) continue;
    let cmdline: string;
    let stat: string;
    try {
      cmdline = Deno.readTextFileSync(`/proc/${pid}/cmdline`).replaceAll("\0", " ");
      stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    } catch {
      continue;
    }
    if (!cmdline.includes(HOME)) continue;
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (fields[0] === "Z") continue;
    const [pgrp, session] = [Number(fields[2]), Number(fields[3])];
    if (cmdline.includes(TAG)) found.push({ pid, kind: "job" });
    else if (cmdline.includes("orchesjob-flow-supervisor")) {
      // A session leader is a launch server or a batch's launcher (or a batch of one's supervisor);
      // a group leader in another's session, a job's supervisor.
      found.push({ pid, kind: pid === session ? "server" : pid === pgrp ? "supervisor" : "batch" });
    } else if (cmdline.includes(WRAPPER) || cmdline.includes(JOB_DB)) found.push({ pid, kind: "orchesjob" });
    else if (cmdline.includes("main.ts") && cmdline.includes(DB)) found.push({ pid, kind: "cli" });
  }
  return found;
}

/** What the fault loop did to each PID, and when (seconds since the start): read when a process ends oddly. */
const faultLog = new Map<number, string[]>();

function signal(pid: number, sig: Deno.Signal): boolean {
  try {
    if (live.has(pid)) signalled.add(pid);
    Deno.kill(pid, sig);
    const done = faultLog.get(pid) ?? [];
    done.push(`${sig}@${Math.round((performance.now() - t0) / 100) / 10}`);
    faultLog.set(pid, done);
    return true;
  } catch {
    return false;
  }
}

const stopped = new Set<number>();
const holders = new Set<Deno.ChildProcess>();

/** Holds the state file's write lock from sqlite3 for `seconds`. */
async function holdLock(seconds: number, db = DB) {
  // sqlite3 would create a missing file empty (zero bytes), which the CLI then refuses as truncated:
  // only a state file its own program has made is locked.
  try {
    if (Deno.statSync(db).size === 0) return;
  } catch {
    return;
  }
  const child = new Deno.Command("sqlite3", { args: [db], stdin: "piped", stdout: "null", stderr: "piped" }).spawn();
  holders.add(child);
  const writer = child.stdin.getWriter();
  const encode = (text: string) => new TextEncoder().encode(text);
  try {
    await writer.write(encode("PRAGMA busy_timeout = 30000;\nBEGIN IMMEDIATE;\n"));
    await sleep(seconds);
    await writer.write(encode("ROLLBACK;\n.quit\n"));
    await writer.close();
  } catch { /* killed */ }
  await child.status;
  holders.delete(child);
}

async function faults() {
  const kinds = FAULTS === "all"
    ? ["kill-cli", "kill-cli", "kill-server", "kill-supervisor", "kill-job", "stop", "lock"]
    : FAULTS === "kill"
    ? ["kill-cli", "kill-server", "kill-supervisor", "kill-job"]
    : FAULTS === "none"
    ? []
    : [FAULTS];
  // The external orchesjob's calls are killed, and its state file's write lock held, as often as the CLI's.
  if (EXTERNAL && (FAULTS === "all" || FAULTS === "kill")) kinds.push("kill-orchesjob", "kill-orchesjob");
  if (EXTERNAL && (FAULTS === "all" || FAULTS === "lock")) kinds.push("lock-orchesjob");
  while (!stopping) {
    await sleep(between(0.3, 2.5));
    if (kinds.length === 0 || stopping) continue;
    const kind = pick(kinds);
    const procs = processes();
    const of = (k: Proc["kind"][]) => procs.filter((p) => k.includes(p.kind) && !stopped.has(p.pid));
    if (kind === "lock" || kind === "lock-orchesjob") {
      if (holders.size === 0) {
        count(`fault ${kind}`);
        holdLock(between(1, 20), kind === "lock" ? DB : JOB_DB);
      }
      continue;
    }
    const target = kind === "kill-cli" || kind === "stop"
      ? of(["cli"])
      : kind === "kill-server"
      ? of(["server", "batch"])
      : kind === "kill-supervisor"
      ? of(["supervisor"])
      : kind === "kill-orchesjob"
      ? of(["orchesjob"])
      : of(["job"]);
    if (target.length === 0) continue;
    const victim = pick(target);
    if (kind === "stop") {
      if (!signal(victim.pid, "SIGSTOP")) continue;
      count("fault stop");
      stopped.add(victim.pid);
      setTimeout(() => {
        signal(victim.pid, "SIGCONT");
        stopped.delete(victim.pid);
      }, between(1, 5) * 1000);
    } else if (signal(victim.pid, "SIGKILL")) count(`fault ${kind}`);
  }
}

/**
 * How far each detached driver's stderr log was checked, and which file that was: `clean` removes the
 * logs of the runs it deletes, and a new driver of the key writes a new file, read from its start.
 */
const logOffsets = new Map<string, { ino: number | null; offset: number }>();

/** Checks the complete lines written to detached drivers' stderr logs since the last look. */
function scanDriverLogs() {
  try {
    for (const entry of Deno.readDirSync(join(HOME, "logs"))) {
      if (!entry.name.endsWith(".stderr.log")) continue;
      let text: string;
      let ino: number | null;
      try {
        ino = Deno.statSync(join(HOME, "logs", entry.name)).ino;
        text = Deno.readTextFileSync(join(HOME, "logs", entry.name));
      } catch {
        continue;
      }
      const seen = logOffsets.get(entry.name);
      let from = seen?.ino === ino ? seen.offset : 0;
      if (from > text.length) from = 0; // removed by clean and written anew
      const upTo = text.lastIndexOf("\n") + 1;
      if (upTo <= from) continue;
      checkStderr(text.slice(from, upTo), entry.name, "_drive");
      logOffsets.set(entry.name, { ino, offset: upTo });
    }
  } catch { /* no detached driver yet */ }
}

async function logScanner() {
  while (!stopping) {
    scanDriverLogs();
    await sleep(2);
  }
}

// ---------------------------------------------------------------------------------------------------
// The end: resume everything, then check

/** Whether the external orchesjob says the job of `key` is active. */
function activeNow(key: string): boolean {
  const out = new Deno.Command(WRAPPER, { args: ["status", "--run-key", key], env: TEST_ENV, stdout: "piped" })
    .outputSync();
  try {
    return ["STARTING", "RUNNING"].includes(JSON.parse(new TextDecoder().decode(out.stdout)).status);
  } catch {
    return true;
  }
}

function sql(query: string, db = DB): string {
  const out = new Deno.Command("sqlite3", { args: ["-readonly", "-json", db, query], stdout: "piped", stderr: "piped" })
    .outputSync();
  return new TextDecoder().decode(out.stdout);
}
const rows = (query: string, db = DB): Record<string, unknown>[] => JSON.parse(sql(query, db) || "[]");

async function finish() {
  stopping = true;
  try {
    Deno.removeSync(WRAPPER_FAULTS_ON);
  } catch { /* none */ }
  for (const pid of stopped) signal(pid, "SIGCONT");
  for (const child of holders) {
    try {
      child.kill("SIGKILL");
    } catch { /* ended */ }
  }
  await Promise.all(actorsDone);
  for (const pid of stopped) signal(pid, "SIGCONT");
  const ended = new Set(["SUCCEEDED", "FAILED", "CANCELLED"]);
  const stepEnded = new Set(["SUCCEEDED", "FAILED", "SKIPPED", "CANCELLED"]);
  for (const key of KEY_NAMES) {
    const known = await run(["status", "--run-key", key], 60);
    if (known.code === 3) continue;
    const resumed = await run(["resume", "-q", "--run-key", key], 300);
    const waited = await run(["wait", "--run-key", key, "--timeout", "120", "--advance"], 300);
    let state = JSON.parse((await run(["status", "--run-key", key], 60)).stdout);
    // A cancel the fault loop killed half done leaves steps RUNNING in a CANCELLED run: as README says,
    // a second cancel ends them (resume and wait only say so).
    if (state.status === "CANCELLED" && state.steps.some((s: { status: string }) => s.status === "RUNNING")) {
      await run(["cancel", "--run-key", key, "--grace-seconds", "1"], 300);
      state = JSON.parse((await run(["status", "--run-key", key], 60)).stdout);
    }
    const loose = state.steps.filter((s: { status: string }) => !stepEnded.has(s.status));
    if (!ended.has(state.status) || loose.length > 0) {
      violation("not-ended", {
        key,
        status: state.status,
        resume: resumed.code,
        wait: waited.code,
        steps: state.steps.map((s: { id: string; status: string; attempt_no: number; error: string }) =>
          `${s.id}:${s.status}:${s.attempt_no}:${s.error ?? ""}`.slice(0, 200)
        ),
      });
    }
    const gen = rows(`SELECT json_extract(launch, '$.env.CHAOS_GEN') AS gen FROM flow_runs WHERE run_key = '${key}'`)[0]
      ?.gen;
    for (const step of state.steps) {
      if (step.status !== "SUCCEEDED") continue;
      try {
        Deno.statSync(join(MARKS, "d", `${gen}.${key}.${step.id}.${step.attempt_no}`));
      } catch {
        violation("succeeded-never-ran", { key, gen, step: step.id, attempt: step.attempt_no });
      }
    }
  }
  const active = rows(
    "SELECT job_id, run_key, status FROM jobs WHERE status IN ('STARTING', 'RUNNING')",
    EXTERNAL ? JOB_DB : DB,
  );
  // orchesjob's table says what the last call found: a job that ended since is asked (the faults are off).
  const stillActive = EXTERNAL ? active.filter((job) => activeNow(String(job.run_key))) : active;
  if (stillActive.length > 0) violation("active-jobs-left", { jobs: stillActive });
  await sleep(3);
  const left = processes();
  if (left.length > 0) {
    violation("processes-left", {
      processes: left.map((p) => {
        let cmd = "";
        try {
          cmd = Deno.readTextFileSync(`/proc/${p.pid}/cmdline`).replaceAll("\0", " ").replaceAll(HOME, "H").slice(
            0,
            200,
          );
        } catch { /* gone */ }
        return { ...p, cmd };
      }),
    });
  }
  let doubles = "";
  try {
    doubles = Deno.readTextFileSync(join(MARKS, "double.log"));
  } catch { /* none */ }
  for (const id of doubles.split("\n").filter(Boolean)) violation("ran-twice", { id });
  let ran = "";
  try {
    ran = Deno.readTextFileSync(join(MARKS, "ran.log"));
  } catch { /* none */ }
  count("attempts run", ran.split("\n").filter(Boolean).length);
  if (EXTERNAL) {
    let calls = "";
    try {
      calls = Deno.readTextFileSync(CALLS_LOG);
    } catch { /* none */ }
    for (const line of calls.split("\n").filter(Boolean)) {
      const [, call, fault] = line.split(" ");
      count(`orchesjob ${call}`);
      if (fault !== "none") count(`orchesjob fault ${fault}`);
    }
  }
  scanDriverLogs();
  for (const row of rows("SELECT status, count(*) AS n FROM flow_runs GROUP BY status")) {
    count(`final run ${row.status}`, Number(row.n));
  }
}

// ---------------------------------------------------------------------------------------------------

console.error(
  JSON.stringify({
    home: HOME,
    seed: SEED,
    minutes: MINUTES,
    actors: ACTORS,
    keys: KEYS,
    faults: FAULTS,
    mix: MIX,
    repo: REPO,
  }),
);
const actorsDone = Array.from({ length: ACTORS }, () => actor());
actorsDone.push(faults(), logScanner());
const progress = setInterval(() => {
  console.error(
    JSON.stringify({ t: Math.round((performance.now() - t0) / 1000), violations: violations.length, counts }),
  );
}, 60_000);
await sleep(MINUTES * 60);
clearInterval(progress);
await finish();
const sorted = [...messages].sort((a, b) => b[1] - a[1]);
console.log(JSON.stringify(
  {
    seed: SEED,
    minutes: MINUTES,
    seconds: Math.round((performance.now() - t0) / 1000),
    counts: Object.fromEntries(Object.entries(counts).sort()),
    messages: Object.fromEntries(sorted.slice(0, 40)),
    violations: violations.length,
  },
  null,
  1,
));
if (!KEEP && violations.length === 0) Deno.removeSync(HOME, { recursive: true });
else console.error(`kept ${HOME}`);
Deno.exit(violations.length > 0 ? 1 : 0);
