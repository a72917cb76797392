/** printJson writes long arrays in pieces: the pieces join into exactly what JSON.stringify(value, null, 2) gives. */
import assert from "node:assert/strict";
import { jsonPieces } from "../../src/cli/json_pieces.ts";
import { seededRandom } from "../helpers.ts";

function same(value: unknown, label: string): void {
  assert.equal([...jsonPieces(value)].join(""), JSON.stringify(value, null, 2), label);
}

Deno.test("a run with many steps is written in pieces that join into JSON.stringify's text", () => {
  const step = (i: number) => ({
    id: `s${i}`,
    status: i % 2 ? "SUCCEEDED" : "PENDING",
    command: ["echo", `line\n"${i}" é 😀 \u2028`],
    skipped: undefined,
    fn: () => i,
    at: new Date(i * 1000),
    retry_history: Array.from({ length: i % 3 === 0 ? 70 : 1 }, (_, k) => ({ attempt_no: k, error: null })),
    nothing: [],
    empty: {},
  });
  const run = { run_key: "r", steps: Array.from({ length: 130 }, (_, i) => step(i)), rounds: [], error: null };
  const pieces = [...jsonPieces(run)];
  assert.ok(pieces.length > 130, `written in ${pieces.length} pieces`);
  same(run, "run");
  same(run.steps, "a long array at the top");
  // `list --steps`: a short array of runs, each holding its long array of steps.
  const listed = [run, { ...run, run_key: "r2" }];
  const listPieces = [...jsonPieces(listed)];
  const longest = Math.max(...listPieces.map((piece) => piece.length));
  assert.ok(listPieces.length > 260, `list written in ${listPieces.length} pieces, the longest ${longest} characters`);
  same(listed, "a short array of runs with many steps");
  same({ runs: listed }, "an object holding them");
  same({ list: Array.from({ length: 64 }, (_, i) => (i % 2 ? undefined : i)), tail: [NaN, -0, Infinity] }, "holes");
  same(Array.from({ length: 64 }, () => [Symbol("x"), () => 1, undefined]), "unwritable elements");
});

Deno.test("500 random values are written as JSON.stringify writes them", () => {
  const next = seededRandom(20261203);
  const leaf = (): unknown => [null, true, 0, -1.5, "a\tb", "\u0000", undefined, new Date(0)][Math.floor(next() * 8)];
  const value = (depth: number): unknown => {
    const kind = depth > 2 ? 0 : Math.floor(next() * 3);
    if (kind === 0) return leaf();
    const length = next() < 0.3 ? 64 + Math.floor(next() * 20) : Math.floor(next() * 4);
    if (kind === 1) return Array.from({ length }, () => value(depth + 1));
    return Object.fromEntries(Array.from({ length }, (_, i) => [`k${i}"`, value(depth + 1)]));
  };
  // In an array: JSON.stringify gives no text at all for a bare undefined.
  for (let i = 0; i < 500; i++) same([value(0)], `value ${i}`);
});
