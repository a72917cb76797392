/**
 * How many terminal columns text takes, for lining up table columns: a run key or step id in Japanese
 * or with an emoji takes two columns a character, a combining accent none, so padding by `.length`
 * (UTF-16 units) pushed the following columns out of line. Per code point, as wcwidth does: East
 * Asian Wide and Fullwidth characters and emoji shown as emoji take 2, combining marks and other
 * zero-width characters 0, everything else 1. Colour codes (`ESC [ … m`, added after visible() has
 * escaped every ESC of the text) take none. Pure.
 */

/** Nothing but printable ASCII: its width is its length, and a table of it is padded as it always was. */
const PLAIN = /^[\x20-\x7e]*$/;

/** Combining marks (Mn, Me), format characters (Cf: zero-width joiner and space) and Hangul medial vowels and finals. */
const ZERO = /^[\p{Mn}\p{Me}\p{Cf}\u1160-\u11ff]$/u;

/** Emoji that terminals draw two columns wide by default. */
const EMOJI = /^\p{Emoji_Presentation}$/u;

/** East Asian Wide (W) and Fullwidth (F) ranges, Unicode 15, outside of emoji: [first, last] code points. */
const WIDE: readonly (readonly [number, number])[] = [
  [0x1100, 0x115f], // Hangul Jamo initials
  [0x2329, 0x232a], // angle brackets
  [0x2e80, 0x303e], // CJK radicals, Kangxi, ideographic description, CJK symbols and punctuation
  [0x3041, 0x33ff], // Hiragana, Katakana, Bopomofo, Hangul compatibility Jamo, Kanbun, CJK strokes, enclosed, compatibility
  [0x3400, 0x4dbf], // CJK extension A
  [0x4e00, 0x9fff], // CJK unified ideographs
  [0xa000, 0xa4cf], // Yi
  [0xa960, 0xa97f], // Hangul Jamo extended A
  [0xac00, 0xd7a3], // Hangul syllables
  [0xf900, 0xfaff], // CJK compatibility ideographs
  [0xfe10, 0xfe19], // vertical forms
  [0xfe30, 0xfe6f], // CJK compatibility forms, small form variants
  [0xff00, 0xff60], // fullwidth forms
  [0xffe0, 0xffe6], // fullwidth signs
  [0x16fe0, 0x16fe4], // ideographic symbols
  [0x17000, 0x18cff], // Tangut, Khitan
  [0x1aff0, 0x1b2ff], // Kana supplement and extensions, Nushu
  [0x1f200, 0x1f2ff], // enclosed ideographic supplement
  [0x20000, 0x3fffd], // CJK extensions B and later (planes 2 and 3)
];

function isWide(code: number): boolean {
  for (const [first, last] of WIDE) {
    if (code < first) return false;
    if (code <= last) return true;
  }
  return false;
}

/** The columns one code point takes. */
function charWidth(char: string): number {
  const code = char.codePointAt(0)!;
  if (code < 0x7f) return 1;
  if (ZERO.test(char)) return 0;
  return isWide(code) || EMOJI.test(char) ? 2 : 1;
}

/** A colour code at the start of `text` (only the table's own: visible() escapes the text's ESCs). */
const SGR = new RegExp(`^${"\x1b"}\\[[0-9;]*m`);

/** The columns `text` takes on a terminal. */
export function displayWidth(text: string): number {
  if (PLAIN.test(text)) return text.length;
  let width = 0;
  for (let i = 0; i < text.length;) {
    const code = SGR.exec(text.slice(i, i + 16));
    if (code) {
      i += code[0].length;
      continue;
    }
    const char = String.fromCodePoint(text.codePointAt(i)!);
    width += charWidth(char);
    i += char.length;
  }
  return width;
}

/** `text` padded with spaces to `width` columns (as String.padEnd for plain ASCII). */
export function padToWidth(text: string, width: number): string {
  return text + " ".repeat(Math.max(0, width - displayWidth(text)));
}

/**
 * `text` cut to at most `width` columns, so that a line drawn in place does not wrap; colour codes are
 * kept (a cut inside a coloured cell keeps its reset, so the colour does not run on).
 */
export function cutToWidth(text: string, width: number): string {
  if (PLAIN.test(text)) return text.length > width ? text.slice(0, width) : text;
  let out = "";
  let used = 0;
  let full = false;
  for (let i = 0; i < text.length;) {
    const code = SGR.exec(text.slice(i, i + 16));
    if (code) {
      out += code[0];
      i += code[0].length;
      continue;
    }
    const char = String.fromCodePoint(text.codePointAt(i)!);
    // Once a character does not fit, none after it is kept (a narrow one would take a wide one's place).
    full ||= used + charWidth(char) > width;
    if (!full) {
      out += char;
      used += charWidth(char);
    }
    i += char.length;
  }
  return out;
}
