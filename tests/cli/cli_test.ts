/** The CLI skeleton through the real entry point: help, version, example, validate, and usage errors. */
import assert from "node:assert/strict";
import { join } from "node:path";
import { cli, errorLine, REPO, tempDir, writeFile } from "../helpers.ts";
import { formatVersion } from "../../src/cli/version.ts";

Deno.test("--version prints the version from deno.json, the Deno version, the target and how it runs", async () => {
  const config = JSON.parse(Deno.readTextFileSync(join(REPO, "deno.json")));
  const result = await cli(["--version"]);
  assert.equal(result.code, 0);
  // Under `deno run` from a checkout: not compiled, and no commit (build_info.json is committed empty).
  assert.equal(
    result.stdout,
    `orchesjob-flow ${config.version} (deno ${Deno.version.deno}, ${Deno.build.target}, not compiled)\n`,
  );
});

Deno.test("--version --format json gives the same facts as JSON", async () => {
  const config = JSON.parse(Deno.readTextFileSync(join(REPO, "deno.json")));
  const result = await cli(["--version", "--format", "json"]);
  assert.equal(result.code, 0);
  assert.deepEqual(JSON.parse(result.stdout), {
    name: "orchesjob-flow",
    version: config.version,
    deno: Deno.version.deno,
    target: Deno.build.target,
    compiled: false,
    commit: null,
  });
});

Deno.test("--format before a command is refused: it only applies to --version", async () => {
  const result = await cli(["--format", "json", "status", "--run-key", "x"]);
  assert.equal(result.code, 2);
  assert.match(errorLine(result).error, /only applies to --version/);
  const bad = await cli(["--version", "--format", "yaml"]);
  assert.equal(bad.code, 2);
  assert.match(errorLine(bad).error, /--format must be one of text, json/);
});

Deno.test("formatVersion names a compiled binary and its commit", () => {
  const info = {
    name: "orchesjob-flow",
    version: "0.2.0",
    deno: "2.9.6",
    target: "x86_64-unknown-linux-gnu",
    compiled: true,
    commit: "abc1234",
  };
  assert.equal(formatVersion(info), "orchesjob-flow 0.2.0 (deno 2.9.6, x86_64-unknown-linux-gnu, compiled, abc1234)");
  assert.equal(
    formatVersion({ ...info, compiled: false, commit: null }),
    "orchesjob-flow 0.2.0 (deno 2.9.6, x86_64-unknown-linux-gnu, not compiled)",
  );
});

Deno.test("--help lists the visible commands and global options", async () => {
  const result = await cli(["--help"]);
  assert.equal(result.code, 0);
  const words = [
    "example",
    "validate",
    "list",
    "logs",
    "retry",
    "clean",
    "wait",
    "--db",
    "--poll-interval",
    "--executor",
  ];
  for (const word of [...words, "--orchesjob-bin"]) {
    assert.ok(result.stdout.includes(word), word);
  }
});

Deno.test("every command has --help", async () => {
  const commands = [
    "start",
    "status",
    "watch",
    "cancel",
    "example",
    "validate",
    "graph",
    "schema",
    "job",
    "tick",
    "_drive",
    "version",
    "help",
    "list",
    "logs",
    "retry",
    "clean",
    "wait",
  ];
  for (const command of commands) {
    const result = await cli([command, "--help"]);
    assert.equal(result.code, 0, command);
    assert.match(result.stdout, new RegExp(`^Usage: orchesjob-flow ${command}`), command);
  }
  for (const sub of ["start", "status", "logs", "abort", "rerun", "unlock", "clean"]) {
    const result = await cli(["job", sub, "--help"]);
    assert.equal(result.code, 0, sub);
    assert.match(result.stdout, new RegExp(`^Usage: orchesjob-flow job ${sub}`), sub);
  }
  // Hidden commands stay out of the top-level help.
  const top = (await cli(["--help"])).stdout;
  assert.ok(!top.includes("tick") && !top.includes("_drive"));
});

