// deno-lint-ignore-file no-console -- a benchmark report is printed output
/**
 * `deno task bench:size` (also part of `deno task bench`): time and peak RSS of `validate` and of
 * `status` (JSON and table) for flows of 1k, 10k and 100k steps, each a CLI process, and of `watch
 * --no-advance` following the run (left PENDING, no driver: every refresh reads it whole) for 5 s at
 * 0.2 s refreshes, beside `status --format table` (one read and one table) as its floor, and of
 * `list` of every run created so far (three of each size: it loads each whole for its step counts). Each runs with
 * the shipped binary's V8 flags (src/cli/self.ts). The baseline is
 * `--version` (Deno start-up) measured in the same run; figures are also given net of it, and the
 * 10k→100k ratio of the net time shows whether the cost grows linearly (10×) or worse. In-process
 * (bench/size_stages.ts), each stage on its own: the `when: !…` rewrite, load (the rewrite, parsing,
 * validation), store (create the run), read back (a new process's view of the stored definition),
 * and decide (the first round, and the round where the last step's 100k-wide wait is evaluated).
 *
 * The flows mix the shapes that used to be quadratic or recursive: unquoted `when: !…` values (the
 * YAML rewrite), `depends_on` chains, and a step that waits for every other one.
 */
import { join } from "node:path";
import { V8_FLAGS } from "../src/cli/self.ts";

const SIZES = (Deno.env.get("BENCH_SIZES") ?? "1000,10000,100000").split(",").map(Number);
const REPO = new URL("..", import.meta.url).pathname;
const CLI = [
  Deno.execPath(),
  "run",
  "--allow-all",
  "--no-prompt",
  "--config",
  join(REPO, "deno.json"),
  `--v8-flags=${V8_FLAGS}`,
  join(REPO, "main.ts"),
];
/** How long the `watch` figure follows the run, and its refresh interval. */
const FOLLOW_SECONDS = 5;
const FOLLOW_INTERVAL = "0.2";
const TIME = "/usr/bin/time";
const hasTime = (() => {
  try {
    return Deno.statSync(TIME).isFile;
  } catch {
    return false;
  }
})();

function flowText(steps: number): string {
  const lines = ["flow_id: size", "steps:"];
  for (let i = 0; i < steps - 1; i++) {
    lines.push(`  - id: s${i}`, `    command: [echo, "${i}"]`);
    if (i === 0) continue;
    if (i % 3 === 0) lines.push(`    when: !s${i - 1} || s0`);
    else if (i % 3 === 1) lines.push(`    depends_on: [s${i - 1}]`);
    else lines.push(`    when:\n      !s${i - 1}\n      && s${i - 2}`);
  }
  lines.push(
    `  - id: last`,
    `    command: [echo, last]`,
    `    depends_on: [${Array.from({ length: steps - 1 }, (_, i) => `s${i}`).join(", ")}]`,
  );
  return lines.join("\n") + "\n";
}

interface Sample {
  seconds: number;
  /** User + system CPU time: steadier than wall time on a shared machine. */
  cpuSeconds: number;
  rssMiB: number;
}

/**
 * One CLI process: wall time, and peak RSS from /usr/bin/time when it is there. With `followSeconds`,
 * a command that follows until stopped, stopped with SIGINT after that long (it must then exit 130).
 */
async function measure(args: string[], env: Record<string, string>, followSeconds?: number): Promise<Sample> {
  const stopAfter = followSeconds === undefined
    ? []
    : ["timeout", "--preserve-status", "-s", "INT", String(followSeconds)];
  const command = [...stopAfter, ...CLI, ...args];
  const argv = hasTime ? [TIME, "-f", "%M %U %S", ...command] : command;
  const started = performance.now();
  const output = await new Deno.Command(argv[0], { args: argv.slice(1), env, stdout: "null", stderr: "piped" })
    .output();
  const seconds = (performance.now() - started) / 1000;
  const stderr = new TextDecoder().decode(output.stderr).trim().split("\n");
  if (followSeconds === undefined ? !output.success : output.code !== 130) {
    throw new Error(`${args.join(" ")} failed: ${stderr.join("\n")}`);
  }
  const [rss, user, system] = hasTime ? stderr.at(-1)!.split(" ").map(Number) : [NaN, NaN, NaN];
  return { seconds, cpuSeconds: user + system, rssMiB: rss / 1024 };
}

