/**
 * Text from the state or from a job (a step's error and stderr tail, ids, run keys, users, paths) made
 * safe for a terminal: every C0 and C1 control character and DEL, and the line and paragraph
 * separators and bidirectional controls, become a visible escape (`\t`, `\n`, `\r`, else `\x1b` or
 * `\u202e`). So no cell of a table can move the cursor, clear the screen, retitle the window, break
 * its row or reorder the text after it. Backslashes are left alone: the JSON output has the exact text.
 * Pure.
 */

/** What is shown escaped: C0, DEL, C1 (`Cc`); U+2028/2029; the bidi marks, embeddings, overrides and isolates. */
const UNSAFE = /[\p{Cc}\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/gu;

const SHORT: Record<string, string> = { "\t": "\\t", "\n": "\\n", "\r": "\\r" };

function escape(char: string): string {
  const code = char.charCodeAt(0);
  return SHORT[char] ??
    (code <= 0xff ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u${code.toString(16).padStart(4, "0")}`);
}

/** `text` with its control characters shown as escapes (see the module comment). */
export function visible(text: string): string {
  return text.replace(UNSAFE, escape);
}
