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
