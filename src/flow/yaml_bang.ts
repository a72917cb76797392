/**
 * The YAML trap: flows written for the original tool say `when: !A` and `when: !a || !b` unquoted.
 * YAML reads `!A` as a tag, so `when: !A && B` silently becomes `B` (`&&` is then an anchor) and the
 * `||` form does not parse at all. Before parsing, every unquoted `when` value that starts with `!`
 * is rewritten into a double-quoted string holding exactly the text written, in every form YAML
 * allows: `when: !a`, the value on the next line, the explicit key `? when` / `: !a`, flow mappings,
 * after an anchor (`when: &w !a`), and plain values continued on more-indented lines. Values that
 * start with `&&` or `||` (an anchor and a block scalar header to YAML) are quoted the same way, so
 * the expression error names what was written. A tag before a quoted, block or flow value is left
 * to YAML, and the loader refuses it. One pass over the lexer's tokens, streamed, so the cost is
 * linear in the file's size. Pure: no I/O.
 */
import { newLexer } from "./yaml_library.ts";

/** Lexer markers that stand for no source text (document start, scalar start, …). */
function isMarker(token: string): boolean {
  return token.length === 1 && token.charCodeAt(0) < 0x20 && token !== "\n" && token !== "\t" && token !== "\r";
}

function isWhenKey(token: string): boolean {
  return token === "when" || token === '"when"' || token === "'when'";
}

/** Tokens that may sit between a key and its `:` or between the `:` and the value. */
function isSeparation(token: string): boolean {
  return isMarker(token) || token.startsWith("#") || /^[ \t\r\n]+$/.test(token);
}

/** An anchor (`&name`), except `&&…`, which is the operator written at the start of a value. */
function isAnchor(token: string): boolean {
  return token.startsWith("&") && !token.startsWith("&&");
}

/**
 * Tokens a `when` value may start with that YAML would read as something else: `!a` (a tag), `&&`
 * (an anchor named "&") and `||` (a block scalar header).
 */
function startsExpression(token: string): boolean {
  return token.startsWith("!") || token.startsWith("&&") || token.startsWith("||");
}

