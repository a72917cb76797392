/**
 * Issue 10: arguments a hurried operator types. Each is refused with its exit code and one JSON line
 * on stderr (no stack trace, no internal error), and none of them changes the stored runs. All runs
 * go through the CLI in-process in one subprocess (tests/cli/in_process_cli.ts).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { CONFIG, REPO, tempDir, TEST_ENV } from "../helpers.ts";
import { readable } from "../../src/cli/output.ts";

interface Case {
  argv: string[];
  exit: number;
  /** A substring of the error line; null when the command must succeed and print nothing on stderr. */
  error: string | null;
}

/** Runs every argv in one in-process CLI, in order; returns each run's exit code and stderr. */
async function runAll(argvs: string[][], env: Record<string, string>, cwd: string) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "--no-prompt", "--config", CONFIG, join(REPO, "tests", "cli", "in_process_cli.ts")],
    cwd,
    env: { ...TEST_ENV, ...env },
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(argvs.map((argv) => JSON.stringify(argv)).join("\n") + "\n"));
  await writer.close();
  const output = await child.output();
  const stderr = new TextDecoder().decode(output.stderr);
  assert.equal(output.code, 0, stderr.slice(-2000));
  const framed = (text: string) => [...text.matchAll(/@@ start (\d+)\n([\s\S]*?)\n@@ end \1 (\d+) (\d+) (\d+)\n/g)];
  const errors = framed(stderr);
  const outputs = framed(new TextDecoder().decode(output.stdout));
  assert.equal(errors.length, argvs.length, "every run reported");
  return errors.map(([, , text, code], i) => ({ code: Number(code), stderr: text, stdout: outputs[i][2] }));
}

function check(c: Case, result: { code: number; stderr: string }): void {
  const what = JSON.stringify(c.argv);
  assert.ok(!/\n\s+at /.test(result.stderr), `stack trace from ${what}: ${result.stderr}`);
  assert.equal(result.code, c.exit, `${what}: ${result.stderr}`);
  const lines = result.stderr.split("\n").filter((line) => line !== "");
  if (c.error === null) {
    assert.deepEqual(lines, [], what);
    return;
  }
  assert.equal(lines.length, 1, `${what}: expected one stderr line, got ${JSON.stringify(result.stderr)}`);
  const error: string = JSON.parse(lines[0]).error;
  assert.ok(error.includes(c.error), `${what}: ${JSON.stringify(error)} lacks ${JSON.stringify(c.error)}`);
}