/** In-process milliseconds of each stage, in a fresh process (bench/size_stages.ts); creates the run. */
async function stages(file: string, dbPath: string, runKey: string): Promise<Record<string, number>> {
  const args = ["run", "--allow-all", "--no-prompt", "--v8-flags=--expose-gc", "--config", join(REPO, "deno.json")];
  const output = await new Deno.Command(Deno.execPath(), {
    args: [...args, join(REPO, "bench", "size_stages.ts"), file, dbPath, runKey],
    stderr: "inherit",
  }).output();
  if (!output.success) throw new Error(`size_stages.ts failed for ${file}`);
  return JSON.parse(new TextDecoder().decode(output.stdout));
}

const loadBefore = Deno.loadavg();
const home = Deno.makeTempDirSync({ prefix: "ojf-bench-size-" });
const env = { ORCHESJOB_FLOW_HOME: home, NO_COLOR: "1" };
const results = new Map<number, Record<string, Sample>>();
const WATCH = `watch ${FOLLOW_SECONDS} s`;
const LIST = "list (3 runs of each size so far)";
const inProcess = new Map<number, Record<string, number>>();
try {
  await measure(["--version"], env); // warm the module cache
  const base = await measure(["--version"], env);
  for (const steps of SIZES) {
    const file = join(home, `flow-${steps}.yaml`);
    Deno.writeTextFileSync(file, flowText(steps));
    const runKey = `size-${steps}`;
    inProcess.set(steps, await stages(file, join(home, "orchesjob-flow.sqlite3"), runKey));
    results.set(steps, {
      validate: await measure(["validate", file], env),
      "status json": await measure(["status", "--run-key", runKey], env),
      "status table": await measure(["status", "--run-key", runKey, "--format", "table"], env),
      // Every run so far: size_stages.ts leaves 3 of each size.
      [LIST]: await measure(["list"], env),
      [WATCH]: await measure(
        ["watch", "--run-key", runKey, "--no-advance", "--interval", FOLLOW_INTERVAL],
        env,
        FOLLOW_SECONDS,
      ),
    });
  }
  const load = (figures: number[]) => figures.map((n) => n.toFixed(1)).join(" ");
  console.log(
    `flow size: ${navigator.hardwareConcurrency} cores, load ${load(loadBefore)} -> ${load(Deno.loadavg())}, ` +
      new Date().toISOString(),
  );
  console.log(
    `one CLI process per figure (wall time, CPU time, peak RSS); baseline \`--version\` ` +
      `${base.seconds.toFixed(2)} s, CPU ${base.cpuSeconds.toFixed(2)} s, ${base.rssMiB.toFixed(0)} MiB`,
  );
  for (const command of ["validate", "status json", "status table", WATCH, LIST]) {
    console.log(`  ${command}`);
    for (const steps of SIZES) {
      const sample = results.get(steps)![command];
      console.log(
        `    ${String(steps).padStart(6)} steps: ${sample.seconds.toFixed(2)} s, CPU ${
          sample.cpuSeconds.toFixed(2)
        } s ` +
          `(net of start-up ${(sample.cpuSeconds - base.cpuSeconds).toFixed(2)} s), ${sample.rssMiB.toFixed(0)} MiB` +
          (command === WATCH ? ` (status table ${results.get(steps)!["status table"].rssMiB.toFixed(0)} MiB)` : ""),
      );
    }
    const from = results.get(10000)?.[command];
    const to = results.get(100000)?.[command];
    if (from && to) {
      const net = (s: Sample) => s.cpuSeconds - base.cpuSeconds;
      console.log(
        `    10k→100k: wall ×${(to.seconds / from.seconds).toFixed(1)}, net CPU ×${
          (net(to) / net(from)).toFixed(1)
        }, ` +
          `RSS ×${(to.rssMiB / from.rssMiB).toFixed(1)} (linear: ×10 net)`,
      );
    }
  }
  console.log("  in-process stages, a fresh process per size, best of 3 after a full GC (ms; linear is ×10)");
  for (const stage of Object.keys(inProcess.get(SIZES[0]) ?? {})) {
    const figures = SIZES.map((steps) => `${String(steps).padStart(6)}: ${inProcess.get(steps)![stage].toFixed(0)}`);
    const from = inProcess.get(10000)?.[stage];
    const to = inProcess.get(100000)?.[stage];
    const ratio = from && to ? `, 10k→100k ×${(to / from).toFixed(1)}` : "";
    console.log(`    ${stage.padEnd(13)} ${figures.join(", ")}${ratio}`);
  }
} finally {
  Deno.removeSync(home, { recursive: true });
}