Deno.test("example prints examples/daily-import.yaml, which validates", async () => {
  const result = await cli(["example"]);
  assert.equal(result.code, 0);
  assert.equal(result.stdout, Deno.readTextFileSync(join(REPO, "examples/daily-import.yaml")));
  using dir = tempDir();
  const file = writeFile(dir.path, "flow.yaml", result.stdout);
  const validated = await cli(["validate", file]);
  assert.equal(validated.code, 0, validated.stderr);
  const flow = JSON.parse(validated.stdout);
  assert.equal(flow.flow_id, "daily-import");
  assert.equal(flow.steps.at(-1).when, "!download || !validate || !import");
});

Deno.test("validate prints the normalized flow with waits_for, the parsed condition and a hash", async () => {
  for (
    const name of [
      "daily-import",
      "branching-hello-flow",
      "branching-hello-failure-flow",
      "branching-hello-parens-flow",
    ]
  ) {
    const result = await cli(["validate", `examples/${name}.yaml`]);
    assert.equal(result.code, 0, `${name}: ${result.stderr}`);
    const flow = JSON.parse(result.stdout);
    assert.equal(flow.valid, true);
    assert.match(flow.definition_hash, /^sha256:[0-9a-f]{64}$/);
    for (const step of flow.steps) assert.ok(Array.isArray(step.waits_for), name);
  }
  const parens = JSON.parse((await cli(["validate", "examples/branching-hello-parens-flow.yaml"])).stdout);
  const d = parens.steps.find((s: { id: string }) => s.id === "D");
  assert.equal(d.when, "B && F || !C");
  assert.deepEqual(d.waits_for, ["B", "F", "C"]);
  assert.deepEqual(d.condition, {
    kind: "or",
    operands: [
      { kind: "and", operands: [{ kind: "ref", id: "B" }, { kind: "ref", id: "F" }] },
      { kind: "not", operand: { kind: "ref", id: "C" } },
    ],
  });
});

Deno.test("usage and validation errors are one JSON line on stderr with exit 2", async () => {
  using dir = tempDir();
  const cycle = writeFile(
    dir.path,
    "cycle.yaml",
    "flow_id: c\nsteps:\n  - {id: A, when: C, command: [a]}\n  - {id: B, when: A, command: [a]}\n  - {id: C, when: B, command: [a]}\n",
  );
  const cases: [string[], RegExp][] = [
    [[], /^missing command/],
    [["frobnicate"], /^unknown command "frobnicate"/],
    [["--bogus", "example"], /^example: unknown option --bogus/],
    [["--poll-interval", "abc", "example"], /^example: option --poll-interval needs a number, got "abc"/],
    [["--poll-interval", "0", "example"], /^example: option --poll-interval must be at least 0.01, got "0"/],
    [["--executor", "docker", "example"], /^example: option --executor must be one of auto, orchesjob, builtin/],
    [["--db"], /^option --db needs a value/],
    [["validate"], /^validate: missing FLOW_FILE/],
    [["validate", "a", "b"], /^validate: unexpected argument "b"/],
    [["validate", "--strict", "x"], /^validate: unknown option --strict/],
    [["validate", join(dir.path, "missing.yaml")], /^validate: cannot read flow file .*missing\.yaml: no such file/],
    [["validate", dir.path], /^validate: cannot read flow file .*: is a directory/],
    [["validate", cycle], /cycle\.yaml:3:\d+: step "A": dependency cycle detected: A -> C -> B -> A$/],
  ];
  for (const [args, pattern] of cases) {
    const result = await cli(args);
    assert.equal(result.code, 2, `${args.join(" ")}: ${result.stderr}`);
    assert.match(errorLine(result).error, pattern, args.join(" "));
    assert.ok(!result.stderr.includes("    at "), `stack trace for ${args.join(" ")}`);
  }
});

