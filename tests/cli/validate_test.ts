/** `validate` through the CLI: warnings on stderr without failing, and parameters. */
import assert from "node:assert/strict";
import { join } from "node:path";
import { cli, errorLine, tempDir, writeFile } from "../helpers.ts";

Deno.test("validate warns on stderr (one JSON line each) and still exits 0 with the warnings in its output", async () => {
  using dir = tempDir();
  const file = writeFile(
    dir.path,
    "lint.yaml",
    `flow_id: l
steps:
  - {id: A, command: [x], timeout_sec: 1, start_timeout_sec: 5}
  - {id: B, when: A && !A, command: [x]}
  - {id: C, when: B || A, depends_on: [B], command: [x]}
  - {id: D, when: B, command: [x]}
`,
  );
  const result = await cli(["validate", file]);
  assert.equal(result.code, 0, result.stderr);
  const lines = result.stderr.trim().split("\n").map((line) => JSON.parse(line).warning);
  assert.equal(lines.length, 4);
  assert.match(lines[0], /lint\.yaml: step "A": timeout_sec \(1\) is shorter than start_timeout_sec \(5\)/);
  assert.match(lines[1], /step "B": when "A && !A" can never be true/);
  assert.match(lines[2], /step "C": depends_on "B" is already implied by its when "B \|\| A"/);
  assert.match(lines[3], /step "D": unreachable/);
  const output = JSON.parse(result.stdout);
  assert.equal(output.valid, true);
  assert.equal(output.warnings.length, 4);
});

Deno.test("validate binds --param like start; a missing required one is a warning, an unknown one an error", async () => {
  using dir = tempDir();
  const file = writeFile(
    dir.path,
    "p.yaml",
    "flow_id: p\nparams: {DAY: null}\ncwd: sub\nsteps:\n  - {id: A, command: [echo, '${params.DAY}']}\n",
  );
  const bound = await cli(["validate", "--param", "DAY=mon", file]);
  assert.equal(bound.code, 0, bound.stderr);
  assert.equal(bound.stderr, "");
  const output = JSON.parse(bound.stdout);
  assert.deepEqual(output.steps[0].command, ["echo", "mon"]);
  assert.equal(
    output.steps[0].cwd,
    join(dir.path, "sub"),
  );
  assert.deepEqual(output.param_values, { DAY: "mon" });
  assert.match(output.definition_hash, /^sha256:/);

  const unbound = await cli(["validate", file]);
  assert.equal(unbound.code, 0);
  assert.match(JSON.parse(unbound.stderr).warning, /parameter "DAY" has no default: start needs --param DAY=VALUE/);
  assert.equal(JSON.parse(unbound.stdout).definition_hash, null);

  const unknown = await cli(["validate", "--param", "DAYS=x", file]);
  assert.equal(unknown.code, 2);
  assert.match(JSON.parse(unknown.stderr).error, /unknown parameter "DAYS"/);
});

Deno.test("the YAML library's log variables in the environment leave the output alone (its ES build is loaded)", async () => {
  using dir = tempDir();
  const file = writeFile(dir.path, "f.yaml", "# a comment\nflow_id: f\nsteps:\n  - {id: A, command: [x]}\n");
  // The package's CommonJS build prints every token to stdout when LOG_TOKENS is set.
  const result = await cli(["validate", file], { env: { LOG_TOKENS: "1", LOG_STREAM: "1" } });
  assert.equal(result.code, 0, result.stderr);
  assert.equal(result.stderr, "");
  assert.equal(JSON.parse(result.stdout).flow_id, "f");
});

