/**
 * How a run's definition text is laid out in rows: the first part in `flow_runs.definition`, the rest
 * in `flow_definition_parts`, each at most {@link DEFINITION_PART_CHARS} characters. Pure.
 *
 * Why parts: a value of a megabyte (a 10k-step definition) passed to SQLite is copied through buffers
 * of its size, which `malloc` takes from `mmap` and gives back; glibc then raises its `mmap` threshold
 * to that size, so later buffers up to a megabyte come from the program's heap, where their holes stay
 * resident. A foreground `start` of a 10k-step fan-out ended with ~10 MiB of heap instead of ~5.
 * Parts of 16k characters (at most 48 KiB as UTF-8) stay below glibc's default threshold (128 KiB).
 */
export const DEFINITION_PART_CHARS = 16_384;

/**
 * `text` cut into parts of at most `size` characters (one part for an empty text), never between the
 * two halves of a surrogate pair: each part must be valid UTF-16 on its own, or SQLite would store a
 * replacement character for each half.
 */
export function definitionParts(text: string, size = DEFINITION_PART_CHARS): string[] {
  if (size < 2) throw new RangeError("a part must hold a surrogate pair");
  const parts: string[] = [];
  let start = 0;
  do {
    let end = Math.min(start + size, text.length);
    if (end < text.length && isHighSurrogate(text.charCodeAt(end - 1))) end--;
    parts.push(text.slice(start, end));
    start = end;
  } while (start < text.length);
  return parts;
}

function isHighSurrogate(code: number): boolean {
  return code >= 0xd800 && code <= 0xdbff;
}
