/**
 * Seeded random edits of flow text that YAML treats specially (characters and fragments inserted,
 * lines dropped, duplicated, re-indented or truncated, values swapped for tags, anchors and aliases),
 * for the loader's generated tests.
 */
export { seededRandom as random } from "../helpers.ts";
const SPECIAL = [..."!&*|>:-[]{},#'\"%@`?~\t\n\r\\ \0", "\u0085", "\u202e", "\ufeff", "---\n", "...", "!!", "<<: "];
const FRAGMENTS = [
  "!shell ",
  "!!python/object ",
  "&a ",
  "*a",
  "0x1F",
  "007",
  ".nan",
  "-.inf",
  "1e400",
  "when: !",
  "? when\n: !",
  "when: &w !",
  "when: ! ",
  "when: !!str ",
  "&& ",
  "|| ",
  '"wh\\x65n": ',
  "12",
  "true",
  "{",
  "[",
  "'",
  '"',
  "\n  - ",
  "\n    ",
];

export function mutate(text: string, next: () => number): string {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)];
  const at = Math.floor(next() * (text.length + 1));
  const lines = text.split("\n");
  const line = Math.floor(next() * lines.length);
  switch (Math.floor(next() * 8)) {
    case 0:
      return text.slice(0, at) + pick(SPECIAL) + text.slice(at);
    case 1:
      return text.slice(0, at) + pick(FRAGMENTS) + text.slice(at);
    case 2:
      return text.slice(0, at) + text.slice(at + 1 + Math.floor(next() * 8));
    case 3:
      return lines.filter((_, i) => i !== line).join("\n");
    case 4:
      return [...lines.slice(0, line + 1), lines[line], ...lines.slice(line + 1)].join("\n");
    case 5:
      return lines.map((l, i) => i === line ? " ".repeat(Math.floor(next() * 6)) + l.trimStart() : l).join("\n");
    case 6:
      return text.slice(0, at);
    default:
      return text.replace(/: [^\n]+/g, (match) => next() < 0.1 ? `: ${pick(FRAGMENTS)}${match.slice(2)}` : match);
  }
}
