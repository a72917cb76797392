import assert from "node:assert/strict";
import { FlowError, loadFlow } from "../../src/flow/load.ts";
import { definitionHash, normalizeFlow } from "../../src/flow/normalize.ts";
import { FLOW_FIELD_TABLE, STEP_FIELD_TABLE } from "../../src/flow/fields.ts";
import { formatWhen } from "../../src/flow/when.ts";
import { thrown } from "../helpers.ts";

import { loadYamlLibrary } from "../../src/flow/mod.ts";
// loadFlow needs the YAML library, which the CLI imports only when it reads a flow file.
await loadYamlLibrary();

/** A one-step flow whose step carries `extra` (YAML lines, indented as step fields). */
function oneStep(extra: string): string {
  return `flow_id: f\nsteps:\n  - id: A\n    command: [echo, hi]\n${extra}`;
}

function error(text: string, file = "flow.yaml"): string {
  return thrown(() => loadFlow(text, file), FlowError).message;
}

function whenOf(text: string, stepId: string): string | null {
  const step = loadFlow(text, "flow.yaml").steps.find((s) => s.id === stepId)!;
  return step.condition ? formatWhen(step.condition) : null;
}

Deno.test("a minimal flow loads with the documented defaults", () => {
  const flow = loadFlow(oneStep(""), "flow.yaml");
  assert.deepEqual(normalizeFlow(flow), {
    flow_id: "f",
    steps: [{
      id: "A",
      command: ["echo", "hi"],
      when: null,
      depends_on: [],
      waits_for: [],
      retries: 0,
      retry_delay_sec: 0,
      timeout_sec: null,
      strict: true,
      start_timeout_sec: null,
    }],
  });
});

Deno.test("every optional field is read when valid", () => {
  const text = `flow_id: f
steps:
  - id: A
    command: [a]
  - id: B
    command: "echo $HOME | tr a-z A-Z"
    when: A
    depends_on: [A]
    retries: 2
    retry_delay_sec: 1.5
    timeout_sec: 30
    strict: false
    start_timeout_sec: 2
`;
  const b = normalizeFlow(loadFlow(text, "flow.yaml")).steps[1];
  assert.deepEqual(b, {
    id: "B",
    command: ["/bin/sh", "-c", "echo $HOME | tr a-z A-Z"],
    when: "A",
    depends_on: ["A"],
    waits_for: ["A"],
    retries: 2,
    retry_delay_sec: 1.5,
    timeout_sec: 30,
    strict: false,
    start_timeout_sec: 2,
  });
});

Deno.test("each field rejects bad values with the file, line, column and step", () => {
  const cases: [string, string][] = [
    ["    retries: -1\n", 'flow.yaml:5:14: step "A": retries must be an integer >= 0, got -1'],
    ["    retries: 1.5\n", 'flow.yaml:5:14: step "A": retries must be an integer >= 0, got 1.5'],
    ["    retries: two\n", 'flow.yaml:5:14: step "A": retries must be an integer >= 0, got "two"'],
    ["    retry_delay_sec: -0.5\n", 'flow.yaml:5:22: step "A": retry_delay_sec must be a number >= 0, got -0.5'],
    ["    timeout_sec: 0\n", 'flow.yaml:5:18: step "A": timeout_sec must be a number > 0, got 0'],
    ["    start_timeout_sec: -1\n", 'flow.yaml:5:24: step "A": start_timeout_sec must be a number >= 0.01, got -1'],
    [
      "    start_timeout_sec: 0.005\n",
      'flow.yaml:5:24: step "A": start_timeout_sec must be a number >= 0.01, got 0.005',
    ],
    ["    strict: yes\n", 'flow.yaml:5:13: step "A": strict must be true or false, got "yes"'],
    ["    when: 3\n", 'flow.yaml:5:11: step "A": when refers to unknown step "3"'],
    ["    when: ''\n", 'flow.yaml:5:11: step "A": when must be a non-empty string expression'],
    ["    depends_on: A\n", 'flow.yaml:5:17: step "A": depends_on must be a list of step ids'],
    ["    depends_on: [1]\n", 'flow.yaml:5:17: step "A": depends_on names unknown step "1"'],
    ["    depend_on: [B]\n", 'flow.yaml:5:5: unknown field "depend_on" in step "A"; did you mean "depends_on"?'],
    ["    retrys: 1\n", 'flow.yaml:5:5: unknown field "retrys" in step "A"; did you mean "retries"?'],
    [
      "    zzz: 1\n",
      'flow.yaml:5:5: unknown field "zzz" in step "A"; expected one of id, command, when, depends_on, env, cwd, retries, retry_delay_sec, retry_backoff, retry_max_delay_sec, retry_jitter, retry_on_exit_codes, timeout_sec, strict, start_timeout_sec',
    ],
  ];
  for (const [extra, message] of cases) assert.equal(error(oneStep(extra)), message, extra);
});

