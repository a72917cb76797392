/** Generated input: random token strings either parse or fail with WhenSyntaxError, never anything else. */
import assert from "node:assert/strict";
import { evaluateWhen, formatWhen, parseWhen, WhenSyntaxError } from "../../src/flow/when.ts";
import { seededRandom as random } from "../helpers.ts";

const PIECES = ["A", "B", "c_1", "d.e", "f-g", "!", "&&", "||", "(", ")", "&", "|", " ", "", "$", "9", "-x", "\t", "é"];

Deno.test("10,000 random token strings parse or fail cleanly", () => {
  const next = random(20261122);
  let parsed = 0;
  let rejected = 0;
  for (let i = 0; i < 10_000; i++) {
    const length = Math.floor(next() * 24);
    let text = "";
    for (let j = 0; j < length; j++) text += PIECES[Math.floor(next() * PIECES.length)];
    try {
      const expr = parseWhen(text);
      // Whatever parses must round-trip through its canonical form and evaluate to a boolean.
      assert.deepEqual(parseWhen(formatWhen(expr)), expr, text);
      assert(typeof evaluateWhen(expr, new Set(["A"])) === "boolean");
      parsed++;
    } catch (error) {
      if (!(error instanceof WhenSyntaxError)) throw new Error(`input ${JSON.stringify(text)} threw ${error}`);
      assert(error.column >= 1 && error.column <= text.length + 1, `column out of range for ${JSON.stringify(text)}`);
      rejected++;
    }
  }
  // Both outcomes must occur, or the generator is not exercising the parser.
  assert(parsed > 200, `only ${parsed} parsed`);
  assert(rejected > 500, `only ${rejected} rejected`);
});

/** A random well-formed expression over ids A, B, C with random spacing and redundant parentheses. */
function generate(next: () => number, depth: number): string {
  const space = () => (next() < 0.3 ? " " : "");
  const roll = next();
  if (depth > 4 || roll < 0.3) return ["A", "B", "C"][Math.floor(next() * 3)];
  if (roll < 0.45) return `!${space()}${generate(next, depth + 1)}`;
  if (roll < 0.6) return `(${space()}${generate(next, depth + 1)}${space()})`;
  const op = roll < 0.8 ? "&&" : "||";
  return `${generate(next, depth + 1)}${space()}${op}${space()}${generate(next, depth + 1)}`;
}

Deno.test("10,000 generated well-formed expressions evaluate as JavaScript's !, && and || do", () => {
  // JavaScript gives ! > && > || the same precedence the when language has, so it is an oracle.
  const next = random(7);
  for (let i = 0; i < 10_000; i++) {
    const text = generate(next, 0);
    const expr = parseWhen(text);
    for (let mask = 0; mask < 8; mask++) {
      const succeeded = new Set(["A", "B", "C"].filter((_, bit) => mask & (1 << bit)));
      const js = text.replace(/[ABC]/g, (id) => String(succeeded.has(id)));
      const expected = new Function(`return (${js});`)() as boolean;
      assert.equal(evaluateWhen(expr, succeeded), expected, `${text} with ${[...succeeded]}`);
    }
  }
});