Deno.test("hurried operators' arguments are refused cleanly and change no stored run", async () => {
  using dir = tempDir();
  const home = join(dir.path, "home");
  const cwd = join(dir.path, "cwd");
  Deno.mkdirSync(cwd);
  const flow = join(dir.path, "t.yaml");
  Deno.writeTextFileSync(flow, "flow_id: t\nsteps:\n  - {id: a, command: [/bin/true]}\n");
  const withParam = join(dir.path, "p.yaml");
  Deno.writeTextFileSync(
    withParam,
    "flow_id: p\nparams: {A: null}\nsteps:\n  - {id: a, command: [echo, '${params.A}']}\n",
  );
  const missingDir = join(dir.path, "no-such-dir", "state.sqlite3");
  const fifo = join(dir.path, "state.fifo");
  const loop = join(dir.path, "loop.sqlite3");
  Deno.symlinkSync(loop, loop);
  new Deno.Command("mkfifo", { args: [fifo] }).outputSync();
  // Another program's SQLite database (orchesjob's own orchesjob.db, given to --db by mistake).
  const foreign = join(dir.path, "orchesjob.db");
  const other = new DatabaseSync(foreign);
  other.exec("CREATE TABLE jobs (job_id TEXT PRIMARY KEY, run_key TEXT); INSERT INTO jobs VALUES ('j1', 'k0:a:1')");
  other.close();
  Deno.chmodSync(foreign, 0o644);
  const foreignBytes = Deno.readFileSync(foreign);
  // Commands that open the state file, each its own way (read-only, for writing, to clean).
  const stateCommands = [
    ["status", "--run-key", "k0"],
    ["list"],
    ["start", "--run-key", "k1", flow],
    ["cancel", "--run-key", "k0"],
    ["clean", "--older-than", "0"],
  ];
  const quick = ["--poll-interval", "0.05", "--executor", "builtin"];
  const setup: Case[] = [{ argv: [...quick, "start", "--run-key", "k0", "-q", flow], exit: 0, error: null }];
  const cases: Case[] = [
    // Values that are missing, empty (an unset shell variable) or given twice.
    { argv: ["--db", "", "status", "--run-key", "k0"], exit: 2, error: "status: option --db needs a non-empty value" },
    { argv: ["--db", ":memory:", "status", "--run-key", "k0"], exit: 2, error: '--db ":memory:" keeps no state' },
    { argv: ["status", "--run-key", "k0", "--db="], exit: 2, error: "status: option --db needs a non-empty value" },
    {
      argv: ["--orchesjob-bin", "", "start", "--run-key", "k1", flow],
      exit: 2,
      error: "--orchesjob-bin needs a non-empty",
    },
    { argv: ["list", "--flow", ""], exit: 2, error: "list: option --flow needs a non-empty value" },
    { argv: ["logs", "--run-key", "k0", "--step", ""], exit: 2, error: "logs: option --step needs a non-empty value" },
    { argv: ["start", "--run-key", "", flow], exit: 2, error: 'invalid run key "": it is empty' },
    // An empty argument (an unset variable) is no file of no name, nor a command or step of no name.
    { argv: ["start", "--run-key", "k1", ""], exit: 2, error: 'start: FLOW_FILE needs a non-empty value, got ""' },
    { argv: ["validate", ""], exit: 2, error: 'validate: FLOW_FILE needs a non-empty value, got ""' },
    { argv: ["help", ""], exit: 2, error: 'help: COMMAND needs a non-empty value, got ""' },
    {
      argv: ["start", "--run-key", "k1", "--run-key", "k2", flow],
      exit: 2,
      error: 'option --run-key given twice ("k1" and "k2")',
    },
    { argv: ["start", "--run-key"], exit: 2, error: "start: option --run-key needs a value" },
    // A value left out: the next option is not taken for it, and what follows is not blamed.
    {
      argv: ["status", "--run-key", "--format", "table"],
      exit: 2,
      error: "status: option --run-key needs a value, got the option --format (for a value written so: --run-key=",
    },
    {
      argv: ["logs", "--run-key", "k0", "--step", "-f"],
      exit: 2,
      error: "logs: option --step needs a value, got the option -f",
    },
    {
      argv: ["--db", "status", "--run-key", "k0"],
      exit: 2,
      error: "status: option --db needs a value before the command, got the command's name (for a file of that name: " +
        "--db ./status)",
    },
    { argv: ["--db", "list"], exit: 2, error: "list: option --db needs a value before the command" },
    {
      argv: ["watch", "--run-key", "k0", "--advance", "--no-advance"],
      exit: 2,
      error: "watch: --advance and --no-advance contradict each other",
    },
    // Global options that contradict each other: the built-in runner would ignore the path without a word.
    {
      argv: ["--orchesjob-bin", "/bin/true", "--executor", "builtin", "start", "--run-key", "k1", flow],
      exit: 2,
      error: 'start: --executor builtin and --orchesjob-bin "/bin/true" contradict each other',
    },
    {
      argv: ["--executor", "builtin", "start", "--run-key", "k0", flow, "--orchesjob-bin", "/bin/true"],
      exit: 2,
      error: "contradict each other",
    },
    // A parameter given twice with different values: which one was meant is not for us to guess.
    {
      argv: ["start", "--run-key", "k1", "--param", "A=1", "--param", "A=2", withParam],
      exit: 2,
      error: 'start: option --param A given twice ("1" and "2")',
    },
    {
      argv: ["validate", "--param", "A=1", "--param=A=", withParam],
      exit: 2,
      error: 'validate: option --param A given twice ("1" and "")',
    },
    { argv: ["validate", "--param", "A=1", "--param", "A=1", withParam], exit: 0, error: null },
    // Of global options the last one wins (a wrapper's defaults, then the caller's own).
    {
      argv: ["--db", flow, "--db", join(home, "orchesjob-flow.sqlite3"), "status", "--run-key", "k0"],
      exit: 0,
      error: null,
    },
    // Numbers out of range: a huge poll interval would overflow the loop's timer into a busy loop.
    {
      argv: ["--poll-interval", "99999999999", "start", "--run-key", "k1", flow],
      exit: 2,
      error: "--poll-interval must be at most 86400",
    },
    {
      argv: ["--poll-interval", "1e309", "status", "--run-key", "k0"],
      exit: 2,
      error: "--poll-interval needs a number",
    },
    {
      argv: ["--poll-interval", "0", "status", "--run-key", "k0"],
      exit: 2,
      error: 'option --poll-interval must be at least 0.01, got "0"',
    },
    // Numbers so small they are > 0 only on paper: a loop that sleeps 1e-320 s spins the CPU.
    {
      argv: ["--poll-interval", "1e-320", "start", "--run-key", "k1", flow],
      exit: 2,
      error: 'option --poll-interval must be at least 0.01, got "1e-320"',
    },
    { argv: ["status", "--run-key", "k0", "--poll-interval", "0.009"], exit: 2, error: 'at least 0.01, got "0.009"' },
    {
      argv: ["wait", "--run-key", "k0", "--interval", "1e-320"],
      exit: 2,
      error: "wait: option --interval must be at least 0.01",
    },
    {
      argv: ["wait", "--run-key", "k0", "--timeout", "5e-324"],
      exit: 2,
      error: "option --timeout must be at least 0.01",
    },
    {
      argv: ["wait", "--run-key", "k0", "--interval", "1e6"],
      exit: 2,
      error: "--interval must be at most 86400 (a day)",
    },
    {
      argv: ["watch", "--run-key", "k0", "--interval", "1e-320"],
      exit: 2,
      error: "watch: option --interval must be at least 0.01",
    },
    {
      argv: ["cancel", "--run-key", "k0", "--grace-seconds", "1e-320"],
      exit: 2,
      error: 'cancel: option --grace-seconds must be 0 or at least 0.01, got "1e-320"',
    },
    { argv: ["cancel", "--run-key", "k0", "--grace-seconds", "1e300"], exit: 2, error: "must be at most 86400" },
    {
      argv: ["job", "abort", "--run-key", "x", "--grace-seconds", "1e-7"],
      exit: 2,
      error: '--grace-seconds must be 0 or at least 0.01, got "1e-7"',
    },
    {
      argv: ["job", "start", "--run-key", "x", "--start-timeout", "1e-320", "--", "true"],
      exit: 2,
      error: "--start-timeout must be 0 or at least 0.01",
    },
    { argv: ["job", "unlock", "--run-key", "x", "--ttl", "9".repeat(400)], exit: 2, error: "ttl must be at most 100" },
    // Decimal numbers only: Number() would read these as 16, 1 and 8.
    { argv: ["list", "--limit", "0x10"], exit: 2, error: 'list: option --limit needs a number, got "0x10"' },
    { argv: ["--poll-interval", "0b1", "status", "--run-key", "k0"], exit: 2, error: "--poll-interval needs a number" },
    { argv: ["logs", "--run-key", "k0", "--step", "a", "--tail", "0o10"], exit: 2, error: "--tail needs a number" },
    {
      argv: ["logs", "--run-key", "k0", "--step", "a", "--tail", "1.5"],
      exit: 2,
      error: "--tail must be a whole number",
    },
    {
      argv: ["list", "--limit", "99999999999999999999"],
      exit: 2,
      error: 'list: option --limit must be a whole number, got "99999999999999999999"',
    },
    // Each number is quoted as typed, not as the number JavaScript made of it (1e+20, 1000, 0.0000001).
    {
      argv: ["logs", "--run-key", "k0", "--step", "a", "--attempt", "99999999999999999999"],
      exit: 2,
      error: 'logs: option --attempt must be a whole number, got "99999999999999999999"',
    },
    { argv: ["list", "--limit", "-1e0"], exit: 2, error: 'option --limit must be >= 0, got "-1e0"' },
    { argv: ["watch", "--run-key", "k0", "--interval", "1e6"], exit: 2, error: '(a day), got "1e6"' },
    {
      argv: ["status", "--run-key", "k0", "--poll-interval", "0.0000001"],
      exit: 2,
      error: 'at least 0.01, got "0.0000001"',
    },
    { argv: ["list", "--limit", "1e3", "--limit", "5"], exit: 2, error: 'given twice ("1e3" and "5")' },
    { argv: ["list", "--limit", "-1"], exit: 2, error: "option --limit must be >= 0" },
    { argv: ["logs", "--run-key", "k0", "--step", "a", "--attempt", "0"], exit: 2, error: "--attempt must be >= 1" },
    { argv: ["wait", "--run-key", "k0", "--timeout", "NaN"], exit: 2, error: "--timeout needs a number" },
    { argv: ["clean", "--older-than", "-5d"], exit: 2, error: "--older-than needs a duration" },
    // Times: a day the month lacks is not rolled over (2026-02-30 was March 2); a time past the year 9999
    // (past JavaScript's dates, or epoch milliseconds for seconds) would print as NaN in tables.
    {
      argv: ["start", "--run-key", "k1", "--not-before", "2026-02-30T10:00:00Z", flow],
      exit: 2,
      error: 'start: --not-before "2026-02-30T10:00:00Z" is not a date: February 2026 has 28 days',
    },
    {
      argv: ["start", "--run-key", "k1", "--not-before", "+999999999d", flow],
      exit: 2,
      error: 'start: --not-before "+999999999d" is later than the year 9999',
    },
    {
      argv: ["start", "--run-key", "k1", "-d", "--not-before", "1796206651000", flow],
      exit: 2,
      error: "is later than the year 9999",
    },
    { argv: ["start", "--run-key", "k1", "--not-before", "275760-09-14", flow], exit: 2, error: "--not-before needs" },
    {
      argv: ["list", "--since", "2026-04-31", "--format", "table"],
      exit: 2,
      error: 'list: option --since "2026-04-31" is not a date: April 2026 has 30 days',
    },
    { argv: ["list", "--since", "9".repeat(400) + "d"], exit: 2, error: "option --since takes at most 100 years" },
    // A status list that names nothing is refused, not taken as no filter (every run).
    { argv: ["list", "--status", ","], exit: 2, error: 'list: option --status needs a value, got ","' },
    // The table has no step columns: --steps with it is refused, not silently ignored.
    {
      argv: ["list", "--steps", "--format", "table"],
      exit: 2,
      error: "option --steps applies to the JSON output only",
    },
    { argv: ["clean", "--older-than", "0", "--status", " "], exit: 2, error: "option --status needs a value" },
    // A bare number is refused, not read as seconds: meant as 7 days, it would clean every run.
    {
      argv: ["clean", "--older-than", "7"],
      exit: 2,
      error:
        'clean: option --older-than needs a unit: "7" alone could mean seconds or days; write 7s, 7m, 7h, 7d or 7w',
    },
    { argv: ["list", "--since", "1.5"], exit: 2, error: "option --since needs a unit" },
    {
      argv: ["clean", "--older-than", "9".repeat(400) + "w"],
      exit: 2,
      error: "clean: option --older-than takes at most 100 years (36525d)",
    },
    {
      argv: ["job", "clean", "--before", "2026-02-30"],
      exit: 2,
      error: "Invalid --before: '2026-02-30' is not a date: February 2026 has 28 days",
    },
    {
      argv: ["job", "clean", "--after", "20260101T24"],
      exit: 2,
      error: "Invalid --after: '20260101T24' is not a time: there is no hour 24",
    },
    // Options in the wrong place, misspelt or run together.
    {
      argv: ["-d", "start", "--run-key", "k1", flow],
      exit: 2,
      error: "unknown option -d (a command's options go after it)",
    },
    { argv: ["start", "-dx", "--run-key", "k1", flow], exit: 2, error: "start: unknown option -dx" },
    { argv: ["start", "--detatch", "--run-key", "k1", flow], exit: 2, error: "did you mean --detach?" },
    { argv: ["start", "--detach=yes", "--run-key", "k1", flow], exit: 2, error: "option --detach takes no value" },
    { argv: ["stat", "--run-key", "k0"], exit: 2, error: 'unknown command "stat"' },
    // Flow files that are not files: devices with no end, directories, missing paths.
    {
      argv: ["validate", "/dev/zero"],
      exit: 2,
      error: "/dev/zero: flow file is larger than the limit of 16777216 bytes",
    },
    { argv: ["start", "--run-key", "k1", "/dev/urandom"], exit: 2, error: "/dev/urandom: " },
    { argv: ["start", "--run-key", "k1", "/dev/null"], exit: 2, error: "/dev/null: a flow must be a mapping" },
    { argv: ["start", "--run-key", "k1", dir.path], exit: 2, error: "is a directory" },
    { argv: ["start", "--run-key", "k1", join(dir.path, "nope.yaml")], exit: 2, error: "no such file" },
    { argv: ["validate", flow, flow], exit: 2, error: "unexpected argument" },
    // State files that are not state files; a missing directory is not created by a read.
    { argv: ["--db", flow, "status", "--run-key", "k0"], exit: 2, error: "file is not a database" },
    // The state directory given for the state file: said as such, not "disk I/O error" or "read-only here".
    ...stateCommands.map((argv) => ({
      argv: ["--db", dir.path, ...argv],
      exit: 2,
      error: `${argv[0]}: cannot open state database ${dir.path}: it is a directory; --db takes the state file's path`,
    })),
    // A device or a FIFO (--db /dev/null, for "no state"): said as such, never "remove it", which on
    // /dev/null would break the machine (as root it can). Not opened either: a FIFO would hang.
    ...["/dev/null", fifo].flatMap((path) =>
      stateCommands.map((argv) => ({
        argv: ["--db", path, ...argv],
        exit: 2,
        error: `${
          argv[0]
        }: cannot open state database ${path}: it is not a regular file; --db takes the state file's path`,
      }))
    ),
    // Another program's database is refused as such, by readers and writers, and left as it was: it is
    // no state file of an older version, and nothing is switched to WAL, made 0600 or added to it.
    ...[...stateCommands, ["job", "status", "--run-key", "k0:a:1"]].map((argv) => ({
      argv: ["--db", foreign, ...argv],
      exit: 2,
      error: `state database ${foreign} is not an orchesjob-flow state file: it is an SQLite database with other ` +
        `tables ("jobs") and none of this program's`,
    })),
    // A state file that cannot be looked at (here a symbolic link loop; a directory this user cannot
    // search likewise) is an error to say, not a file with no runs ([] and "run not found" before).
    ...[["list"], ["status", "--run-key", "k0"], ["watch", "--run-key", "k0"]].map((argv) => ({
      argv: ["--db", loop, ...argv],
      exit: 2,
      error: `${argv[0]}: cannot open state database ${loop}: Too many levels of symbolic links`,
    })),
    { argv: ["--db", missingDir, "status", "--run-key", "k0"], exit: 3, error: "run not found: k0" },
    // A "~" that no shell expanded (after "=", or quoted) is no directory named "~" under the working one.
    {
      argv: ["--db=~/s.sqlite3", "start", "--run-key", "k1", flow],
      exit: 2,
      error: 'start: --db "~/s.sqlite3" starts with a "~" that no shell expanded',
    },
    { argv: ["list", "--db", "~/s.sqlite3"], exit: 2, error: 'list: --db "~/s.sqlite3" starts with a "~"' },
    // A state path through a file (ORCHESJOB_FLOW_HOME set to a file): no state file can be there. The
    // readers took it for a missing one ([], "run not found"), start said "File exists: mkdir".
    ...[...stateCommands, ["retry", "--run-key", "k0"], ["logs", "--run-key", "k0", "--step", "a"]].map((argv) => ({
      argv: ["--db", join(flow, "orchesjob-flow.sqlite3"), ...argv],
      exit: 2,
      error: `${argv[0]}: cannot open state database ${
        join(flow, "orchesjob-flow.sqlite3")
      }: ${flow} is not a directory`,
    })),
    // Run keys with invisible or undecodable characters, and one that is not there.
    { argv: ["start", "--run-key", "a\u0085b", flow], exit: 2, error: "contains U+0085" },
    { argv: ["start", "--run-key", "a\u200bb", flow], exit: 2, error: "contains U+200B" },
    { argv: ["status", "--run-key", "\ufffd"], exit: 2, error: "contains U+FFFD" },
    { argv: ["cancel", "--run-key", "k9"], exit: 3, error: "run not found: k9" },
    // A finished run is not restarted from another flow, and not retried without a step.
    { argv: ["start", "--run-key", "k0", "/dev/null"], exit: 2, error: "a flow must be a mapping" },
    { argv: ["retry", "--run-key", "k0"], exit: 2, error: "name the step to run again with --step" },
    // Run together, short flags that exist are read as given apart.
    { argv: [...quick, "start", "-dq", "--run-key", "k0", flow], exit: 0, error: null },
  ];
  const env = { ORCHESJOB_FLOW_HOME: home };
  const before = await runAll([setup[0].argv, ["status", "--run-key", "k0"], ["list"]], env, cwd);
  check(setup[0], before[0]);
  assert.equal(JSON.parse(before[1].stdout).status, "SUCCEEDED");
  const results = await runAll(cases.map((c) => c.argv), env, cwd);
  cases.forEach((c, i) => check(c, results[i]));
  // Nothing above created, changed or removed a run; a read did not create the missing directory.
  const after = await runAll([["status", "--run-key", "k0"], ["list"]], env, cwd);
  assert.deepEqual(JSON.parse(after[0].stdout), JSON.parse(before[1].stdout));
  assert.deepEqual(JSON.parse(after[1].stdout), JSON.parse(before[2].stdout));
  assert.equal(JSON.parse(after[1].stdout).length, 1);
  assert.throws(() => Deno.statSync(join(dir.path, "no-such-dir")), Deno.errors.NotFound);
  assert.deepEqual(Deno.readFileSync(foreign), foreignBytes, "another program's database changed");
  assert.equal(Deno.statSync(foreign).mode! & 0o777, 0o644);
  assert.throws(() => Deno.statSync(`${foreign}-wal`), Deno.errors.NotFound);
  assert.deepEqual([...Deno.readDirSync(cwd)], [], "files written in the working directory");
});