/** Whether the tag ending at `from` is followed on its line by a quoted, block or flow node. */
function taggedNodeFollows(source: string, from: number): boolean {
  let i = from;
  while (isBlank(source[i] ?? "")) i++;
  const ch = source[i];
  if (ch === '"' || ch === "'" || ch === "[" || ch === "{") return true;
  if (ch !== "|" && ch !== ">") return false;
  const rest = source.slice(i, lineEndOf(source, i));
  return /^[|>][-+1-9]*[ \t\r]*(#.*)?$/.test(rest);
}

export interface Span {
  start: number;
  end: number;
}

/** Where the unquoted `!…` values of `when` keys are in `source`, in order; the spans never overlap. */
export function findBangWhenValues(source: string): Span[] {
  const spans: Span[] = [];
  let offset = 0;
  let lineStart = 0;
  let flowDepth = 0;
  // Column of the last `?` indicator, while it is on the current line (the explicit-key form).
  let explicitKeyColumn = -1;
  // After a `when` key: its mapping's indentation, and whether its `:` was seen.
  let pending: { indent: number; colonSeen: boolean } | null = null;
  // Tokens inside a span already rewritten are skipped.
  let skipUntil = 0;
  for (const token of newLexer().lex(source)) {
    const at = offset;
    if (!isMarker(token)) offset += token.length;
    if (at < skipUntil) continue;
    if (token === "{" || token === "[") flowDepth++;
    else if (token === "}" || token === "]") flowDepth = Math.max(0, flowDepth - 1);

    if (pending) {
      if (token === ":" && !pending.colonSeen) {
        pending.colonSeen = true;
      } else if (isSeparation(token) || (pending.colonSeen && isAnchor(token))) {
        // keep looking: `when: &w !a` keeps its anchor on the quoted value
      } else if (pending.colonSeen && startsExpression(token)) {
        if (token.startsWith("!") && taggedNodeFollows(source, offset)) {
          // `!!str "…"`, `!x |`: a real tag on a node of its own; the loader refuses tags on `when`.
          pending = null;
          continue;
        }
        const end = flowDepth > 0 ? flowValueEnd(source, at) : blockValueEnd(source, at, pending.indent);
        spans.push({ start: at, end });
        skipUntil = end;
        pending = null;
        continue;
      } else {
        pending = null;
      }
    }

    if (token === "?") explicitKeyColumn = at - lineStart;
    if (isWhenKey(token)) {
      const column = at - lineStart;
      pending = { indent: explicitKeyColumn >= 0 ? explicitKeyColumn : column, colonSeen: false };
    }
    // Newlines inside scalars (quoted or block) are part of longer tokens; line starts are tracked
    // from those too, so columns stay right.
    const newline = token.lastIndexOf("\n");
    if (newline >= 0 && !isMarker(token)) {
      lineStart = at + newline + 1;
      explicitKeyColumn = -1;
    }
  }
  return spans;
}

function isBlank(ch: string): boolean {
  return ch === " " || ch === "\t";
}

/** Index of the end of `line`'s content from `from` (before a ` #` comment and trailing blanks), and whether a comment ended it. */
function contentEnd(source: string, from: number, lineEnd: number): { end: number; comment: boolean } {
  let end = from;
  let comment = false;
  while (end < lineEnd) {
    if (source[end] === "#" && (end === from || isBlank(source[end - 1]))) {
      comment = true;
      break;
    }
    end++;
  }
  while (end > from && (isBlank(source[end - 1]) || source[end - 1] === "\r")) end--;
  return { end, comment };
}

function lineEndOf(source: string, from: number): number {
  const newline = source.indexOf("\n", from);
  return newline < 0 ? source.length : newline;
}

/**
 * End of a plain value in block context: the rest of its line, then each following line indented
 * deeper than the mapping (YAML's continuation lines), up to a comment or a less-indented line.
 */
function blockValueEnd(source: string, start: number, indent: number): number {
  let lineEnd = lineEndOf(source, start);
  let { end, comment } = contentEnd(source, start, lineEnd);
  while (!comment && lineEnd < source.length) {
    const next = lineEnd + 1;
    let first = next;
    while (first < source.length && source[first] === " ") first++;
    const nextEnd = lineEndOf(source, next);
    const rest = contentEnd(source, first, nextEnd);
    if (rest.end === first && !rest.comment) { // a blank line: the value may continue after it
      lineEnd = nextEnd;
      continue;
    }
    if (first - next <= indent || rest.end === first) break; // less indented, or a comment line
    end = rest.end;
    comment = rest.comment;
    lineEnd = nextEnd;
  }
  return end;
}

/** End of a plain value in a flow collection: the next `,`, `}` or `]`, or a comment. */
function flowValueEnd(source: string, start: number): number {
  let end = start;
  let last = start;
  while (end < source.length) {
    const ch = source[end];
    if (ch === "," || ch === "}" || ch === "]") break;
    if (ch === "#" && isBlank(source[end - 1] ?? " ")) break;
    if (!isBlank(ch) && ch !== "\n" && ch !== "\r") last = end + 1;
    end++;
  }
  return last;
}

/** A YAML double-quoted scalar of `text`; its line breaks stay real ones, so line numbers do not move. */
function doubleQuoted(text: string): string {
  return `"${text.replace(/[\\"]/g, (ch) => `\\${ch}`)}"`;
}

/**
 * Returns `source` with each unquoted `when: !…` value quoted. Line numbers are unchanged; only
 * columns after a rewritten value's start on the same line move. A value spread over several lines
 * keeps its line breaks, which YAML folds into spaces.
 */
export function quoteBangWhenValues(source: string): string {
  if (!source.includes("!") && !source.includes("&&") && !source.includes("||")) return source;
  const parts: string[] = [];
  let copied = 0;
  for (const span of findBangWhenValues(source)) {
    parts.push(source.slice(copied, span.start), doubleQuoted(source.slice(span.start, span.end)));
    copied = span.end;
  }
  parts.push(source.slice(copied));
  return parts.join("");
}
