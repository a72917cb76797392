/** The start-up-friendly SHA-256 gives node:crypto's digests (stored definition hashes depend on it). */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { sha256Hex } from "../../src/domain/mod.ts";

Deno.test("sha256Hex equals node:crypto's sha256 for lengths around every padding boundary and non-ASCII text", () => {
  const inputs = ["", "abc", "ünïcødé ✓ 🚀", "x".repeat(100_000)];
  for (let n = 50; n <= 130; n++) inputs.push("a".repeat(n));
  for (const input of inputs) {
    assert.equal(sha256Hex(input), createHash("sha256").update(input).digest("hex"), `length ${input.length}`);
  }
  assert.equal(sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
});

Deno.test("sha256Hex encodes long text a chunk at a time without changing a digest: pairs, multibyte and lone halves across chunks", () => {
  // The chunk is 16,384 UTF-16 units: put a surrogate pair, a 3-byte character and lone surrogates
  // on and around its boundaries, and lengths around its multiples.
  const chunk = 16 * 1024;
  const inputs: string[] = [];
  for (const shift of [-2, -1, 0, 1]) {
    const before = "a".repeat(chunk + shift);
    inputs.push(
      before + "🚀" + "b".repeat(100),
      before + "€€€" + "c".repeat(70),
      before + "\ud800x",
      before + "\udc00",
    );
  }
  for (const n of [chunk - 1, chunk, chunk + 1, 2 * chunk, 3 * chunk + 63]) inputs.push("é".repeat(n), "z".repeat(n));
  inputs.push("🚀".repeat(3 * chunk), "ab\ud800".repeat(chunk));
  for (const input of inputs) {
    assert.equal(sha256Hex(input), createHash("sha256").update(input).digest("hex"), `length ${input.length}`);
  }
});