Deno.test("no command is a usage error like the others: one JSON line on stderr, exit 2, nothing on stdout", async () => {
  for (const args of [[], ["--db", "x.sqlite"], ["--poll-interval", "3"]]) {
    const result = await cli(args);
    assert.equal(result.code, 2, args.join(" "));
    assert.equal(result.stdout, "", `${args.join(" ")}: the help is not printed on stdout`);
    assert.deepEqual(result.stderr.trimEnd().split("\n").map((line) => JSON.parse(line)), [
      { error: "missing command (see orchesjob-flow --help)" },
    ]);
  }
  // Nor a missing subcommand of job, whose stdout is the orchesjob contract's JSON.
  const job = await cli(["job"]);
  assert.equal(job.code, 2);
  assert.equal(job.stdout, "", "job: the help is not printed on stdout");
  assert.deepEqual(job.stderr.trimEnd().split("\n").map((line) => JSON.parse(line)), [
    { error: "job: missing subcommand (see orchesjob-flow job --help)" },
  ]);
});

Deno.test("-V, version and help [COMMAND] work", async () => {
  const config = JSON.parse(Deno.readTextFileSync(join(REPO, "deno.json")));
  const line = `orchesjob-flow ${config.version} (deno ${Deno.version.deno}, ${Deno.build.target}, not compiled)\n`;
  for (const args of [["-V"], ["version"], ["--version"]]) {
    const result = await cli(args);
    assert.equal(result.code, 0, args.join(" "));
    assert.equal(result.stdout, line);
  }
  const json = await cli(["version", "--format", "json"]);
  assert.equal(json.code, 0, json.stderr);
  assert.equal(JSON.parse(json.stdout).version, config.version);
  const top = await cli(["help"]);
  assert.equal(top.code, 0);
  assert.equal(top.stdout, (await cli(["--help"])).stdout);
  const one = await cli(["help", "status"]);
  assert.equal(one.code, 0);
  assert.equal(one.stdout, (await cli(["status", "--help"])).stdout);
  // The help option before the command is help of that command too, not the list of commands.
  for (
    const args of [["--help", "status"], ["-h", "status", "--run-key", "x"], ["--db", "x.sqlite3", "-h", "status"]]
  ) {
    const before = await cli(args);
    assert.equal(before.code, 0, args.join(" "));
    assert.equal(before.stdout, one.stdout, args.join(" "));
  }
  const job = await cli(["--help", "job"]);
  assert.equal(job.stdout, (await cli(["help", "job"])).stdout);
  const unknown = await cli(["--help", "stat"]);
  assert.equal(unknown.code, 2);
  assert.match(errorLine(unknown).error, /^unknown command "stat"; did you mean "status"\?/);
  const wrong = await cli(["help", "stat"]);
  assert.equal(wrong.code, 2);
  assert.match(errorLine(wrong).error, /^help: unknown command "stat"; did you mean "status"\?/);
});

Deno.test("mistyped commands and options get a suggestion; every error names its command", async () => {
  const cases: [string[], RegExp][] = [
    [["stat", "--run-key", "x"], /^unknown command "stat"; did you mean "status"\?/],
    [["satus"], /^unknown command "satus"; did you mean "status"\?/],
    [["vaildate", "f"], /^unknown command "vaildate"; did you mean "validate"\?/],
    [["frobnicate"], /^unknown command "frobnicate" \(see orchesjob-flow --help\)$/],
    [["status", "--runkey", "x"], /^status: unknown option --runkey; did you mean --run-key\?$/],
    [["watch", "--run-key", "x", "--intervall", "1"], /^watch: unknown option --intervall; did you mean --interval\?$/],
    // An unknown option's value is taken for the command ("1"), which is not known: no name.
    [["--pol-interval", "1", "example"], /^unknown option --pol-interval; did you mean --poll-interval\?$/],
    // A global option before the command is named by the command, as after it; not before an unknown one.
    [["--db", "", "status", "--run-key", "x"], /^status: option --db needs a non-empty value$/],
    [["--executor", "docker", "list"], /^list: option --executor must be one of auto, orchesjob, builtin/],
    [["--db", "", "stat"], /^option --db needs a non-empty value$/],
    [["status", "--run-key", "x", "--dbb", "f"], /^status: unknown option --dbb; did you mean --db\?$/],
    [["status"], /^status: --run-key is required$/],
    [["cancel"], /^cancel: --run-key is required$/],
    [["watch", "--run-key", "x", "--interval", "0"], /^watch: option --interval must be at least 0.01, got "0"$/],
    [
      ["status", "--run-key", "x", "--poll-interval", "0"],
      /^status: option --poll-interval must be at least 0.01, got "0"$/,
    ],
  ];
  for (const [args, pattern] of cases) {
    const result = await cli(args);
    assert.equal(result.code, 2, `${args.join(" ")}: ${result.stderr}`);
    assert.match(errorLine(result).error, pattern, args.join(" "));
  }
});

