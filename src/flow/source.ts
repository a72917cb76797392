/**
 * The bytes and text of a flow file before YAML sees them: the size limit, UTF-8 and NUL checks,
 * each error with its position. Pure.
 */
import { FlowError } from "./errors.ts";
import { LIMITS } from "./limits.ts";
import { newLexer } from "./yaml_library.ts";

export function checkFileSize(bytes: number, fileName: string): void {
  if (bytes > LIMITS.fileBytes) {
    throw new FlowError({ file: fileName }, `flow file is ${bytes} bytes, over the limit of ${LIMITS.fileBytes}`);
  }
}

/** The file's text: refuses files over the size limit and invalid UTF-8 (with its position). */
export function decodeFlowBytes(bytes: Uint8Array, fileName: string): string {
  checkFileSize(bytes.length, fileName);
  if ((bytes[0] === 0xff && bytes[1] === 0xfe) || (bytes[0] === 0xfe && bytes[1] === 0xff)) {
    // What some Windows editors save by default: say so, rather than blame its first byte.
    throw new FlowError({ file: fileName, line: 1, column: 1 }, "the file is UTF-16 text; save it as UTF-8");
  }
  const bad = firstInvalidUtf8(bytes);
  if (bad >= 0) {
    const before = new TextDecoder().decode(bytes.subarray(0, bad));
    const line = before.split("\n").length;
    const column = before.length - before.lastIndexOf("\n");
    throw new FlowError({ file: fileName, line, column }, `invalid UTF-8 (byte 0x${bytes[bad].toString(16)})`);
  }
  return new TextDecoder().decode(bytes);
}

/** `text` without a leading BOM, after refusing an oversized text and NUL characters. */
export function checkFlowText(text: string, fileName: string): string {
  if (text.length > LIMITS.fileBytes) checkFileSize(new TextEncoder().encode(text).length, fileName);
  const nul = text.indexOf("\0");
  if (nul >= 0) {
    const line = text.slice(0, nul).split("\n").length;
    throw new FlowError({ file: fileName, line, column: nul - text.lastIndexOf("\n", nul) }, "NUL byte in the file");
  }
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}

/** Lead bytes of multi-byte UTF-8 sequences: [length, lowest and highest allowed second byte]. */
function sequenceOf(lead: number): [number, number, number] {
  if (lead >= 0xc2 && lead <= 0xdf) return [2, 0x80, 0xbf];
  if (lead === 0xe0) return [3, 0xa0, 0xbf]; // no overlong forms
  if (lead === 0xed) return [3, 0x80, 0x9f]; // no surrogates
  if (lead >= 0xe1 && lead <= 0xef) return [3, 0x80, 0xbf];
  if (lead === 0xf0) return [4, 0x90, 0xbf];
  if (lead >= 0xf1 && lead <= 0xf3) return [4, 0x80, 0xbf];
  if (lead === 0xf4) return [4, 0x80, 0x8f]; // nothing above U+10FFFF
  return [0, 0, 0];
}

/** Offset of the first byte that does not belong to a well-formed UTF-8 sequence, or -1. */
function firstInvalidUtf8(bytes: Uint8Array): number {
  let i = 0;
  while (i < bytes.length) {
    if (bytes[i] < 0x80) {
      i++;
      continue;
    }
    const [length, low, high] = sequenceOf(bytes[i]);
    if (length === 0 || i + length > bytes.length) return i;
    if (bytes[i + 1] < low || bytes[i + 1] > high) return i;
    for (let k = 2; k < length; k++) if ((bytes[i + k] & 0xc0) !== 0x80) return i;
    i += length;
  }
  return -1;
}

/**
 * Refuses a file with more values (scalars and aliases) than {@link LIMITS.values}, counted by the
 * YAML lexer, which keeps nothing, before the library builds the document. A value takes at least two
 * characters (`x,`), so a smaller file needs no count.
 */
export function checkValueCount(source: string, fileName: string): void {
  if (source.length <= 2 * LIMITS.values) return;
  let values = 0;
  for (const token of newLexer().lex(source)) {
    // The lexer marks each plain and block scalar with \x1f; quoted scalars and aliases are one token.
    const first = token[0];
    if (first === "\x1f" || first === "'" || first === '"' || first === "*") values++;
    if (values > LIMITS.values) {
      throw new FlowError({ file: fileName }, `flow file holds over ${LIMITS.values} values, the limit`);
    }
  }
}
