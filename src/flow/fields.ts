/**
 * The one table of flow-file fields: their names, types, limits and meaning. The loader checks values
 * against it and `schema` generates the JSON Schema from it, so the two cannot drift. Pure data and
 * pure checks. Every field is bounded (limits.ts), so no value reaches a path it was not sized for.
 */
import { LIMITS } from "./limits.ts";

/** The shell a string command is run by: `command: "…"` becomes `[STRING_COMMAND_SHELL, "-c", "…"]`. */
export const STRING_COMMAND_SHELL = "/bin/sh";

/** Names of run parameters and environment variables: what a shell accepts as a variable name. */
export const VARIABLE_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]*$/;

export type FieldKind =
  /** A scalar string; `nonBlank` refuses "" and whitespace. */
  | { type: "string"; nonBlank?: boolean; pattern?: RegExp; patternHint?: string }
  | {
    type: "number" | "integer";
    minimum?: number;
    exclusiveMinimum?: number;
    maximum?: number;
    /** A bound from limits.ts: refused with "must be at most". */
    limit?: number;
  }
  | { type: "boolean" }
  | { type: "enum"; values: readonly string[] }
  /** A list of exit codes (integers from -255 to 255). */
  | { type: "integer-list" }
  /** A list of step ids. */
  | { type: "id-list" }
  /** Variable name → string (`env`). */
  | { type: "string-map" }
  /** Parameter name → default string, or null for a required parameter (`params`). */
  | { type: "params" }
  /** argv list, or a string run by /bin/sh -c. */
  | { type: "command" }
  /** A `when` expression (checked by the `when` parser). */
  | { type: "when" }
  /** A step id (checked against the id rule). */
  | { type: "step-id" }
  /** The flow's id: visible text of a bounded length (checked by the loader's own reader). */
  | { type: "flow-id" }
  /** The list of steps. */
  | { type: "steps" };

export interface FieldSpec {
  name: string;
  kind: FieldKind;
  required?: boolean;
  /** The default as the README states it (documentation and the schema's `default`). */
  default?: unknown;
  description: string;
}

export const FLOW_FIELD_TABLE: readonly FieldSpec[] = [
  { name: "flow_id", kind: { type: "flow-id" }, required: true, description: "Name of the flow." },
  { name: "steps", kind: { type: "steps" }, required: true, description: "Non-empty list of steps." },
  {
    name: "executor_unavailable_sec",
    kind: { type: "number", exclusiveMinimum: 0, limit: LIMITS.seconds },
    default: 600,
    description: "How long orchesjob may stay unusable for a running step before its attempt fails.",
  },
  {
    name: "params",
    kind: { type: "params" },
    description: "Run parameters: name → default, or null when `start --param NAME=VALUE` must give it.",
  },
  {
    name: "env",
    kind: { type: "string-map" },
    description: "Environment variables for every step (a step's own env wins).",
  },
  {
    name: "cwd",
    kind: { type: "string", nonBlank: true },
    description: "Working directory of every step: absolute, or relative to the flow file's directory.",
  },
  {
    name: "max_parallel",
    kind: { type: "integer", minimum: 1, limit: LIMITS.steps },
    description: "At most this many steps RUNNING at once; ready steps start in file order.",
  },
];

