/**
 * The text of `JSON.stringify(value, null, 2)`, in pieces: a long array (a run's 10k steps, `list`'s
 * runs) is written one element at a time, and an object holding one is written one field at a time,
 * so that no string of the whole text (megabytes, and as many again while it is built and encoded)
 * is ever made. A foreground `start` of a 10k-step flow peaked ~20 MiB higher for its last output.
 * Pure.
 */

/** Arrays of at least this many elements are written an element at a time. */
const LONG_ARRAY = 64;

export function* jsonPieces(value: unknown, indent = ""): Generator<string> {
  if (!holdsLongArray(value, NESTING)) yield indented(JSON.stringify(value, null, 2), indent);
  else if (Array.isArray(value)) yield* arrayPieces(value, indent);
  else yield* objectPieces(value as Record<string, unknown>, indent);
}

/**
 * How deep below a value a long array makes it written in pieces: two levels, so that `list --steps`
 * (a short array of runs, each an object holding its steps) is too. Looking one level only, its whole
 * text was made as one string (a 10k-step run: 13 MB), and the command peaked ~25 MiB higher than
 * `status` of the same run.
 */
const NESTING = 2;

/** `value` is a long array, or an array or plain object with one within `depth` levels below it. */
function holdsLongArray(value: unknown, depth: number): boolean {
  if (Array.isArray(value)) {
    return value.length >= LONG_ARRAY || (depth > 0 && value.some((item) => holdsLongArray(item, depth - 1)));
  }
  return depth > 0 && isPlainObject(value) && Object.values(value).some((field) => holdsLongArray(field, depth - 1));
}

function* arrayPieces(items: readonly unknown[], indent: string): Generator<string> {
  const inner = `${indent}  `;
  yield "[\n";
  for (let i = 0; i < items.length; i++) {
    yield inner;
    // As JSON.stringify writes them in an array: nothing JSON can hold becomes null.
    yield* jsonPieces(isSkipped(items[i]) ? null : items[i], inner);
    yield i < items.length - 1 ? ",\n" : "\n";
  }
  yield `${indent}]`;
}

function* objectPieces(object: Record<string, unknown>, indent: string): Generator<string> {
  // As JSON.stringify writes them in an object: fields JSON cannot hold are left out.
  const fields = Object.entries(object).filter(([, field]) => !isSkipped(field));
  const inner = `${indent}  `;
  yield "{\n";
  for (let i = 0; i < fields.length; i++) {
    yield `${inner}${JSON.stringify(fields[i][0])}: `;
    yield* jsonPieces(fields[i][1], inner);
    yield i < fields.length - 1 ? ",\n" : "\n";
  }
  yield `${indent}}`;
}

/** A value's own text nested at `indent` (JSON text holds no raw line feed but between its tokens). */
function indented(text: string, indent: string): string {
  return indent === "" ? text : text.replaceAll("\n", `\n${indent}`);
}

function isSkipped(value: unknown): boolean {
  return value === undefined || typeof value === "function" || typeof value === "symbol";
}

/** An object that JSON.stringify writes field by field (no `toJSON` of its own, as a Date has). */
function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value) &&
    typeof (value as { toJSON?: unknown }).toJSON !== "function";
}
