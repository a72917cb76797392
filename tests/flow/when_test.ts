import assert from "node:assert/strict";
import { thrown } from "../helpers.ts";
import { evaluateWhen, formatWhen, parseWhen, referencedIds, WhenSyntaxError } from "../../src/flow/when.ts";

const eq: (actual: unknown, expected: unknown, message?: string) => void = assert.deepEqual;
const ok = (text: string, succeeded: string[]) => evaluateWhen(parseWhen(text), new Set(succeeded));

Deno.test("a single id is true only when that step succeeded", () => {
  eq(ok("A", ["A"]), true);
  eq(ok("A", []), false);
});

Deno.test("! is true when the step is terminal and did not succeed", () => {
  eq(ok("!A", []), true);
  eq(ok("!A", ["A"]), false);
  eq(ok("!!A", ["A"]), true);
});

Deno.test("every form from the reference README parses and evaluates", () => {
  const cases: [string, string[], boolean][] = [
    ["A || B", ["B"], true],
    ["A || B", [], false],
    ["A && B", ["A"], false],
    ["A && B", ["A", "B"], true],
    ["(A && B) || C", ["C"], true],
    ["(A && B) || !C", [], true],
    ["(A && B) || !C", ["C"], false],
    ["(B && F) || !C", ["B", "F", "C"], true],
    ["!download || !validate || !import", ["download", "validate", "import"], false],
    ["!download || !validate || !import", ["download", "import"], true],
  ];
  for (const [text, succeeded, expected] of cases) eq(ok(text, succeeded), expected, `${text} with ${succeeded}`);
});

Deno.test("precedence: ! binds tighter than &&, && tighter than ||", () => {
  // A && B || C  ==  (A && B) || C, which differs from A && (B || C) when only C succeeded.
  eq(ok("A && B || C", ["C"]), true);
  eq(ok("A && (B || C)", ["C"]), false);
  eq(parseWhen("A && B || C"), parseWhen("(A && B) || C"));
  eq(parseWhen("A || B && C"), parseWhen("A || (B && C)"));
  eq(parseWhen("!A && B"), parseWhen("(!A) && B"));
  eq(ok("!A && B", ["B"]), true);
  eq(ok("!(A && B)", ["A"]), true);
});

Deno.test("formatting keeps meaning and drops redundant parentheses", () => {
  eq(formatWhen(parseWhen("(A && B) || !C")), "A && B || !C");
  eq(formatWhen(parseWhen("A && (B || C)")), "A && (B || C)");
  eq(formatWhen(parseWhen("!(A || B)")), "!(A || B)");
  eq(formatWhen(parseWhen("A || (B || C)")), "A || (B || C)");
  for (const text of ["A && (B || C)", "!(A || B) && C", "((A))", "A || B && !C", "a.b-c_1 && x"]) {
    eq(parseWhen(formatWhen(parseWhen(text))), parseWhen(text), text);
  }
});

Deno.test("referenced ids are listed once, in order of first mention", () => {
  eq(referencedIds(parseWhen("(B && F) || !C || B")), ["B", "F", "C"]);
});

Deno.test("syntax errors give the column", () => {
  const cases: [string, string][] = [
    ["A &&", "unexpected end of expression at column 5"],
    ["", "unexpected end of expression at column 1"],
    ["A B", "unexpected 'B' at column 3"],
    ["(A", "unclosed '(' at column 1"],
    ["A)", "unexpected ')' at column 2"],
    ["A & B", "'&' must be doubled ('&&') at column 3"],
    ["A | B", "'|' must be doubled ('||') at column 3"],
    ["A && $B", 'unexpected character "$" at column 6'],
    // Invisible or look-alike characters pasted from a web page are named by their code point.
    ["A\u00a0&& B", "unexpected character U+00A0 at column 2"],
    ["A \u200b|| B", "unexpected character U+200B at column 3"],
    ["A \u2227 B", 'unexpected character "\u2227" (U+2227) at column 3'],
    ["&& A", "unexpected '&&' at column 1"],
    ["-A", "invalid step id '-A' at column 1"],
  ];
  for (const [text, message] of cases) {
    const error = thrown(() => parseWhen(text), WhenSyntaxError);
    eq(error.message, message, text);
  }
});

Deno.test("nesting is bounded instead of overflowing the stack", () => {
  const deep = "(".repeat(1000) + "A" + ")".repeat(1000);
  assert.throws(() => parseWhen(deep), WhenSyntaxError);
  assert.throws(() => parseWhen("!".repeat(100_000) + "A"), WhenSyntaxError);
  eq(ok("((((A))))", ["A"]), true);
});
