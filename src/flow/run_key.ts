/**
 * The run-key rule (README "Run keys"), the one check of a key given for a new run. Keys are shown
 * in a terminal, in `ps`, in file names and in orchesjob's arguments, so a key must read as what it
 * is: no character that cannot be seen, or that looks like another (a no-break space like a space),
 * or that undoes the text around it (bidi controls). Pure.
 */
import { LIMITS } from "./limits.ts";

/**
 * Characters refused anywhere in a run key: controls (C0, DEL, C1 such as NEL), format characters
 * (bidi overrides and isolates, zero-width spaces and joiners, the BOM), line and paragraph
 * separators, lone surrogates, U+FFFD (what invalid UTF-8 in argv decodes to), the other invisible
 * (default-ignorable) characters such as variation selectors and Hangul fillers, noncharacters, and
 * every space but U+0020.
 */
const REFUSED =
  /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}\p{Default_Ignorable_Code_Point}\p{Noncharacter_Code_Point}\uFFFD]|(?! )\p{White_Space}/u;

/** `U+200B`: how an error names a character, never as itself (it may be invisible or a control). */
export function codePointLabel(character: string): string {
  return `U+${character.codePointAt(0)!.toString(16).toUpperCase().padStart(4, "0")}`;
}

/** What kind of character of {@link REFUSED} `character` is, for the error. */
function refusedKind(character: string): string {
  if (/\p{Cc}/u.test(character)) return "a control character";
  if (character === "\uFFFD") return "the replacement character, what invalid UTF-8 decodes to";
  if (/\p{Cs}/u.test(character)) return "a lone surrogate";
  if (/[\p{Zl}\p{Zp}]/u.test(character)) return "a line or paragraph separator";
  if (/\p{White_Space}/u.test(character)) return "a space other than U+0020";
  if (/\p{Noncharacter_Code_Point}/u.test(character)) return "a noncharacter";
  return /\p{Cf}/u.test(character) ? "an invisible format character" : "an invisible character";
}

/** Code points of a key an error shows (80 at most); refused characters as `<U+200B>`. */
const SHOWN_CODE_POINTS = 80;

/** `key` quoted for an error: its first code points, each refused character named by its code point. */
function shownKey(key: string): string {
  const points = [...key];
  const shown = points.slice(0, SHOWN_CODE_POINTS).map((c) => REFUSED.test(c) ? `<${codePointLabel(c)}>` : c);
  return JSON.stringify(shown.join("") + (points.length > SHOWN_CODE_POINTS ? "…" : ""));
}

/**
 * Why `key` may not name a new run, as the whole error line, or null when it may: 1 to
 * {@link LIMITS.runKeyChars} code points, not only whitespace, not starting with `-` (orchesjob would
 * read it as an option), not starting or ending with a space, and none of {@link REFUSED}. Every
 * accepted key makes a bounded file name (store/paths.ts), so it works everywhere.
 */
export function runKeyProblem(key: string): string | null {
  const length = [...key].length;
  const bad = REFUSED.exec(key)?.[0];
  const reason = key.trim() === ""
    ? "it is empty or only whitespace"
    : length > LIMITS.runKeyChars
    ? `it has ${length} characters`
    : key.startsWith("-")
    ? 'it starts with "-"'
    : bad !== undefined
    ? `it contains ${codePointLabel(bad)} (${refusedKind(bad)})`
    : key.startsWith(" ") || key.endsWith(" ")
    ? "it starts or ends with a space"
    : null;
  if (reason === null) return null;
  return `invalid run key ${shownKey(key)}: ${reason}; use 1-${LIMITS.runKeyChars} printable characters, ` +
    'not starting with "-"';
}