Deno.test("a state home set to a path with an unexpanded ~ (a unit file's Environment=) is refused, and nothing is made", async () => {
  using dir = tempDir();
  const flow = join(dir.path, "t.yaml");
  Deno.writeTextFileSync(flow, "flow_id: t\nsteps:\n  - {id: a, command: [/bin/true]}\n");
  const cwd = join(dir.path, "cwd");
  Deno.mkdirSync(cwd);
  for (const variable of ["ORCHESJOB_FLOW_HOME", "ORCHESJOB_HOME"]) {
    const argvs = [["--executor", "builtin", "start", "-q", "--run-key", "k", flow], ["list"], [
      "status",
      "--run-key",
      "k",
    ]];
    const results = await runAll(argvs, { ORCHESJOB_FLOW_HOME: "", [variable]: "~/state" }, cwd);
    results.forEach((result, i) =>
      check(
        { argv: argvs[i], exit: 2, error: `${variable} "~/state" starts with a "~" that no shell expanded` },
        result,
      )
    );
  }
  assert.deepEqual([...Deno.readDirSync(cwd)], [], "no directory named ~ made in the working directory");
});

Deno.test("from a working directory removed under it, start and validate say so (exit 2) and store no run", async () => {
  using dir = tempDir();
  const home = join(dir.path, "home");
  const text = "flow_id: t\nsteps:\n  - {id: a, command: [/bin/true]}\n";
  const flow = join(dir.path, "t.yaml");
  Deno.writeTextFileSync(flow, text);
  const quick = ["--poll-interval", "0.05", "--executor", "builtin"];
  const start = [...quick, "start", "--run-key"];
  // A run that exists keeps the directory it was made in: starting it again needs no working directory.
  check(
    { argv: [], exit: 0, error: null },
    (await runAll([[...start, "e", "-q", flow]], { ORCHESJOB_FLOW_HOME: home }, dir.path))[0],
  );
  const cases: Case[] = [
    ...[[...start, "k", "-q", flow], [...start, "k", "-d", flow], [...start, "k", "-q", "-"]].map((argv) => ({
      argv,
      exit: 2,
      error: "start: the current directory no longer exists",
    })),
    { argv: ["validate", "-"], exit: 2, error: "validate: the current directory no longer exists" },
    { argv: [...start, "e", "-q", flow], exit: 0, error: null },
  ];
  for (const { argv, exit, error } of cases) {
    const gone = join(dir.path, "gone");
    Deno.mkdirSync(gone);
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-all",
        "--no-prompt",
        "--config",
        CONFIG,
        join(REPO, "tests", "cli", "removed_cwd_cli.ts"),
        ...argv,
      ],
      cwd: gone,
      env: { ...TEST_ENV, ORCHESJOB_FLOW_HOME: home },
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(text));
    await writer.close();
    const output = await child.output();
    assert.throws(() => Deno.statSync(gone), Deno.errors.NotFound, "the directory was removed");
    check({ argv, exit, error }, { code: output.code, stderr: new TextDecoder().decode(output.stderr) });
  }
  const status = await runAll([["status", "--run-key", "k"]], { ORCHESJOB_FLOW_HOME: home }, dir.path);
  check({ argv: ["status"], exit: 3, error: "run not found: k" }, status[0]);
});

