/**
 * The generated JSON Schema, checked with a real validator (ajv, draft 2020-12): it accepts every
 * example, it is what `examples/flow.schema.json` holds, and it agrees with the loader field by field.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { parse } from "yaml";
import { Ajv2020 } from "ajv/dist/2020.js";
import { loadFlow } from "../../src/flow/load.ts";
import { type FieldSpec, FLOW_FIELD_TABLE, STEP_FIELD_TABLE } from "../../src/flow/fields.ts";
import { flowSchema } from "../../src/flow/schema.ts";
import { quoteBangWhenValues } from "../../src/flow/yaml_bang.ts";
import { LIMITS } from "../../src/flow/limits.ts";
import { REPO } from "../helpers.ts";
import { loadYamlLibrary } from "../../src/flow/mod.ts";

await loadYamlLibrary();

// strictTuples is ajv's style advice (a one-item prefixItems), not a rule of draft 2020-12.
const validate = new Ajv2020({ allErrors: true, strict: true, strictTuples: false }).compile(flowSchema());

function schemaAccepts(data: unknown): boolean {
  return validate(data) as boolean;
}

function loaderAccepts(data: unknown): boolean {
  try {
    loadFlow(JSON.stringify(data), "flow.json");
    return true;
  } catch {
    return false;
  }
}

Deno.test("every example flow is valid against the schema", () => {
  const examples = [...Deno.readDirSync(join(REPO, "examples"))].filter((e) => e.name.endsWith(".yaml"));
  assert.ok(examples.length >= 6, "the examples were found");
  for (const example of examples) {
    const text = Deno.readTextFileSync(join(REPO, "examples", example.name));
    // The file as the loader reads it (unquoted `when: !A` is the expression, not a YAML tag).
    const data = parse(quoteBangWhenValues(text));
    assert.ok(schemaAccepts(data), `${example.name}: ${JSON.stringify(validate.errors)}`);
    assert.ok(loaderAccepts(data), example.name);
  }
});

Deno.test("the fan-out example's opening comment counts the uploads it defines", () => {
  const text = Deno.readTextFileSync(join(REPO, "examples", "fan-out-limited-flow.yaml"));
  const words = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"];
  const said = /^# .*?\b(\w+) uploads\b/m.exec(text)?.[1];
  const uploads = loadFlow(text, "fan-out-limited-flow.yaml").steps.filter((s) => s.id.startsWith("upload_"));
  assert.equal(said, words[uploads.length], `the comment says "${said} uploads"; the file has ${uploads.length}`);
});

Deno.test("examples/flow.schema.json is the output of `schema`", () => {
  const committed = JSON.parse(Deno.readTextFileSync(join(REPO, "examples", "flow.schema.json")));
  assert.deepEqual(committed, flowSchema());
});

/**
 * Values each field must accept and refuse, derived from its entry in the table. Null is absent (the
 * default) for an optional field, and refused for a required one.
 */
function samples(spec: FieldSpec): { good: unknown[]; bad: unknown[] } {
  const { good, bad } = kindSamples(spec);
  return spec.required ? { good, bad: [...bad, null] } : { good: [...good, null], bad };
}