Deno.test("global options are accepted after the command, and win there", async () => {
  using dir = tempDir();
  const file = writeFile(dir.path, "flow.yaml", 'flow_id: g\nsteps:\n  - {id: a, command: ["true"]}\n');
  const db = join(dir.path, "state", "flow.sqlite3");
  const other = join(dir.path, "other", "flow.sqlite3");
  const env = { ORCHESJOB_FLOW_HOME: join(dir.path, "home"), ORCHESJOB_BIN: "" };
  const started = await cli(
    ["start", "--run-key", "g1", file, "--db", db, "--executor", "builtin", "--poll-interval", "0.1"],
    { env },
  );
  assert.equal(started.code, 0, started.stderr);
  assert.equal(JSON.parse(started.stdout).executor.kind, "builtin");
  const found = await cli(["status", "--run-key", "g1", "--db", db], { env });
  assert.equal(found.code, 0, found.stderr);
  assert.equal(JSON.parse(found.stdout).status, "SUCCEEDED");
  // After the command beats before it.
  assert.equal((await cli(["--db", other, "status", "--run-key", "g1", "--db", db], { env })).code, 0);
  assert.equal((await cli(["--db", db, "status", "--run-key", "g1", "--db", other], { env })).code, 3);
  // The job runner's CLI takes them after its subcommand too.
  const job = await cli(["job", "status", "--run-key", "g1:a:1", "--db", db], { env });
  assert.equal(job.code, 0, job.stderr);
  assert.equal(JSON.parse(job.stdout).status, "SUCCEEDED");
});

Deno.test("validate - reads the flow from stdin; its errors name <stdin>", async () => {
  const text = Deno.readTextFileSync(join(REPO, "examples/daily-import.yaml"));
  const result = await cli(["validate", "-"], { stdin: text });
  assert.equal(result.code, 0, result.stderr);
  const fromFile = await cli(["validate", "examples/daily-import.yaml"]);
  assert.deepEqual(JSON.parse(result.stdout), JSON.parse(fromFile.stdout));
  const bad = await cli(["validate", "-"], { stdin: "flow_id: x\nsteps:\n  - {id: a, command: [a], when: b}\n" });
  assert.equal(bad.code, 2);
  assert.match(errorLine(bad).error, /^validate: <stdin>:3:\d+: step "a": when refers to unknown step "b"/);
  // start takes `-` too.
  using dir = tempDir();
  const started = await cli(
    [
      "--db",
      join(dir.path, "s.sqlite3"),
      "--executor",
      "builtin",
      "--poll-interval",
      "0.1",
      "start",
      "--run-key",
      "s",
      "-",
    ],
    { stdin: 'flow_id: s\nsteps:\n  - {id: a, command: ["true"]}\n' },
  );
  assert.equal(started.code, 0, started.stderr);
  assert.equal(JSON.parse(started.stdout).status, "SUCCEEDED");
});
