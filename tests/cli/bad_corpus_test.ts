/**
 * Issue 10: every malformed flow in tests/fixtures/bad/ (see manifest.json there) gets its documented
 * exit code and one JSON error line naming the file and position, through `validate` and `start`:
 * no stack trace, no internal error (exit 1), no run using over 2 s of CPU, no file written outside
 * the state home.
 * All of the corpus runs in-process in one subprocess; a representative subset also runs through the
 * real CLI, one process per run.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { cli, CONFIG, REPO, tempDir, TEST_ENV } from "../helpers.ts";

interface Entry {
  file: string;
  exit: number;
  error: string;
  category: string;
}

const CORPUS = join(REPO, "tests", "fixtures", "bad");
const MANIFEST: Entry[] = JSON.parse(Deno.readTextFileSync(join(CORPUS, "manifest.json")));
/**
 * The bound for one run, in CPU time: the slow inputs it guards against (quadratic rewrites,
 * alias bombs, deep recursion) burn CPU, while waiting for a CPU on a loaded machine does not count.
 * In-process, so process start-up does not count either.
 */
const MAX_CPU_MILLISECONDS = 2000;
/** A run that does not end within this wall-clock time hangs (waiting, not computing): a hang guard, not a measurement. */
const HANG_MILLISECONDS = 60_000;

function listing(dir: string): string[] {
  return [...Deno.readDirSync(dir)].map((entry) => entry.name).sort();
}

function commandsFor(entry: Entry, index: number, home: string): string[][] {
  const path = join(CORPUS, entry.file);
  const globals = ["--db", join(home, "state.sqlite3"), "--executor", "builtin", "--poll-interval", "0.1"];
  return [["validate", path], [...globals, "start", "--run-key", `bad-${index}`, path]];
}

/** Checks one run's exit code and stderr against the manifest entry. */
function checkRun(entry: Entry, argv: string[], code: number, stderr: string): void {
  const what = `${argv.includes("start") ? "start" : "validate"} ${entry.file}`;
  assert.ok(!/\n\s+at /.test(stderr), `stack trace from ${what}: ${stderr}`);
  assert.notEqual(code, 1, `internal error from ${what}: ${stderr}`);
  assert.equal(code, entry.exit, `${what}: ${stderr}`);
  const lines = stderr.split("\n").filter((line) => line !== "");
  assert.equal(lines.length, 1, `${what}: expected one stderr line, got ${JSON.stringify(stderr)}`);
  const error: string = JSON.parse(lines[0]).error;
  assert.ok(error.includes(entry.error), `${what}: ${JSON.stringify(error)} lacks ${JSON.stringify(entry.error)}`);
}

Deno.test("the corpus covers at least 100 files, each listed once with an expectation", () => {
  assert.ok(MANIFEST.length >= 100, `${MANIFEST.length} entries`);
  const files = listing(CORPUS).filter((name) => name !== "manifest.json");
  assert.deepEqual(MANIFEST.map((entry) => entry.file).sort(), files);
  for (const entry of MANIFEST) assert.ok(entry.error.length > 10 && entry.exit === 2, entry.file);
});

Deno.test("every corpus file is refused cleanly by validate and start (in-process)", async () => {
  using dir = tempDir();
  const home = join(dir.path, "home");
  const cwd = join(dir.path, "cwd");
  Deno.mkdirSync(cwd);
  const before = listing(CORPUS);
  const runs = MANIFEST.flatMap((entry, index) => commandsFor(entry, index, home).map((argv) => ({ entry, argv })));
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "--no-prompt", "--config", CONFIG, join(REPO, "tests", "cli", "in_process_cli.ts")],
    cwd,
    env: { ...TEST_ENV, ORCHESJOB_FLOW_HOME: home },
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(runs.map((run) => JSON.stringify(run.argv)).join("\n") + "\n"));
  await writer.close();
  const output = await child.output();
  const stderr = new TextDecoder().decode(output.stderr);
  assert.equal(output.code, 0, stderr.slice(-2000));
  const blocks = [...stderr.matchAll(/@@ start (\d+)\n([\s\S]*?)\n@@ end \1 (\d+) (\d+) (\d+)\n/g)];
  assert.equal(blocks.length, runs.length, "every run reported");
  for (const [, index, text, code, milliseconds, cpu] of blocks) {
    const run = runs[Number(index)];
    checkRun(run.entry, run.argv, Number(code), text);
    assert.ok(Number(cpu) < MAX_CPU_MILLISECONDS, `${run.entry.file} used ${cpu} ms of CPU`);
    assert.ok(Number(milliseconds) < HANG_MILLISECONDS, `${run.entry.file} took ${milliseconds} ms`);
  }
  assert.deepEqual(listing(cwd), [], "files written in the working directory");
  assert.deepEqual(listing(CORPUS), before, "files written beside the corpus");
});

/** One file of each kind of failure, through the real CLI. */
const SUBSET = [
  "bang-next-line-broken.yaml",
  "alias-bomb.yaml",
  "tag-python.yaml",
  "id-octal-like.yaml",
  "utf8-ff.yaml",
  "nul-in-value.yaml",
  "multi-doc.yaml",
  "command-deep-nesting.yaml",
  "json-trailing-comma.json",
  "cycle-long.yaml",
];

Deno.test("a representative subset is refused cleanly by the real CLI, and so is an oversized file", async () => {
  using dir = tempDir();
  const home = join(dir.path, "home");
  const cwd = join(dir.path, "cwd");
  Deno.mkdirSync(cwd);
  const entries = SUBSET.map((file) => MANIFEST.find((entry) => entry.file === file)!);
  const runs = entries.flatMap((entry, index) => commandsFor(entry, index, home).map((argv) => ({ entry, argv })));
  const env = { ORCHESJOB_FLOW_HOME: home };
  for (let i = 0; i < runs.length; i += 4) {
    await Promise.all(
      runs.slice(i, i + 4).map(async ({ entry, argv }) => {
        const result = await cli(argv, { env, cwd });
        checkRun(entry, argv, result.code, result.stderr);
      }),
    );
  }
  // 17 MiB without writing 17 MiB: a sparse file is refused from its size, before it is read.
  const big = join(dir.path, "big.yaml");
  Deno.writeTextFileSync(big, "flow_id: f\n");
  Deno.truncateSync(big, 17 * 1024 * 1024);
  const result = await cli(["validate", big], { env, cwd });
  checkRun(
    {
      file: "big.yaml",
      exit: 2,
      error: "big.yaml: flow file is 17825792 bytes, over the limit of 16777216",
      category: "limit",
    },
    ["validate"],
    result.code,
    result.stderr,
  );
  assert.deepEqual(listing(cwd), []);
});
