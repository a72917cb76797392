/** A definition's text cut into parts for its rows: every part valid UTF-16, and the parts join back whole. */
import assert from "node:assert/strict";
import { DEFINITION_PART_CHARS, definitionParts } from "../../src/store/definition_text.ts";

Deno.test("definitionParts cuts at the part size and joins back to the text", () => {
  assert.deepEqual(definitionParts(""), [""]);
  assert.deepEqual(definitionParts("abc", 4), ["abc"]);
  assert.deepEqual(definitionParts("abcd", 4), ["abcd"]);
  assert.deepEqual(definitionParts("abcdefghi", 4), ["abcd", "efgh", "i"]);
  const long = "x".repeat(DEFINITION_PART_CHARS * 2 + 5);
  assert.deepEqual(definitionParts(long).map((part) => part.length), [DEFINITION_PART_CHARS, DEFINITION_PART_CHARS, 5]);
});

Deno.test("definitionParts never cuts a surrogate pair in two", () => {
  const lone = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
  for (const prefix of ["", "a", "ab"]) {
    const text = prefix + "😀".repeat(7);
    const parts = definitionParts(text, 4);
    assert.equal(parts.join(""), text);
    for (const part of parts) assert.ok(!lone.test(part), `lone surrogate in ${JSON.stringify(part)} (${prefix})`);
    // A cut that would fall inside a pair moves one character back.
    if (prefix === "a") assert.deepEqual(parts.map((part) => part.length), [3, 4, 4, 4]);
  }
  assert.throws(() => definitionParts("😀", 1), RangeError);
});