export const STEP_FIELD_TABLE: readonly FieldSpec[] = [
  { name: "id", kind: { type: "step-id" }, required: true, description: "Unique step id." },
  { name: "command", kind: { type: "command" }, required: true, description: "argv list, or a /bin/sh -c string." },
  { name: "when", kind: { type: "when" }, description: "Condition over step ids with !, &&, || and parentheses." },
  { name: "depends_on", kind: { type: "id-list" }, description: "Step ids to wait for." },
  { name: "env", kind: { type: "string-map" }, description: "Environment variables of this step." },
  {
    name: "cwd",
    kind: { type: "string", nonBlank: true },
    description: "Working directory: absolute, or relative to the flow file's directory.",
  },
  {
    name: "retries",
    kind: { type: "integer", minimum: 0, limit: LIMITS.retries },
    default: 0,
    description: "Retries after a failed attempt.",
  },
  {
    name: "retry_delay_sec",
    kind: { type: "number", minimum: 0, limit: LIMITS.seconds },
    default: 0,
    description: "Seconds before the first retry.",
  },
  {
    name: "retry_backoff",
    kind: { type: "enum", values: ["fixed", "exponential"] },
    default: "fixed",
    description: "fixed: every retry waits retry_delay_sec; exponential: the delay doubles per retry.",
  },
  {
    name: "retry_max_delay_sec",
    kind: { type: "number", minimum: 0, limit: LIMITS.seconds },
    description: "Ceiling of a retry delay.",
  },
  {
    name: "retry_jitter",
    kind: { type: "number", minimum: 0, maximum: 1 },
    default: 0,
    description: "Fraction of the delay drawn off at random per retry (0..1).",
  },
  {
    name: "retry_on_exit_codes",
    kind: { type: "integer-list" },
    description: "Retry only attempts that exited with one of these codes.",
  },
  {
    name: "timeout_sec",
    kind: { type: "number", exclusiveMinimum: 0, limit: LIMITS.seconds },
    description: "Runtime limit of an attempt.",
  },
  {
    name: "strict",
    kind: { type: "boolean" },
    default: true,
    description:
      "A run key orchesjob has from an earlier run (used again after clean): true fails the attempt, false unlocks it and runs the step. Every start is orchesjob's --strict.",
  },
  {
    name: "start_timeout_sec",
    // As `job start --start-timeout` takes it: a wait shorter than 10 ms is no wait, and the value
    // goes to orchesjob as written by JavaScript, which writes 1e-7 for smaller ones.
    kind: { type: "number", minimum: 0.01, limit: LIMITS.seconds },
    description: "Passed to orchesjob as --start-timeout.",
  },
];

/** Names of the fields a flow file may contain, as written in the file. */
export const FLOW_FIELDS: readonly string[] = FLOW_FIELD_TABLE.map((field) => field.name);
export const STEP_FIELDS: readonly string[] = STEP_FIELD_TABLE.map((field) => field.name);

export function fieldSpec(table: readonly FieldSpec[], name: string): FieldSpec {
  const spec = table.find((field) => field.name === name);
  if (!spec) throw new Error(`no field ${name}`);
  return spec;
}

/** The rule a numeric field states in its error message, e.g. "an integer >= 0". */
export function numberRule(kind: Extract<FieldKind, { type: "number" | "integer" }>): string {
  // A limit is stated only on its own ("must be at most"), as main's loader always did.
  const parts: string[] = [];
  if (kind.minimum !== undefined) parts.push(`>= ${kind.minimum}`);
  if (kind.exclusiveMinimum !== undefined) parts.push(`> ${kind.exclusiveMinimum}`);
  if (kind.maximum !== undefined) parts.push(`<= ${kind.maximum}`);
  return `${kind.type === "integer" ? "an integer" : "a number"}${parts.length ? " " + parts.join(" and ") : ""}`;
}

/**
 * Checks a plain value (already read from YAML or JSON) against a field of the simple kinds. Returns
 * the reason it is wrong, or null. Kinds with their own readers (command, when, id, steps) return null.
 */
export function checkFieldValue(spec: FieldSpec, value: unknown): string | null {
  const { kind, name } = spec;
  const got = `got ${shown(value)}`;
  switch (kind.type) {
    case "string": {
      if (typeof value !== "string" || (kind.nonBlank && value.trim() === "")) {
        return `${name} must be a non-empty string, ${got}`;
      }
      if (kind.pattern && !kind.pattern.test(value)) return `${name} must be ${kind.patternHint}, ${got}`;
      if (value.includes("\0")) return `${name} must not contain NUL characters`;
      return byteLength(value) > LIMITS.pathBytes
        ? `${name} of ${byteLength(value)} bytes, over the limit of ${LIMITS.pathBytes}`
        : null;
    }
    case "number":
    case "integer": {
      const ok = typeof value === "number" && Number.isFinite(value) &&
        (kind.type === "number" || Number.isInteger(value)) &&
        (kind.minimum === undefined || value >= kind.minimum) &&
        (kind.exclusiveMinimum === undefined || value > kind.exclusiveMinimum) &&
        (kind.maximum === undefined || value <= kind.maximum);
      if (!ok) return `${name} must be ${numberRule(kind)}, ${got}`;
      return kind.limit !== undefined && (value as number) > kind.limit
        ? `${name} must be at most ${kind.limit}, ${got}`
        : null;
    }
    case "boolean":
      return typeof value === "boolean" ? null : `${name} must be true or false, ${got}`;
    case "enum":
      return typeof value === "string" && kind.values.includes(value)
        ? null
        : `${name} must be one of ${kind.values.join(", ")}, ${got}`;
    case "integer-list":
      if (!Array.isArray(value) || value.length === 0 || !value.every((v) => Number.isInteger(v))) {
        return `${name} must be a non-empty list of integers, ${got}`;
      }
      return value.length <= LIMITS.exitCodes && value.every((v) => Math.abs(v) <= 255)
        ? null
        : `${name} must list at most ${LIMITS.exitCodes} exit codes from -255 to 255`;
    case "id-list":
      return Array.isArray(value) && value.every((v) => typeof v === "string" && v !== "")
        ? null
        : `${name} must be a list of step ids`;
    case "string-map":
    case "params":
      return checkMap(spec, value);
    default:
      return null;
  }
}

