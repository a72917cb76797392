/**
 * A large flow file is read one step at a time (loadFlowInParts); that must give exactly what reading
 * it whole gives. Compared on every flow file of the project, on generated layouts (indentation,
 * CRLF, comments, block scalars, keys after the steps, JSON pretty and minified), and on seeded random
 * mutations of them: whenever the parts reader returns a flow, the whole reader returns the same flow
 * with the same places; whenever the whole reader refuses a file, the parts reader gives way (null).
 * loadFlow gives the whole reader's result or error in every case.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import type { FlowDefinition } from "../../src/domain/mod.ts";
import { FlowError, loadYamlLibrary } from "../../src/flow/mod.ts";
import { loadFlow, loadFlowInParts, loadWholeFlow } from "../../src/flow/load.ts";
import { fieldPlace } from "../../src/flow/places.ts";
import { REPO } from "../helpers.ts";
import { mutate, random } from "./mutations.ts";

await loadYamlLibrary();

type Outcome = { flow: FlowDefinition } | { error: string };

function outcome(read: () => FlowDefinition): Outcome {
  try {
    return { flow: read() };
  } catch (error) {
    if (!(error instanceof FlowError)) throw error;
    return { error: error.message };
  }
}

/** Each step's recorded places (command, cwd, every env name), which parameter errors name. */
function placesOf(flow: FlowDefinition): unknown[] {
  return flow.steps.map((step) => [
    fieldPlace(step, "command"),
    fieldPlace(step, "cwd"),
    Object.keys(step.env ?? {}).map((name) => fieldPlace(step, `env.${name}`)),
  ]);
}

/** Compares the readers on one text; returns whether it was read in parts. */
function compare(text: string, name: string, label: string): boolean {
  const whole = outcome(() => loadWholeFlow(text, name));
  const parts = loadFlowInParts(text, name);
  const chosen = outcome(() => loadFlow(text, name));
  assert.deepEqual(chosen, whole, `${label}: loadFlow differs from the whole reader`);
  if ("flow" in chosen && "flow" in whole) assert.deepEqual(placesOf(chosen.flow), placesOf(whole.flow), label);
  if (parts === null) return false;
  assert.ok("flow" in whole, `${label}: read in parts, but the whole reader refuses it: ${JSON.stringify(whole)}`);
  assert.deepEqual(parts, whole.flow, `${label}: the parts reader read another flow`);
  assert.deepEqual(placesOf(parts), placesOf(whole.flow), `${label}: places differ`);
  return true;
}

interface Layout {
  indent: number;
  crlf: boolean;
  json?: "pretty" | "minified";
}

/** A flow of `n` steps with most of what a step can hold, written in `layout`. */
function generated(n: number, layout: Layout): string {
  const steps = Array.from({ length: n }, (_, i) => ({
    id: `s${i}`,
    command: i % 3 === 0 ? `echo "- [x], {y}" \\"${i}\\"` : ["printf", "%s\n", `a: b # ${i}`],
    ...(i > 0 ? { depends_on: [`s${i - 1}`] } : {}),
    ...(i % 4 === 1 ? { env: { K: `v${i}`, L: '"],[{' }, retries: 2, retry_delay_sec: 0.5 } : {}),
    ...(i % 5 === 2 ? { when: `!s${i - 1} || s0` } : {}),
  }));
  if (layout.json) {
    const flow = { flow_id: "gen", env: { A: "steps" }, steps, cwd: "/tmp", max_parallel: 3 };
    const text = layout.json === "pretty" ? JSON.stringify(flow, null, 2) : JSON.stringify(flow);
    return layout.crlf ? text.replaceAll("\n", "\r\n") : text;
  }
  const pad = " ".repeat(layout.indent);
  const lines = ["---", "# generated", "flow_id: gen", "env:", "  A: steps", "steps:", "# before the first step", ""];
  steps.forEach((step, i) => {
    lines.push(`${pad}- id: ${step.id}`);
    if (typeof step.command === "string") {
      const block = [`${pad}  command: |`, `${pad}    ${step.command}`, `${pad}    - not an item`];
      lines.push(...(i % 2 === 0 ? block : [`${pad}  command: '${step.command}'`]));
    } else lines.push(`${pad}  command:`, ...step.command.map((arg) => `${pad}    - ${JSON.stringify(arg)}`));
    if (step.depends_on) lines.push(`${pad}  depends_on: [${step.depends_on.join(", ")}]   # after`);
    if (step.env) lines.push(`${pad}  env: {K: ${step.env.K}}`, `${pad}  retries: 2`, `${pad}  retry_delay_sec: 0.5`);
    if (step.when) lines.push(`${pad}  when: ${step.when}`);
    if (i % 7 === 3) lines.push("", "#   - id: commented-out", `${pad}  # inside`, "");
  });
  lines.push("cwd: /tmp  # after the steps", "max_parallel: 3", "");
  return lines.join(layout.crlf ? "\r\n" : "\n");
}

