/**
 * Where each step of a large flow file is written, so that the loader can parse the steps one at a
 * time (load.ts, loadFlowInParts): the YAML library holds a whole document's token tree while it
 * builds the document, ~80 bytes per character, and a 10k-step file took a process to 135-174
 * MiB. Recognizes the two layouts that machine-made and hand-written flows use, and gives up (null)
 * on anything else, in which case the whole document is parsed as before:
 *
 * - YAML: a top-level `steps:` key alone on its line, followed by a block sequence (`- ` items at one
 *   indentation, in spaces);
 * - JSON: a top-level `"steps"` key whose value is an array.
 *
 * The head is the text without the steps, an empty `[]` in their place. Pure; scans by character
 * code, so that it leaves no string per line behind.
 */
import type { Span } from "./yaml_bang.ts";

export interface StepsLayout {
  /** The text with its steps cut out and an empty `[]` at {@link placeholderAt}. */
  head: string;
  placeholderAt: number;
  /** Head offsets from here on stand `shift` characters further on in the text. */
  cutAt: number;
  shift: number;
  /** Each step's text: YAML from the start of its `- ` line, JSON its array element. */
  items: Span[];
}

export function stepsLayout(source: string, isJson: boolean): StepsLayout | null {
  return isJson ? jsonLayout(source) : yamlLayout(source);
}

const SPACE = 0x20;
const TAB = 0x09;
const LF = 0x0a;
const CR = 0x0d;
const HASH = 0x23;
const DASH = 0x2d;

const STEPS_KEY = /^steps[ \t]*:[ \t]*(?:#[^\n]*)?\r?$/gm;

/** Whether the line's content at `at` is a sequence item's `-` (followed by a blank or the line's end). */
function isItemStart(source: string, at: number): boolean {
  if (source.charCodeAt(at) !== DASH) return false;
  const next = source.charCodeAt(at + 1);
  return Number.isNaN(next) || next === SPACE || next === TAB || next === LF || next === CR;
}

/** Whether the line's content at `at` is nothing, white space or a comment. */
function isBlankOrComment(source: string, at: number): boolean {
  for (let i = at; i < source.length; i++) {
    const code = source.charCodeAt(i);
    if (code === LF || code === HASH) return true;
    if (code !== SPACE && code !== TAB && code !== CR) return false;
  }
  return true;
}

/** The starts of the `- ` lines of the block sequence that begins at `from`, and where it ends. */
function blockItems(source: string, from: number): { starts: number[]; indent: number; end: number } | null {
  const starts: number[] = [];
  let indent = -1;
  for (let pos = from; pos < source.length;) {
    const newline = source.indexOf("\n", pos);
    const next = newline < 0 ? source.length : newline + 1;
    let content = pos;
    while (source.charCodeAt(content) === SPACE) content++;
    const spaces = content - pos;
    if (isBlankOrComment(source, content)) {
      pos = next;
      continue;
    }
    // Indentation is spaces only: a tab there is left to the whole-document parse.
    if (source.charCodeAt(content) === TAB) return null;
    const item = isItemStart(source, content);
    if (indent < 0) {
      if (!item) return null;
      indent = spaces;
    }
    if (spaces === indent && item) starts.push(pos);
    else if (spaces <= indent) return { starts, indent, end: pos };
    pos = next;
  }
  return indent < 0 ? null : { starts, indent, end: source.length };
}

function yamlLayout(source: string): StepsLayout | null {
  STEPS_KEY.lastIndex = 0;
  const key = STEPS_KEY.exec(source);
  if (key === null || STEPS_KEY.exec(source) !== null) return null;
  const keyLineEnd = source.indexOf("\n", key.index);
  if (keyLineEnd < 0) return null;
  const block = blockItems(source, keyLineEnd + 1);
  if (block === null || block.starts.length === 0) return null;
  const first = block.starts[0];
  // `[]` is indented at least one column past the key, on a line of its own.
  const placeholder = `${" ".repeat(Math.max(block.indent, 1))}[]\n`;
  return {
    head: source.slice(0, first) + placeholder + source.slice(block.end),
    placeholderAt: first + placeholder.length - 3,
    cutAt: first + placeholder.length,
    shift: block.end - first - placeholder.length,
    items: block.starts.map((start, i) => ({ start, end: block.starts[i + 1] ?? block.end })),
  };
}

/** The offset just past the JSON string that starts at `at`. */
function stringEnd(source: string, at: number): number {
  let i = at + 1;
  while (i < source.length && source[i] !== '"') i += source[i] === "\\" ? 2 : 1;
  return i + 1;
}

function isJsonSpace(code: number): boolean {
  return code === SPACE || code === TAB || code === LF || code === CR;
}

function nextNonSpace(source: string, from: number): number {
  let i = from;
  while (i < source.length && isJsonSpace(source.charCodeAt(i))) i++;
  return i;
}

function trimmedEnd(source: string, end: number): number {
  let i = end;
  while (i > 0 && isJsonSpace(source.charCodeAt(i - 1))) i--;
  return i;
}

/** The `[` of the root object's `"steps"` array (one such key), or -1. `source` is valid JSON. */
function stepsArrayStart(source: string): number {
  let depth = 0;
  let found = -1;
  for (let i = 0; i < source.length; i++) {
    const ch = source[i];
    if (ch === '"') {
      const end = stringEnd(source, i);
      const colon = nextNonSpace(source, end);
      if (depth === 1 && source[colon] === ":" && end - i === 7 && source.startsWith('"steps"', i)) {
        if (found >= 0) return -1;
        const value = nextNonSpace(source, colon + 1);
        if (source[value] !== "[") return -1;
        found = value;
      }
      i = end - 1;
    } else if (ch === "{" || ch === "[") depth++;
    else if (ch === "}" || ch === "]") depth--;
  }
  return found;
}

/** A CR not followed by LF: white space to JSON, but not to YAML, which parses the file. */
const LONE_CR = /\r(?!\n)/;

function jsonLayout(source: string): StepsLayout | null {
  // The white space between the steps is cut out with them, so whatever YAML would make of a lone
  // CR there is left to the whole-document parse.
  if (LONE_CR.test(source)) return null;
  const open = stepsArrayStart(source);
  if (open < 0) return null;
  const items: Span[] = [];
  let depth = 0;
  let start = -1;
  for (let i = open + 1; i < source.length; i++) {
    const ch = source[i];
    if (depth === 0 && (ch === "," || ch === "]")) {
      if (start >= 0) items.push({ start, end: trimmedEnd(source, i) });
      start = -1;
      if (ch !== "]") continue;
      if (items.length === 0) return null;
      // The array's own brackets stay, with nothing between them.
      return {
        head: source.slice(0, open + 1) + source.slice(i),
        placeholderAt: open,
        cutAt: open + 1,
        shift: i - open - 1,
        items,
      };
    }
    if (start < 0 && !isJsonSpace(source.charCodeAt(i))) start = i;
    if (ch === '"') i = stringEnd(source, i) - 1;
    else if (ch === "{" || ch === "[") depth++;
    else if (ch === "}" || ch === "]") depth--;
  }
  return null;
}