Deno.test("$ORCHESJOB_BIN with --executor builtin is no contradiction: the option overrides the environment's default", async () => {
  using dir = tempDir();
  const flow = join(dir.path, "t.yaml");
  Deno.writeTextFileSync(flow, "flow_id: t\nsteps:\n  - {id: a, command: [/bin/true]}\n");
  const env = { ORCHESJOB_FLOW_HOME: join(dir.path, "home"), ORCHESJOB_BIN: join(dir.path, "no-such-orchesjob") };
  const argv = ["--poll-interval", "0.05", "--executor", "builtin", "start", "-q", "--run-key", "e1", flow];
  const [started, status] = await runAll([argv, ["status", "--run-key", "e1"]], env, dir.path);
  check({ argv, exit: 0, error: null }, started);
  assert.deepEqual(JSON.parse(status.stdout).executor, { kind: "builtin" });
});

Deno.test("an argument of 100 kB is quoted in part: the error line keeps its start and end, and says what it left out", async () => {
  using dir = tempDir();
  const flow = join(dir.path, "t.yaml");
  Deno.writeTextFileSync(flow, "flow_id: t\nsteps:\n  - {id: a, command: [/bin/true]}\n");
  const big = "a".repeat(100_000);
  const cases: Case[] = [
    { argv: [big], exit: 2, error: "unknown command" },
    { argv: ["status", "--format", big], exit: 2, error: "status: option --format must be one of" },
    { argv: ["status", `--${big}`], exit: 2, error: "status: unknown option --aaa" },
    { argv: ["start", "--run-key", "r", "--not-before", big, flow], exit: 2, error: "start: --not-before needs" },
    { argv: ["validate", join(dir.path, `${big}.yaml`)], exit: 2, error: "validate: cannot read flow file" },
  ];
  const results = await runAll(cases.map((c) => c.argv), {}, dir.path);
  cases.forEach((c, i) => {
    check(c, results[i]);
    const line = results[i].stderr.trim();
    assert.ok(line.length < 1200, `${line.length} characters`);
    assert.match(JSON.parse(line).error, /… \(\d+ characters left out\) …/);
  });
});

Deno.test("a message is cut between characters, never inside a surrogate pair", () => {
  for (const pad of ["", "x"]) {
    const message = pad + "\u{1F680}".repeat(1000);
    const cut = readable(message);
    assert.ok(cut.length < 1000);
    assert.equal(cut.match(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/), null, cut);
  }
  assert.equal(readable("short"), "short");
});