const LAYOUTS: Layout[] = [
  { indent: 0, crlf: false },
  { indent: 2, crlf: false },
  { indent: 4, crlf: true },
  { indent: 2, crlf: false, json: "pretty" },
  { indent: 0, crlf: false, json: "minified" },
  { indent: 0, crlf: true, json: "pretty" },
];

Deno.test("the project's flow files read the same in parts as whole", () => {
  const dirs = [join(REPO, "examples"), join(REPO, "tests", "fixtures", "bad")];
  let inParts = 0;
  let files = 0;
  for (const dir of dirs) {
    for (const entry of Deno.readDirSync(dir)) {
      if (!/\.(ya?ml|json)$/.test(entry.name)) continue;
      files++;
      const text = new TextDecoder().decode(Deno.readFileSync(join(dir, entry.name)));
      if (compare(text, entry.name, entry.name)) inParts++;
    }
  }
  assert.ok(files > 150, `${files} files`);
  // The examples are read in parts (so the comparison above was made), the broken files mostly not.
  assert.ok(inParts >= 6, `only ${inParts} files were read in parts`);
});

Deno.test("generated layouts read the same in parts as whole, and are read in parts", () => {
  for (const layout of LAYOUTS) {
    const name = layout.json ? "gen.json" : "gen.yaml";
    const label = JSON.stringify(layout);
    assert.ok(compare(generated(40, layout), name, label), `${label} was not read in parts`);
  }
});

Deno.test("an error in a large file is reported as reading it whole reports it", () => {
  const text = generated(3000, { indent: 2, crlf: false });
  const broken = [
    text.replace("- id: s2500\n", "- id: s2499\n"),
    text.replace("- id: s2500\n", "- id: s2500\n  bogus: 1\n"),
    text.replace("- id: s2500\n", "- id: s2500\n  command: 'unclosed\n"),
    text.replace("- id: s2500\n", "- id: s2500\n\tretries: 1\n"),
    text.replace("- id: s2500\n", "- &a id: s2500\n").replace("- id: s2600\n", "- id: s2600\n  x: *a\n"),
    text.replace("depends_on: [s2499]", "depends_on: [nope]"),
    text.replace("max_parallel: 3", "max_parallel: 3\nsteps: []"),
  ];
  for (const [i, variant] of broken.entries()) {
    assert.equal(loadFlowInParts(variant, "big.yaml"), null, `variant ${i} is read in parts`);
    const whole = outcome(() => loadWholeFlow(variant, "big.yaml"));
    assert.ok("error" in whole, `variant ${i} is valid`);
    assert.deepEqual(outcome(() => loadFlow(variant, "big.yaml")), whole);
  }
});

Deno.test("2,000 mutations of generated layouts read the same in parts as whole", () => {
  let inParts = 0;
  for (let i = 0; i < 2000; i++) {
    const next = random(i + 7);
    const layout = LAYOUTS[i % LAYOUTS.length];
    let text = generated(6, layout);
    const rounds = 1 + Math.floor(next() * 2);
    for (let r = 0; r < rounds; r++) text = mutate(text, next);
    if (compare(text, layout.json ? "m.json" : "m.yaml", `mutation ${i}`)) inParts++;
  }
  // Many mutants stay valid and in the layout, so the comparison is made on them.
  assert.ok(inParts > 400, `only ${inParts} mutants were read in parts`);
});

/** Inputs where the parts reader once differed from the whole reader, each checked by {@link compare}. */
const FOUND: [string, string, string][] = [
  // A %TAG directive in the head renames a handle for the whole document, not for a step parsed alone.
  [
    "%TAG !! renames the secondary handle",
    "found.yaml",
    "%TAG !! tag:example.com,2000:\n---\nflow_id: x\nsteps:\n- id: a\n  command: !!str echo\n",
  ],
  // A lone CR is white space to JSON, not to YAML; between the steps it was cut out with them.
  ["lone CR before ]", "found.json", '{"flow_id":"f","steps":[{"id":"a","command":"x"}\r]}'],
  ["lone CR after [", "found.json", '{"flow_id":"f","steps":[\r{"id":"a","command":"x"}]}'],
  ["lone CR before ,", "found.json", '{"flow_id":"f","steps":[{"id":"a","command":"x"}\r,{"id":"b","command":"x"}]}'],
  ["lone CR after ,", "found.json", '{"flow_id":"f","steps":[{"id":"a","command":"x"},\r{"id":"b","command":"x"}]}'],
];

Deno.test("inputs where reading in parts once differed read the same as whole", () => {
  for (const [label, name, text] of FOUND) {
    compare(text, name, label);
    const big = name.endsWith(".json")
      ? text.replace("{", `{${" ".repeat(64 * 1024)}`)
      : text + "#".repeat(64 * 1024) + "\n";
    compare(big, name, `${label} (large)`);
  }
});