Deno.test("an unknown field suggests the field meant: another tool's name for it, a field it begins, a near typo", () => {
  const steps: [string, string][] = [
    ["timeout", "timeout_sec"],
    ["retry_delay", "retry_delay_sec"],
    ["depends", "depends_on"],
    ["retry", "retries"],
    // One edit from "cwd", but what other tools call the command.
    ["cmd", "command"],
    ["args", "command"],
    ["env_vars", "env"],
    ["deps", "depends_on"],
    ["needs", "depends_on"],
    ["working_dir", "cwd"],
    ["name", "id"],
    ["Timeout", "timeout_sec"],
    ["start_timeout", "start_timeout_sec"],
    ["retrys", "retries"],
  ];
  for (const [written, meant] of steps) {
    assert.equal(
      error(oneStep(`    ${written}: 1\n`)),
      `flow.yaml:5:5: unknown field "${written}" in step "A"; did you mean "${meant}"?`,
    );
  }
  // At the flow level, the fields there.
  const flow = "flow_id: f\nsteps: [{id: A, command: [a]}]\n";
  assert.equal(error(`name: x\n${flow}`), 'flow.yaml:1:1: unknown field "name"; did you mean "flow_id"?');
  assert.equal(error(`parallel: 2\n${flow}`), 'flow.yaml:1:1: unknown field "parallel"; did you mean "max_parallel"?');
  // Too short to begin one field, too far from any: the list.
  assert.match(error(oneStep("    re: 1\n")), /unknown field "re" in step "A"; expected one of id, command, /);
});

Deno.test("flow-level fields are required and checked", () => {
  assert.equal(error("steps: []\n"), 'flow.yaml:1:1: missing required field "flow_id"');
  assert.equal(
    error("flow_id: ''\nsteps: [{id: A, command: [a]}]\n"),
    "flow.yaml:1:10: flow_id must be a non-empty string",
  );
  assert.equal(error("flow_id: f\n"), 'flow.yaml:1:1: missing required field "steps"');
  assert.equal(error("flow_id: f\nsteps: []\n"), "flow.yaml:2:8: steps must be a non-empty list");
  assert.equal(error("flow_id: f\nstep: []\n"), 'flow.yaml:2:1: unknown field "step"; did you mean "steps"?');
  assert.equal(error("- a\n"), "flow.yaml:1:1: a flow must be a mapping with flow_id and steps");
  assert.equal(error("flow_id: f\nsteps: [3]\n"), "flow.yaml:2:9: each step must be a mapping with id and command");
});

