/** Loader and binding of the authoring fields: env, cwd, params, max_parallel, backoff fields. */
import assert from "node:assert/strict";
import { FlowError, loadFlow } from "../../src/flow/load.ts";
import { LIMITS } from "../../src/flow/limits.ts";
import { definitionHash, denormalizeFlow, normalizeFlow } from "../../src/flow/normalize.ts";
import {
  bindFlow,
  ParamError,
  paramReferences,
  parseParamArgument,
  resolveParamValues,
  substituteParams,
} from "../../src/flow/params.ts";

import { thrown } from "../helpers.ts";
import { loadYamlLibrary } from "../../src/flow/mod.ts";

await loadYamlLibrary();

const FLOW = `flow_id: f
params:
  DAY: null
  REGION: eu
env:
  A: flow-a
  B: flow-b
cwd: work
max_parallel: 2
steps:
  - id: one
    env: {B: "step-b", C: "\${params.DAY}-\${params.REGION}"}
    command: ["echo", "\${params.DAY}", "\${HOME}", "$\${params.REGION}"]
  - id: two
    cwd: /abs/\${params.REGION}
    retries: 3
    retry_delay_sec: 0.5
    retry_backoff: exponential
    retry_max_delay_sec: 4
    retry_jitter: 0.25
    retry_on_exit_codes: [75, 75, 1]
    command: "echo \${params.REGION}"
`;

function error(text: string, fileName = "flow.yaml"): string {
  return thrown(() => loadFlow(text, fileName), FlowError).message;
}

Deno.test("flow env and cwd are inherited by steps; the step's own env wins per variable", () => {
  const flow = loadFlow(FLOW, "flow.yaml");
  assert.deepEqual(flow.params, [{ name: "DAY", default: null }, { name: "REGION", default: "eu" }]);
  assert.equal(flow.maxParallel, 2);
  assert.equal(flow.paramValues, null);
  const [one, two] = flow.steps;
  assert.deepEqual(one.env, { A: "flow-a", B: "step-b", C: "${params.DAY}-${params.REGION}" });
  assert.equal(one.cwd, "work");
  assert.equal(two.cwd, "/abs/${params.REGION}");
  assert.deepEqual(two.env, { A: "flow-a", B: "flow-b" });
  assert.equal(two.retryBackoff, "exponential");
  assert.equal(two.retryMaxDelaySec, 4);
  assert.equal(two.retryJitter, 0.25);
  assert.deepEqual(two.retryOnExitCodes, [75, 1]);
  assert.equal(one.retryBackoff, "fixed");
  assert.equal(one.retryOnExitCodes, null);
});

Deno.test("binding substitutes only ${params.NAME} and makes a relative cwd absolute against the flow's directory", () => {
  const bound = bindFlow(loadFlow(FLOW, "flow.yaml"), { DAY: "mon" }, "/flows/dir");
  assert.deepEqual(bound.paramValues, { DAY: "mon", REGION: "eu" });
  const [one, two] = bound.steps;
  assert.deepEqual(one.command, ["echo", "mon", "${HOME}", "$eu"]);
  assert.deepEqual(one.env, { A: "flow-a", B: "step-b", C: "mon-eu" });
  assert.equal(one.cwd, "/flows/dir/work");
  assert.equal(two.cwd, "/abs/eu");
  assert.deepEqual(two.command, ["/bin/sh", "-c", "echo eu"]);
  // A value is inserted as is, never evaluated or substituted again.
  const tricky = bindFlow(loadFlow(FLOW, "flow.yaml"), { DAY: "$(rm -rf /) ${params.REGION}" }, "/d");
  assert.equal(tricky.steps[0].command[1], "$(rm -rf /) ${params.REGION}");
});

Deno.test("the definition hash covers the parameter values and survives storage", () => {
  const loaded = loadFlow(FLOW, "flow.yaml");
  const monday = bindFlow(loaded, { DAY: "mon" }, "/d");
  const tuesday = bindFlow(loaded, { DAY: "tue" }, "/d");
  assert.notEqual(definitionHash(monday), definitionHash(tuesday));
  assert.equal(definitionHash(monday), definitionHash(bindFlow(loaded, { DAY: "mon", REGION: "eu" }, "/d")));
  const stored = denormalizeFlow(JSON.parse(JSON.stringify(normalizeFlow(monday))));
  assert.deepEqual(stored, monday);
  assert.equal(definitionHash(stored), definitionHash(monday));
});