/**
 * A value in an error message: a string quoted, numbers as JavaScript prints them (NaN, Infinity), the
 * rest as JSON; a long one cut (see {@link clipped}).
 */
export function shown(value: unknown): string {
  if (typeof value === "string") {
    return value.length <= SHOWN_CHARS
      ? JSON.stringify(value)
      : `${JSON.stringify(head(value))}… (${value.length} characters)`;
  }
  return clipped(typeof value === "number" ? String(value) : JSON.stringify(value) ?? String(value));
}

/** The most characters of one value an error message shows. */
export const SHOWN_CHARS = 120;

/**
 * `text` whole, or its first {@link SHOWN_CHARS} characters and its length: a value of megabytes still
 * gives an error line one can read.
 */
export function clipped(text: string): string {
  return text.length <= SHOWN_CHARS ? text : `${head(text)}… (${text.length} characters)`;
}

/** The first {@link SHOWN_CHARS} characters of `text`, never half of a surrogate pair. */
function head(text: string): string {
  return text.slice(0, /[\uD800-\uDBFF]/.test(text[SHOWN_CHARS - 1]) ? SHOWN_CHARS - 1 : SHOWN_CHARS);
}

/** UTF-8 bytes of `text`. */
export function byteLength(text: string): number {
  return new TextEncoder().encode(text).length;
}

function checkMap(spec: FieldSpec, value: unknown): string | null {
  const what = spec.kind.type === "params" ? "parameter" : "variable";
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    return `${spec.name} must be a mapping of ${what} names to ${
      spec.kind.type === "params" ? "default strings (or null)" : "strings"
    }`;
  }
  const entries = Object.entries(value);
  if (entries.length > LIMITS.mapEntries) {
    return `${spec.name} has ${entries.length} entries, over the limit of ${LIMITS.mapEntries}`;
  }
  for (const [key, item] of entries) {
    if (typeof item === "string" && byteLength(key) + 1 + byteLength(item) > LIMITS.argumentBytes) {
      return `${spec.name}.${key} is over the limit of ${LIMITS.argumentBytes} bytes`;
    }
    if (!VARIABLE_NAME_PATTERN.test(key) || key.length > LIMITS.variableNameChars) {
      return `${spec.name}: invalid ${what} name ${
        shown(key)
      } (1-${LIMITS.variableNameChars} ASCII letters, digits and _, not starting with a digit)`;
    }
    // NUL cannot be passed in an environment variable or a path.
    if (typeof item === "string" && item.includes("\0")) return `${spec.name}.${key} must not contain NUL characters`;
    const ok = typeof item === "string" || (spec.kind.type === "params" && item === null);
    // Never a hint to write the text "null": a variable's value is a string, and null is none.
    if (!ok && item === null) {
      return `${spec.name}.${key} must be a string, got null (write "" for an empty value, or leave ${key} out)`;
    }
    if (!ok) {
      // Quoting helps a number or a boolean only: a quoted list or mapping is its YAML text, not its items.
      const hint = typeof item === "object" ? "" : `; quote it ("${clipped(String(item))}")`;
      return `${spec.name}.${key} must be a string${spec.kind.type === "params" ? " or null" : ""}, got ${
        shown(item)
      }${hint}`;
    }
  }
  return null;
}