Deno.test("an optional field set to null is absent (its default), in JSON and in every YAML spelling", () => {
  const base = () => ({ flow_id: "f", steps: [{ id: "A", command: ["echo", "hi"] }] as Record<string, unknown>[] });
  const expected = definitionHash(loadFlow(JSON.stringify(base()), "flow.json"));
  const optional = (table: typeof FLOW_FIELD_TABLE) => table.filter((f) => !f.required).map((f) => f.name);
  for (const name of optional(FLOW_FIELD_TABLE)) {
    const json = { ...base(), [name]: null };
    assert.equal(definitionHash(loadFlow(JSON.stringify(json), "flow.json")), expected, `flow ${name}: null (JSON)`);
    for (const none of [" null", " ~", "", " Null"]) {
      const yaml = `flow_id: f\n${name}:${none}\nsteps:\n  - id: A\n    command: [echo, hi]\n`;
      assert.equal(definitionHash(loadFlow(yaml, "flow.yaml")), expected, `flow ${name}:${none}`);
    }
  }
  for (const name of optional(STEP_FIELD_TABLE)) {
    const json = base();
    json.steps[0][name] = null;
    assert.equal(definitionHash(loadFlow(JSON.stringify(json), "flow.json")), expected, `step ${name}: null (JSON)`);
    for (const none of [" null", " ~", "", " NULL"]) {
      assert.equal(
        definitionHash(loadFlow(oneStep(`    ${name}:${none}\n`), "flow.yaml")),
        expected,
        `${name}:${none}`,
      );
    }
    assert.equal(
      definitionHash(loadFlow(`flow_id: f\nsteps: [{id: A, command: [echo, hi], ${name}}]\n`, "f")),
      expected,
    );
  }
  // A null `when` is no condition: never the step "null", even where one exists.
  const withNull = {
    flow_id: "f",
    steps: [{ id: "null", command: ["x"] }, { id: "B", command: ["x"], when: null, depends_on: null }],
  };
  const b = loadFlow(JSON.stringify(withNull), "flow.json").steps[1];
  assert.deepEqual([b.condition, b.dependsOn, b.waitsFor], [null, [], []]);
  // A step's own null wins over a merged value, as any value of its own would.
  const merged = loadFlow(
    "flow_id: f\nsteps:\n  - &a {id: A, command: [x], timeout_sec: 5, strict: false}\n" +
      "  - {<<: *a, id: B, timeout_sec: ~}\n",
    "flow.yaml",
  );
  assert.deepEqual([merged.steps[1].timeoutSec, merged.steps[1].strict], [null, false]);
});

Deno.test('a null is refused where it cannot mean absent, and never read as the text "null"', () => {
  const cases: [string, string][] = [
    ["flow_id: null\nsteps: [{id: A, command: [a]}]\n", 'flow.yaml:1:10: required field "flow_id" is null'],
    ["flow_id: f\nsteps:\n", 'flow.yaml:2:7: required field "steps" is null'],
    ["flow_id: f\nsteps:\n  - id: ~\n    command: [a]\n", 'flow.yaml:3:9: required field "id" of a step is null'],
    ["flow_id: f\nsteps:\n  - id: A\n    command:\n", 'flow.yaml:4:13: step "A": required field "command" is null'],
    ["flow_id: f\nsteps:\n  - {id: A, command}\n", 'flow.yaml:3:5: step "A": required field "command" is null'],
    [
      "flow_id: f\nsteps:\n  - id: A\n    command: [a]\n    env: {X: ~}\n",
      'flow.yaml:5:10: step "A": env.X must be a string, got null (write "" for an empty value, or leave X out)',
    ],
    [
      "flow_id: f\nenv: {null: x}\nsteps: [{id: A, command: [a]}]\n",
      'flow.yaml:2:7: a mapping key is null (an unquoted null or ~, or an empty key); quote it if the name "null" is meant',
    ],
    [
      "flow_id: f\nparams: {~: x}\nsteps: [{id: A, command: [a]}]\n",
      'flow.yaml:2:10: a mapping key is null (an unquoted null or ~, or an empty key); quote it if the name "null" is meant',
    ],
    [
      "flow_id: f\nsteps:\n  - {id: 'null', command: [a]}\n  - {id: B, command: [a], depends_on: [null]}\n",
      'flow.yaml:4:39: step "B": depends_on[0] is null, not a step id',
    ],
    [
      "flow_id: f\nsteps:\n  - id: A\n    command: [a, null]\n",
      'flow.yaml:4:14: step "A": command[1] must be a string, got null',
    ],
  ];
  for (const [text, message] of cases) assert.equal(error(text), message, text);
  const json = '{"flow_id": "f", "steps": [{"id": "null", "command": ["a"]}, {"id": "B", "command": null}]}';
  assert.equal(error(json, "flow.json"), 'flow.json:1:85: step "B": required field "command" is null');
  // Quoted, "null" is a name like any other.
  const quoted = loadFlow(
    "flow_id: f\nenv: {'null': x}\nsteps:\n  - {id: 'null', command: [a]}\n  - {id: B, command: [a], when: 'null'}\n",
    "flow.yaml",
  );
  assert.deepEqual([quoted.steps[1].env, quoted.steps[1].waitsFor], [{ null: "x" }, ["null"]]);
});