function kindSamples(spec: FieldSpec): { good: unknown[]; bad: unknown[] } {
  const { kind } = spec;
  switch (kind.type) {
    case "string":
      return {
        good: ["x", "/a b", " x ", "x".repeat(LIMITS.pathBytes)],
        bad: ["", "  ", "a\u0000b", "\u0000", 3, ["x"], "x".repeat(LIMITS.pathBytes + 1)],
      };
    case "flow-id":
      return {
        // `flow_id: 2024` is the flow "2024", as written.
        good: ["x", "nightly build", "café", "x".repeat(LIMITS.flowIdChars), 3, -5, 1.5],
        // A control character (NEL), a zero-width space, a BOM, and one character too many.
        bad: ["", "  ", "a\u0000b", "a\u0085b", "a\u200bb", "\ufeffa", true, ["x"], "x".repeat(LIMITS.flowIdChars + 1)],
      };
    case "number":
    case "integer": {
      const low = kind.minimum ?? kind.exclusiveMinimum ?? 0;
      const good = [kind.exclusiveMinimum === undefined ? low : low + 1, low + 1];
      const bad: unknown[] = ["1", true];
      if (kind.minimum !== undefined) bad.push(kind.minimum - 1);
      if (kind.exclusiveMinimum !== undefined) bad.push(kind.exclusiveMinimum);
      if (kind.maximum !== undefined) bad.push(kind.maximum + 0.5);
      if (kind.type === "integer") bad.push(low + 1.5);
      else good.push(low + 0.5 <= (kind.maximum ?? Infinity) ? low + 0.5 : low);
      return { good, bad };
    }
    case "boolean":
      return { good: [true, false], bad: ["yes", 1] };
    case "enum":
      return { good: [...kind.values], bad: ["nope", 1] };
    case "integer-list":
      return { good: [[1], [0, -1, 75]], bad: [[], [1.5], ["1"], 1] };
    case "id-list":
      // `depends_on: [12, true]` names the steps "12" and "true".
      return { good: [[], ["other"], [12, true]], bad: ["other", [""], [" other"], ["é"], [-1]] };
    case "string-map":
      return {
        good: [{}, { A: "x", _b2: "" }],
        bad: [{ A: 1 }, { "1A": "x" }, { "A-B": "x" }, { A: "a\u0000" }, ["A"], "A=x"],
      };
    case "params":
      return { good: [{}, { A: "x", B: null }], bad: [{ A: 1 }, { "1A": "x" }, { A: "\u0000" }, ["A"]] };
    case "command":
      return {
        good: ["echo hi", ["echo", "hi"], ["echo", ""]],
        // A program of blanks, and NUL anywhere: the loader refuses both, in a string or a list.
        bad: ["", " ", [], [""], [" "], ["\t"], ["echo", 1], 3, "echo \u0000", ["\u0000"], ["echo", "a\u0000"]],
      };
    case "when":
      // `when: 12` and `when: true` name the steps "12" and "true", as written (README "when").
      return {
        good: ["other", "!other", "(other || 12) && !true", 12, true],
        bad: ["", -1, "other\u00a0", "\u200bother", "é", "other\u0000", "x".repeat(LIMITS.whenChars + 1)],
      };
    case "step-id":
      // `id: 12` is the id "12" (README "Reading YAML strictly").
      return { good: ["a", "A_1.b-c", 7, 1.5], bad: ["", "-a", "a:b", "x".repeat(129), -1, true] };
    case "steps":
      return { good: [], bad: [[], "x"] };
  }
}

Deno.test("the schema and the loader accept and refuse the same values, field by field", () => {
  const base = () => ({
    flow_id: "f",
    steps: [
      { id: "other", command: ["true"] },
      { id: "s", command: ["true"] },
      { id: "12", command: ["true"] },
      { id: "true", command: ["true"] },
    ] as Record<string, unknown>[],
  });
  let checked = 0;
  for (const [table, level] of [[FLOW_FIELD_TABLE, "flow"], [STEP_FIELD_TABLE, "step"]] as const) {
    for (const spec of table) {
      const { good, bad } = samples(spec);
      for (const [value, expected] of [...good.map((v) => [v, true]), ...bad.map((v) => [v, false])] as const) {
        const data = base() as Record<string, unknown>;
        if (level === "flow") data[spec.name] = value;
        else (data.steps as Record<string, unknown>[])[1][spec.name] = value;
        const what = `${level} ${spec.name} = ${JSON.stringify(value)}`;
        assert.equal(schemaAccepts(data), expected, `schema: ${what} ${JSON.stringify(validate.errors)}`);
        assert.equal(loaderAccepts(data), expected, `loader: ${what}`);
        checked++;
      }
    }
  }
  assert.ok(checked > 80, `${checked} cases`);
  // Unknown fields and missing required ones, at both levels.
  for (const data of [{ ...base(), extra: 1 }, { flow_id: "f" }, { steps: base().steps }]) {
    assert.equal(schemaAccepts(data), false);
    assert.equal(loaderAccepts(data), false);
  }
  const missingCommand = base();
  missingCommand.steps[1] = { id: "s" };
  assert.equal(schemaAccepts(missingCommand), false);
  assert.equal(loaderAccepts(missingCommand), false);
});
