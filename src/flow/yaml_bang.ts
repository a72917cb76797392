/**
 * The YAML trap: flows written for the original tool say `when: !A` and `when: !a || !b` unquoted.
 * YAML reads `!A` as a tag, so `when: !A && B` silently becomes `B` (`&&` is then an anchor) and the
 * `||` form does not parse at all. Before parsing, every unquoted `when` value that starts with `!`
 * is rewritten into a double-quoted string holding exactly the text written. Pure: no I/O.
 */
import { yamlLibrary } from "./yaml_library.ts";

/** Lexer markers that stand for no source text (document start, scalar start, …). */
function isMarker(token: string): boolean {
  return token.length === 1 && token.charCodeAt(0) < 0x20 && token !== "\n" && token !== "\t" && token !== "\r";
}

function isWhenKey(token: string): boolean {
  return token === "when" || token === '"when"' || token === "'when'";
}

interface Span {
  start: number;
  end: number;
}

/** Where the unquoted `!…` values of `when` keys are in `source`. */
export function findBangWhenValues(source: string): Span[] {
  const spans: Span[] = [];
  const tokens = Array.from(new (yamlLibrary().Lexer)().lex(source));
  const offsets: number[] = [];
  let offset = 0;
  for (const token of tokens) {
    offsets.push(offset);
    if (!isMarker(token)) offset += token.length;
  }
  let flowDepth = 0;
  const next = (from: number): number => {
    let i = from;
    while (i < tokens.length && (isMarker(tokens[i]) || /^[ \t]+$/.test(tokens[i]))) i++;
    return i;
  };
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i];
    if (token === "{" || token === "[") flowDepth++;
    else if (token === "}" || token === "]") flowDepth = Math.max(0, flowDepth - 1);
    if (!isWhenKey(token)) continue;
    const colon = next(i + 1);
    if (tokens[colon] !== ":") continue;
    const value = next(colon + 1);
    if (value >= tokens.length || !tokens[value].startsWith("!")) continue;
    const start = offsets[value];
    spans.push({ start, end: valueEnd(source, start, flowDepth > 0) });
  }
  return spans;
}

/** End of a plain value: the line's end less any comment, or in a flow collection the next `,`/`}`/`]`. */
function valueEnd(source: string, start: number, inFlow: boolean): number {
  let end = start;
  while (end < source.length && source[end] !== "\n" && source[end] !== "\r") {
    if (inFlow && ",}]".includes(source[end])) break;
    if (source[end] === "#" && /[ \t]/.test(source[end - 1])) break;
    end++;
  }
  while (end > start && /[ \t]/.test(source[end - 1])) end--;
  return end;
}

/**
 * Returns `source` with each unquoted `when: !…` value quoted. Line numbers are unchanged; only
 * columns after a rewritten value on the same line move.
 */
export function quoteBangWhenValues(source: string): string {
  let result = source;
  for (const span of findBangWhenValues(source).reverse()) {
    const text = source.slice(span.start, span.end);
    result = result.slice(0, span.start) + JSON.stringify(text) + result.slice(span.end);
  }
  return result;
}