Deno.test("executor_unavailable_sec: a number > 0, kept through the stored definition, rejected otherwise", () => {
  const flow = loadFlow("flow_id: f\nexecutor_unavailable_sec: 90\nsteps: [{id: A, command: [a]}]\n", "flow.yaml");
  assert.equal(flow.executorUnavailableSec, 90);
  assert.equal(normalizeFlow(flow).executor_unavailable_sec, 90);
  for (const bad of ["0", "-1", "soon", "1e99"]) {
    assert.match(
      error(`flow_id: f\nexecutor_unavailable_sec: ${bad}\nsteps: [{id: A, command: [a]}]\n`),
      /^flow\.yaml:2:27: executor_unavailable_sec must be a number > 0 and <= \d+$/,
      bad,
    );
  }
});

Deno.test("ids and commands are checked", () => {
  assert.equal(error("flow_id: f\nsteps:\n  - command: [a]\n"), 'flow.yaml:3:5: step is missing required field "id"');
  assert.match(
    error("flow_id: f\nsteps:\n  - id: 'a:b'\n    command: [a]\n"),
    /^flow\.yaml:3:9: invalid step id "a:b"/,
  );
  assert.match(error("flow_id: f\nsteps:\n  - id: -a\n    command: [a]\n"), /invalid step id "-a"/);
  assert.equal(error("flow_id: f\nsteps:\n  - id: A\n"), 'flow.yaml:3:5: step "A": missing required field "command"');
  assert.equal(
    error("flow_id: f\nsteps:\n  - id: A\n    command: []\n"),
    'flow.yaml:4:14: step "A": command must be a non-empty list of strings, or a string run by /bin/sh -c',
  );
  assert.equal(
    error("flow_id: f\nsteps:\n  - id: A\n    command: [a, 1]\n"),
    'flow.yaml:4:14: step "A": command[1] must be a string, got 1',
  );
  assert.equal(
    error("flow_id: f\nsteps:\n  - id: A\n    command: '  '\n"),
    'flow.yaml:4:14: step "A": command must not be empty',
  );
  assert.equal(
    error("flow_id: f\nsteps:\n  - id: A\n    command: [' ', x]\n"),
    'flow.yaml:4:14: step "A": command[0] (the program) must not be only whitespace',
  );
  assert.equal(
    error("flow_id: f\nsteps:\n  - id: A\n    command: [a]\n  - id: A\n    command: [b]\n"),
    'flow.yaml:5:9: step "A": duplicate step id "A" (first defined at line 3)',
  );
  // Numeric ids are kept as their text.
  assert.equal(loadFlow("flow_id: f\nsteps:\n  - id: 7\n    command: [a]\n", "f.yaml").steps[0].id, "7");
});