Deno.test("a flow using none of the new fields keeps its normalized form (and so its hash)", () => {
  const flow = loadFlow("flow_id: f\nsteps:\n  - id: A\n    command: [a]\n", "flow.yaml");
  assert.deepEqual(Object.keys(normalizeFlow(bindFlow(flow, {}, "/d"))), ["flow_id", "steps"]);
  assert.deepEqual(Object.keys(normalizeFlow(flow).steps[0]), [
    "id",
    "command",
    "when",
    "depends_on",
    "waits_for",
    "retries",
    "retry_delay_sec",
    "timeout_sec",
    "strict",
    "start_timeout_sec",
  ]);
});

Deno.test("missing, unknown and malformed parameters are usage errors", () => {
  const flow = loadFlow(FLOW, "flow.yaml");
  assert.equal(
    thrown(() => resolveParamValues(flow, {}), ParamError).message,
    'missing required parameter "DAY": give --param DAY=VALUE',
  );
  assert.equal(
    thrown(() => resolveParamValues(flow, { DAY: "x", DAYS: "y" }), ParamError).message,
    'unknown parameter "DAYS" (declared: DAY, REGION)',
  );
  assert.deepEqual(resolveParamValues(flow, { DAY: "", REGION: "us" }), { DAY: "", REGION: "us" });
  assert.deepEqual(parseParamArgument("DAY=a=b"), ["DAY", "a=b"]);
  assert.deepEqual(parseParamArgument("DAY="), ["DAY", ""]);
  for (const bad of ["DAY", "=x", "1X=y", "A-B=c"]) thrown(() => parseParamArgument(bad), ParamError);
  const huge = thrown(() => parseParamArgument(`DAY=${"x".repeat(LIMITS.argumentBytes + 1)}`), ParamError);
  assert.match(huge.message, /^--param DAY: value of 131073 bytes, over the limit of 131072$/);
});

Deno.test("parameter references: exact syntax, declared names only", () => {
  assert.deepEqual(paramReferences("a ${params.X} b ${params.Y_2}${params.X}"), ["X", "Y_2", "X"]);
  assert.deepEqual(paramReferences("$HOME ${HOME} $params.X ${param.X}"), []);
  assert.throws(() => paramReferences("${params.}"), /invalid parameter reference "\$\{params\.\}"/);
  assert.throws(() => paramReferences("${params.a-b}"), /invalid parameter reference/);
  assert.throws(() => paramReferences("x ${params.A"), /invalid parameter reference "\$\{params\.A"/);
  assert.equal(substituteParams("${params.A}${params.A}/${params.B}", { A: "1", B: "" }), "11/");
  assert.equal(
    error("flow_id: f\nsteps:\n  - id: A\n    command: [echo, '${params.X}']\n"),
    'flow.yaml:4:14: step "A": command refers to undeclared parameter "X" (declare it under params)',
  );
  assert.equal(
    error("flow_id: f\nenv: {A: '${params.X}'}\nsteps:\n  - id: A\n    command: [echo]\n"),
    'flow.yaml:2:6: env refers to undeclared parameter "X" (declare it under params)',
  );
  assert.match(
    error("flow_id: f\nparams: {X: a}\nsteps:\n  - id: A\n    cwd: '${params.X'\n    command: [echo]\n"),
    /flow\.yaml:5:10: step "A": cwd: invalid parameter reference/,
  );
});

