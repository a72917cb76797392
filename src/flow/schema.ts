/**
 * The JSON Schema (draft 2020-12) of flow files, generated from the field table the loader checks
 * values with (fields.ts), so the two cannot drift. Pure.
 */
import { type FieldSpec, FLOW_FIELD_TABLE, STEP_FIELD_TABLE, VARIABLE_NAME_PATTERN } from "./fields.ts";
import { STEP_ID_PATTERN } from "./when.ts";
import { INVISIBLE_OR_CONTROL_CLASS, LIMITS } from "./limits.ts";

type Schema = Record<string, unknown>;

/** Not blank, and no NUL (which no path, argument or environment variable can hold). */
const NON_BLANK_NO_NUL = "^[^\\u0000]*[^\\s\\u0000][^\\u0000]*$";
const NO_NUL = "^[^\\u0000]*$";
/** Not blank, and no control or invisible character (the loader's rule for `flow_id`). */
const VISIBLE_NON_BLANK =
  `^[^${INVISIBLE_OR_CONTROL_CLASS}]*[^\\s${INVISIBLE_OR_CONTROL_CLASS}][^${INVISIBLE_OR_CONTROL_CLASS}]*$`;
/**
 * The characters of the `when` language (when.ts's tokenizer), at least one of them not blank. The
 * grammar itself (parentheses that match, an operand after each operator) is beyond a pattern.
 */
const WHEN_CHARACTERS = "^[ \\t\\n\\r]*[A-Za-z0-9_.!&|()-][A-Za-z0-9_.!&|() \\t\\n\\r-]*$";
/**
 * A step named by a plain number: `id: 12`, `when: 12` and `depends_on: [12]` name the step "12" as
 * written, though YAML (and JSON) read a number. A negative one, or one JavaScript writes with an
 * exponent (1e21 and up), is never an id.
 */
const NUMBER_ID: Schema = { type: "number", minimum: 0, exclusiveMaximum: 1e21 };
const STEP_ID: Schema = { type: "string", pattern: STEP_ID_PATTERN.source, maxLength: LIMITS.stepIdChars };

/** A /bin/sh -c string, or an argv list whose program is not blank; no NUL anywhere (exec(2) cannot pass one). */
const COMMAND: Schema = {
  oneOf: [
    { type: "string", pattern: NON_BLANK_NO_NUL },
    {
      type: "array",
      minItems: 1,
      prefixItems: [{ type: "string", pattern: NON_BLANK_NO_NUL }],
      items: { type: "string", pattern: NO_NUL },
    },
  ],
};

/** A `when`: text in the language's characters, or a plain number or boolean naming one step ("12", "true"). */
const WHEN: Schema = {
  anyOf: [{ type: "string", pattern: WHEN_CHARACTERS, maxLength: LIMITS.whenChars }, NUMBER_ID, { type: "boolean" }],
};

function kindSchema(spec: FieldSpec): Schema {
  const { kind } = spec;
  switch (kind.type) {
    case "string":
      // A character is at least one byte: the loader's limit in bytes bounds the characters too.
      return { type: "string", pattern: kind.nonBlank ? NON_BLANK_NO_NUL : NO_NUL, maxLength: LIMITS.pathBytes };
    case "flow-id":
      // A number too (`flow_id: 2024`), taken as written, as a step's id is.
      return {
        anyOf: [
          { type: "string", pattern: VISIBLE_NON_BLANK, maxLength: LIMITS.flowIdChars },
          { type: "number", exclusiveMinimum: -1e21, exclusiveMaximum: 1e21 },
        ],
      };
    case "number":
    case "integer": {
      const { type, limit, ...bounds } = kind;
      return { type, ...bounds, ...(limit === undefined ? {} : { maximum: limit }) };
    }
    case "boolean":
      return { type: "boolean" };
    case "enum":
      return { type: "string", enum: [...kind.values] };
    case "integer-list":
      return {
        type: "array",
        items: { type: "integer", minimum: -255, maximum: 255 },
        minItems: 1,
        maxItems: LIMITS.exitCodes,
      };
    case "id-list":
      return { type: "array", items: { anyOf: [STEP_ID, NUMBER_ID, { type: "boolean" }] } };
    case "string-map":
      return {
        type: "object",
        propertyNames: { pattern: VARIABLE_NAME_PATTERN.source, maxLength: LIMITS.variableNameChars },
        maxProperties: LIMITS.mapEntries,
        additionalProperties: { type: "string", pattern: NO_NUL },
      };
    case "params":
      return {
        type: "object",
        propertyNames: { pattern: VARIABLE_NAME_PATTERN.source, maxLength: LIMITS.variableNameChars },
        maxProperties: LIMITS.mapEntries,
        additionalProperties: { type: ["string", "null"], pattern: NO_NUL },
      };
    case "command":
      return COMMAND;
    case "when":
      return WHEN;
    case "step-id":
      return { anyOf: [STEP_ID, NUMBER_ID] };
    case "steps":
      return { type: "array", minItems: 1, items: { $ref: "#/$defs/step" } };
  }
}

/** `schema` that also accepts null: an optional field set to null is absent to the loader (its default). */
function nullable(schema: Schema): Schema {
  if (Array.isArray(schema.anyOf)) return { anyOf: [...schema.anyOf, { type: "null" }] };
  if (typeof schema.type !== "string") throw new Error(`no nullable form of ${JSON.stringify(schema)}`);
  return {
    ...schema,
    type: [schema.type, "null"],
    ...(Array.isArray(schema.enum) ? { enum: [...schema.enum, null] } : {}),
  };
}

function objectSchema(table: readonly FieldSpec[]): Schema {
  return {
    type: "object",
    required: table.filter((field) => field.required).map((field) => field.name),
    additionalProperties: false,
    properties: Object.fromEntries(table.map((field) => [field.name, {
      description: field.description,
      ...(field.required ? kindSchema(field) : nullable(kindSchema(field))),
      ...(field.default === undefined ? {} : { default: field.default }),
    }])),
  };
}

export function flowSchema(): Schema {
  return {
    $schema: "https://json-schema.org/draft/2020-12/schema",
    title: "orchesjob-flow flow file",
    description: "Generated by `orchesjob-flow schema` from the field table its loader validates with.",
    ...objectSchema(FLOW_FIELD_TABLE),
    $defs: { step: objectSchema(STEP_FIELD_TABLE) },
  };
}