Deno.test("unquoted `when: !…` loads as exactly the expression written (the YAML tag trap)", () => {
  const text = `flow_id: f
steps:
  - id: download
    command: [a]
  - id: validate
    command: [a]
  - id: import
    command: [a]
  - id: E
    when: !download
    command: [a]
  - id: F
    when: !download && validate
    command: [a]
  - id: G
    when: !download || !validate || !import
    command: [a]
  - id: H
    when: !download || !validate   # a comment stays a comment
    command: [a]
  - {id: I, when: !download && import, command: [a]}
  - {id: J, when: "!download", command: [a]}
  - id: K
    when: '!download && !import'
    command: [a]
  - id: L
    when: (download && validate) || !import
    command: [a]
  - id: M
    when: "!(download)"
    command: ["echo", "when: !download"]
`;
  const expected: Record<string, string> = {
    E: "!download",
    F: "!download && validate",
    G: "!download || !validate || !import",
    H: "!download || !validate",
    I: "!download && import",
    J: "!download",
    K: "!download && !import",
    L: "download && validate || !import",
    M: "!download",
  };
  for (const [id, when] of Object.entries(expected)) assert.equal(whenOf(text, id), when, id);
  const m = loadFlow(text, "flow.yaml").steps.find((s) => s.id === "M")!;
  assert.deepEqual(m.command, ["echo", "when: !download"]);
});

Deno.test("when errors point at the when value and give the expression column", () => {
  assert.equal(
    error(oneStep("    when: 'A &&'\n")),
    'flow.yaml:5:11: step "A": invalid when expression "A &&": unexpected end of expression at column 5',
  );
  assert.equal(
    error(oneStep("    when: !B &&\n")),
    'flow.yaml:5:11: step "A": invalid when expression "!B &&": unexpected end of expression at column 6',
  );
});

Deno.test("depends_on without when is a success chain; with when it only waits", () => {
  const text = `flow_id: f
steps:
  - {id: A, command: [a]}
  - {id: B, command: [a]}
  - {id: cleanup, command: [a]}
  - {id: C, depends_on: [A, B], command: [a]}
  - {id: D, depends_on: [cleanup], when: A || B, command: [a]}
`;
  const flow = normalizeFlow(loadFlow(text, "flow.yaml"));
  const c = flow.steps.find((s) => s.id === "C")!;
  const d = flow.steps.find((s) => s.id === "D")!;
  assert.equal(c.when, "A && B");
  assert.deepEqual(c.waits_for, ["A", "B"]);
  assert.equal(d.when, "A || B");
  assert.deepEqual(d.waits_for, ["cleanup", "A", "B"]);
});

Deno.test("unknown ids, self references and cycles are rejected with a cycle path", () => {
  const steps = (lines: string) => `flow_id: f\nsteps:\n${lines}`;
  assert.equal(
    error(
      steps(
        "  - id: A\n    when: C\n    command: [a]\n  - id: B\n    when: A\n    command: [a]\n  - id: C\n    when: B\n    command: [a]\n",
      ),
    ),
    'flow.yaml:3:9: step "A": dependency cycle detected: A -> C -> B -> A',
  );
  assert.equal(
    error(
      steps(
        "  - id: A\n    command: [a]\n  - id: B\n    depends_on: [C]\n    command: [a]\n  - id: C\n    when: B || A\n    command: [a]\n",
      ),
    ),
    'flow.yaml:5:9: step "B": dependency cycle detected: B -> C -> B',
  );
  assert.equal(
    error(steps("  - id: A\n    when: Z\n    command: [a]\n")),
    'flow.yaml:4:11: step "A": when refers to unknown step "Z"',
  );
  assert.equal(
    error(steps("  - id: A\n    when: '!A'\n    command: [a]\n")),
    'flow.yaml:4:11: step "A": step "A" refers to itself in when',
  );
  assert.equal(
    error(steps("  - id: A\n    depends_on: [A]\n    command: [a]\n")),
    'flow.yaml:4:17: step "A": step "A" depends on itself',
  );
  assert.equal(
    error(steps("  - id: A\n    depends_on: [Q]\n    command: [a]\n")),
    'flow.yaml:4:17: step "A": depends_on names unknown step "Q"',
  );
});