Deno.test("the new fields reject bad values with position and step", () => {
  const step = (extra: string) => `flow_id: f\nsteps:\n  - id: A\n    command: [a]\n${extra}`;
  const cases: [string, string][] = [
    [step("    env: [A]\n"), 'flow.yaml:5:10: step "A": env must be a mapping of variable names to strings'],
    [
      step("    env: {PORT: 8080}\n"),
      'flow.yaml:5:10: step "A": env.PORT must be a string, got 8080; quote it ("8080")',
    ],
    // A list or a mapping gets no hint to quote it: "[a, b]" in quotes is that text, not a and b.
    [step("    env: {A: {x: 1}}\n"), 'flow.yaml:5:10: step "A": env.A must be a string, got {"x":1}'],
    [step("    env: {A: [a, b]}\n"), 'flow.yaml:5:10: step "A": env.A must be a string, got ["a","b"]'],
    [
      "flow_id: f\nparams: {X: [a]}\nsteps: [{id: A, command: [a]}]\n",
      'flow.yaml:2:9: params.X must be a string or null, got ["a"]',
    ],
    [
      step("    env: {1X: a}\n"),
      'flow.yaml:5:10: step "A": env: invalid variable name "1X" (1-256 ASCII letters, digits and _, not starting with a digit)',
    ],
    [step("    cwd: ''\n"), 'flow.yaml:5:10: step "A": cwd must be a non-empty string, got ""'],
    [
      step("    retry_backoff: linear\n"),
      'flow.yaml:5:20: step "A": retry_backoff must be one of fixed, exponential, got "linear"',
    ],
    [step("    retry_jitter: 1.5\n"), 'flow.yaml:5:19: step "A": retry_jitter must be a number >= 0 and <= 1, got 1.5'],
    [
      step("    retry_max_delay_sec: -1\n"),
      'flow.yaml:5:26: step "A": retry_max_delay_sec must be a number >= 0, got -1',
    ],
    [
      step("    retry_on_exit_codes: []\n"),
      'flow.yaml:5:26: step "A": retry_on_exit_codes must be a non-empty list of integers, got []',
    ],
    [
      step("    retry_on_exit_codes: [1.5]\n"),
      'flow.yaml:5:26: step "A": retry_on_exit_codes must be a non-empty list of integers, got [1.5]',
    ],
    [
      "flow_id: f\nmax_parallel: 0\nsteps: [{id: A, command: [a]}]\n",
      "flow.yaml:2:15: max_parallel must be an integer >= 1, got 0",
    ],
    [
      "flow_id: f\nparams: {X: 1}\nsteps: [{id: A, command: [a]}]\n",
      'flow.yaml:2:9: params.X must be a string or null, got 1; quote it ("1")',
    ],
    [
      "flow_id: f\nparams: [X]\nsteps: [{id: A, command: [a]}]\n",
      "flow.yaml:2:9: params must be a mapping of parameter names to default strings (or null)",
    ],
    [
      "flow_id: f\nmax_paralel: 2\nsteps: [{id: A, command: [a]}]\n",
      'flow.yaml:2:1: unknown field "max_paralel"; did you mean "max_parallel"?',
    ],
  ];
  for (const [text, message] of cases) assert.equal(error(text), message, text);
});

Deno.test("the new fields are bounded like the others (limits.ts)", () => {
  const step = (extra: string) => `flow_id: f\nsteps:\n  - id: A\n    command: [a]\n${extra}`;
  const cases: [string, RegExp][] = [
    [step(`    cwd: /${"d".repeat(LIMITS.pathBytes)}\n`), /cwd of 4097 bytes, over the limit of 4096$/],
    [step(`    env: {X: ${"v".repeat(LIMITS.argumentBytes)}}\n`), /env\.X is over the limit of 131072 bytes$/],
    [
      step(`    env: {${"N".repeat(300)}: v}\n`),
      /env: invalid variable name "N{120}"… \(300 characters\) \(1-256 ASCII letters/,
    ],
    [
      step("    retry_on_exit_codes: [256]\n"),
      /retry_on_exit_codes must list at most 512 exit codes from -255 to 255$/,
    ],
    [step("    retry_max_delay_sec: 1e12\n"), /retry_max_delay_sec must be at most 31622400, got 1000000000000$/],
    ["flow_id: f\nmax_parallel: 1e9\nsteps: [{id: A, command: [a]}]\n", /max_parallel must be at most 100000, got/],
  ];
  for (const [text, pattern] of cases) assert.match(error(text), pattern);
  const many = Object.fromEntries(Array.from({ length: LIMITS.mapEntries + 1 }, (_, i) => [`V${i}`, "x"]));
  const json = JSON.stringify({ flow_id: "f", env: many, steps: [{ id: "A", command: ["a"] }] });
  assert.match(error(json, "flow.json"), /env has 10001 entries, over the limit of 10000$/);
});

Deno.test("aliases and merge keys work in the new fields, within the alias limit", () => {
  const flow = loadFlow(
    `flow_id: f
env: &common {A: "1", B: "2"}
steps:
  - id: s
    command: [x]
    <<: &retry {retries: 3, retry_backoff: exponential, retry_delay_sec: 1}
    env: *common
  - id: t
    <<: *retry
    command: [y]
`,
    "flow.yaml",
  );
  assert.deepEqual(flow.steps[0].env, { A: "1", B: "2" });
  assert.equal(flow.steps[1].retryBackoff, "exponential");
  assert.equal(flow.steps[1].retries, 3);
  // A "billion laughs" inside env stops at the alias limit instead of expanding.
  const levels = [`L0: &l0 [${Array(9).fill("x").join(", ")}]`];
  for (let i = 1; i <= 12; i++) levels.push(`L${i}: &l${i} [${Array(9).fill(`*l${i - 1}`).join(", ")}]`);
  const bomb = `flow_id: f\nenv: {${levels.join(", ")}}\nsteps: [{id: s, command: [x]}]\n`;
  assert.match(error(bomb), /^flow\.yaml:2:\d+: aliases expand to more than 1000000 values$/);
});