Deno.test("parameters named like Object's own properties are parameters like any other", async () => {
  using dir = tempDir();
  const file = writeFile(
    dir.path,
    "pp.yaml",
    'flow_id: pp\nparams: {constructor: null, __proto__: null}\nsteps:\n  - {id: a, command: ["/bin/echo", "${params.constructor}-${params.__proto__}"]}\n',
  );
  const db = ["--db", join(dir.path, "state.sqlite3"), "--executor", "builtin", "--poll-interval", "0.05"];
  const missing = await cli([...db, "start", "-q", "--run-key", "k1", file]);
  assert.equal(missing.code, 2, missing.stderr);
  assert.match(JSON.parse(missing.stderr).error, /missing required parameter "constructor", "__proto__"/);
  const given = await cli([
    ...db,
    "start",
    "-q",
    "--param",
    "constructor=C",
    "--param",
    "__proto__=P",
    "--run-key",
    "k2",
    file,
  ]);
  assert.equal(given.code, 0, given.stderr);
  assert.deepEqual(JSON.parse(given.stdout).params, { constructor: "C", ["__proto__"]: "P" });
  const logs = await cli([...db, "logs", "--run-key", "k2", "--step", "a"]);
  assert.equal(logs.stdout, "C-P\n");
});

Deno.test("the limits hold on what a step runs once --param values are in, for validate and start", async () => {
  using dir = tempDir();
  const flow = (step: string) =>
    writeFile(dir.path, "b.yaml", `flow_id: b\nparams: {A: null}\nsteps:\n  - {id: s, ${step}}\n`);
  const big = "x".repeat(100_000);
  const cases: [string, string, RegExp][] = [
    ['command: ["${params.A}"]', "", /step "s": with the parameters' values, command\[0\] \(the program\) is empty/],
    ['command: ["${params.A}"]', " \t", /command\[0\] \(the program\) is only whitespace/],
    // A string command is `/bin/sh -c SCRIPT`: an emptied script would run `sh -c ""` and succeed doing nothing.
    ['command: "${params.A}"', "", /with the parameters' values, the shell command \(\/bin\/sh -c\) is empty/],
    ['command: "${params.A}"', " \n ", /the shell command \(\/bin\/sh -c\) is only whitespace/],
    ['command: " ${params.A} "', "", /the shell command \(\/bin\/sh -c\) is only whitespace/],
    ['command: [/bin/sh, -c, "${params.A}", name]', "", /the shell command \(\/bin\/sh -c\) is empty/],
    ['command: [x], cwd: "${params.A}"', "", /with the parameters' values, cwd is empty/],
    [
      `command: [x, ${Array(20).fill('"${params.A}"').join(", ")}]`,
      big,
      /the command is 2000022 bytes, over the limit of 1048576/,
    ],
    ['command: [x, "${params.A}${params.A}"]', big, /command\[1\] is 200000 bytes, over the limit of 131072/],
    ['command: [x], env: {E: "${params.A}${params.A}"}', big, /env\.E is 200002 bytes, over the limit of 131072/],
  ];
  const db = ["--db", join(dir.path, "state.sqlite3"), "--executor", "builtin"];
  for (const [step, value, pattern] of cases) {
    const file = flow(step);
    for (const argv of [["validate"], [...db, "start", "-q", "--run-key", "k"]]) {
      const args = argv[0] === "validate"
        ? ["validate", "--param", `A=${value}`, file]
        : [...argv, "--param", `A=${value}`, file];
      const result = await cli(args);
      assert.equal(result.code, 2, `${step}: ${result.stderr}`);
      assert.match(JSON.parse(result.stderr).error, pattern);
    }
  }
  // Nothing was stored.
  const list = await cli([...db, "list"]);
  assert.deepEqual(JSON.parse(list.stdout), []);
});

Deno.test("an error that the parameters' values cause names the file, the field's line:col and the step", async () => {
  using dir = tempDir();
  const file = writeFile(
    dir.path,
    "pos.yaml",
    `flow_id: pos
params: {A: x, B: x}
env: {E: "\${params.A}\${params.A}"}
cwd: "\${params.B}"
steps:
  - id: own
    command: ["\${params.A}", x]
    cwd: "\${params.B}/d"
  - id: inherits
    command: [x]
`,
  );
  const big = "x".repeat(70_000);
  const cases: [string, string][] = [
    // The step's own command; the flow's cwd and env, which the second step inherits.
    ["A=", 'pos.yaml:7:14: step "own": with the parameters\' values, command[0] (the program) is empty'],
    ["B=", 'pos.yaml:4:6: step "inherits": with the parameters\' values, cwd is empty'],
    [`A=${big}`, 'pos.yaml:3:6: step "own": with the parameters\' values, env.E is 140002 bytes'],
  ];
  for (const [param, expected] of cases) {
    const result = await cli(["validate", "--param", param, file]);
    assert.equal(result.code, 2, result.stderr);
    assert.ok(errorLine(result).error.startsWith(`validate: ${join(dir.path, expected)}`), result.stderr);
  }
  // From standard input, by the name it goes by.
  const stdin = await cli(["validate", "--param", "A=", "-"], { stdin: Deno.readTextFileSync(file) });
  assert.equal(stdin.code, 2, stdin.stderr);
  assert.ok(errorLine(stdin).error.startsWith('validate: <stdin>:7:14: step "own"'), stdin.stderr);
});

Deno.test("validate without a required parameter does not refuse a field its value alone makes up; a given empty one is", async () => {
  using dir = tempDir();
  const flow = (step: string) =>
    writeFile(dir.path, "u.yaml", `flow_id: u\nparams: {A: null, B: null}\nsteps:\n  - {id: s, ${step}}\n`);
  const fields = [
    'command: [ls], cwd: "${params.A}"',
    'command: "${params.A}"',
    'command: ["${params.A}", x]',
    'command: [/bin/sh, -c, "${params.A}"]',
    'command: ["${params.A}${params.B}"], cwd: "${params.B}${params.A}"',
  ];
  for (const step of fields) {
    const file = flow(step);
    // A's value is unknown: the run gets one (start refuses to go without it), so nothing is empty yet.
    for (const given of [[], ["--param", "B="]]) {
      const result = await cli(["validate", ...given, file]);
      assert.equal(result.code, 0, `${step} ${given}: ${result.stderr}`);
      assert.match(JSON.parse(result.stderr.split("\n")[0]).warning, /parameter "A" has no default/);
      assert.equal(JSON.parse(result.stdout).definition_hash, null);
    }
    // Given empty, it empties the field: refused as before.
    const emptied = await cli(["validate", "--param", "A=", "--param", "B=", file]);
    assert.equal(emptied.code, 2, `${step}: ${emptied.stderr}`);
    assert.match(errorLine(emptied).error, /with the parameters' values, .* (is empty|only whitespace)/);
  }
  // A value given empty still empties a field that refers to no missing parameter.
  const file = flow('command: ["${params.B}"], cwd: "${params.A}"');
  const result = await cli(["validate", "--param", "B=", file]);
  assert.equal(result.code, 2, result.stderr);
  assert.match(errorLine(result).error, /command\[0\] \(the program\) is empty/);
  // start still needs every required value.
  const db = ["--db", join(dir.path, "state.sqlite3"), "--executor", "builtin"];
  const start = await cli([...db, "start", "-q", "--run-key", "k", "--param", "B=x", file]);
  assert.equal(start.code, 2, start.stderr);
  assert.match(errorLine(start).error, /missing required parameter "A"/);
});

Deno.test("a named pipe as the flow file: read once a writer opens it; refused after 5 s when none does", async () => {
  using dir = tempDir();
  const pipe = join(dir.path, "flow.pipe");
  const made = await new Deno.Command("mkfifo", { args: [pipe] }).output();
  assert.equal(made.code, 0, "mkfifo");
  assert.ok(Deno.statSync(pipe).isFifo);

  const nobody = await cli(["validate", pipe]);
  assert.equal(nobody.code, 2, nobody.stderr);
  assert.equal(
    errorLine(nobody).error,
    `validate: cannot read flow file ${pipe}: a named pipe that no process opened for writing within 5 s`,
  );

  // A writer that comes a second later is waited for.
  const writer = new Deno.Command("sh", {
    args: ["-c", 'sleep 1; printf "flow_id: p\\nsteps:\\n  - {id: a, command: [/bin/true]}\\n" > "$1"', "sh", pipe],
  }).spawn();
  const read = await cli(["validate", pipe]);
  assert.equal((await writer.status).code, 0);
  assert.equal(read.code, 0, read.stderr);
  assert.equal(JSON.parse(read.stdout).flow_id, "p");
});