Deno.test("JSON flows load, and JSON syntax errors give a position", () => {
  const json = JSON.stringify(
    {
      flow_id: "j",
      steps: [{ id: "A", command: ["a"] }, { id: "B", when: "!A", command: "echo b" }],
    },
    null,
    2,
  );
  const flow = normalizeFlow(loadFlow(json, "flow.json"));
  assert.equal(flow.steps[1].when, "!A");
  assert.deepEqual(flow.steps[1].command, ["/bin/sh", "-c", "echo b"]);
  assert.match(error('{\n  "flow_id": "j",\n  "steps": [}\n', "flow.json"), /^flow\.json:3:\d+: invalid JSON: /);
  assert.match(
    error('{"flow_id": "j", "steps": [{"id": "A", "commnd": ["a"]}]}', "flow.json"),
    /flow\.json:1:\d+: unknown field "commnd" in step "A"; did you mean "command"\?/,
  );
});

Deno.test("JSON errors that V8 words without a position still get one, from the text it quotes", () => {
  // At the end of the text, at the start, in the middle, and on a later line (the token V8 names).
  const cases: [string, string][] = [
    ['{"flow_id": "j", "steps": [{"id": "A", "command": ["a"], "strict": tru}]}', "1:71"],
    ['{"flow_id": "j",\n "steps": [{"id": "A",\n  "command": [a], "strict": true}]}', "3:15"],
    ['{"flow_id": "j",\n "steps": [{"id": "A",\n  "command": ["a"], "strict": tru, "retries": 1}]}', "3:34"],
    ['tru {"flow_id": "j", "steps": []}', "1:4"],
    ['{"flow_id": "j", "steps": [', "1:28"],
  ];
  for (const [text, position] of cases) {
    assert.match(error(text, "flow.json"), new RegExp(`^flow\\.json:${position}: invalid JSON: `), text);
  }
  // A text quoted whole (a short file), or quoted context found twice, cannot be placed for sure.
  assert.match(error('{"a": tru}', "flow.json"), /^flow\.json: invalid JSON: Unexpected token/);
  const twice = '{"s": "1, 2, 3, 4, 5, tru, 6, 7, 8, 9", "x": [1, 2, 3, 4, 5, tru, 6, 7, 8, 9]}';
  assert.match(error(twice, "flow.json"), /^flow\.json: invalid JSON: Unexpected token ',', \.\.\."/);
});

Deno.test("YAML syntax errors and duplicate keys give a position", () => {
  assert.match(error("flow_id: f\nsteps: [\n"), /^flow\.yaml:\d+:\d+: invalid YAML: /);
  assert.match(
    error("flow_id: f\nflow_id: g\nsteps: [{id: A, command: [a]}]\n"),
    /^flow\.yaml:2:1: invalid YAML: .*[Uu]nique/,
  );
});

Deno.test("a %YAML directive other than 1.2 is refused at its line; %YAML 1.2 reads as without one", () => {
  const body = "---\nflow_id: f\nsteps:\n  - {id: A, command: [echo, yes, on, 1:20], retries: 010}\n";
  const plain = loadFlow(body, "flow.yaml");
  // YAML 1.1 would read true, true, 80 and 8.
  assert.deepEqual(plain.steps[0].command, ["echo", "yes", "on", "1:20"]);
  assert.deepEqual(loadFlow(`%YAML 1.2\n${body}`, "flow.yaml"), plain);
  for (const version of ["1.1", "1.0", "1.3", "2.0"]) {
    assert.match(
      error(`# a comment\n%YAML ${version}\n${body}`),
      new RegExp(
        `^flow\\.yaml:2:1: %YAML ${version.replace(".", "\\.")} is not supported: flow files are read as YAML 1\\.2`,
      ),
    );
  }
  // The last of several %YAML lines is the one the library goes by.
  assert.match(error(`%YAML 1.2\n%YAML 1.1\n${body}`), /^flow\.yaml:2:1: %YAML 1\.1 is not supported/);
  assert.equal(loadFlow(`%TAG !e! tag:example.com,2000:\n${body}`, "flow.yaml").steps[0].retries, 10);
});
