/**
 * Issue 10: generated hostile input for the loader. 5,000 seeded random mutations of the example
 * flows (characters YAML treats specially inserted, lines dropped, duplicated, re-indented or
 * truncated, values swapped for tags, anchors and aliases). Each either loads, and then survives the
 * round trip through its stored form, or throws a FlowError; nothing throws anything else, and no
 * mutation takes more CPU time than the bound (CPU time: a loaded machine, which delays this test
 * without making it do more work, does not count).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { denormalizeFlow, FlowError, loadFlow, loadYamlLibrary, normalizeFlow } from "../../src/flow/mod.ts";
import { cpuMicroseconds, REPO } from "../helpers.ts";

// loadFlow needs the YAML library, which the CLI imports only when it reads a flow file.
await loadYamlLibrary();

const MUTATIONS = 5000;
const MAX_CPU_MILLISECONDS = 2000;
const EXAMPLES = [...Deno.readDirSync(join(REPO, "examples"))]
  .filter((entry) => entry.name.endsWith(".yaml"))
  .map((entry) => Deno.readTextFileSync(join(REPO, "examples", entry.name)));
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

/** mulberry32: a small seeded generator, so a failure is reproducible from its index. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function mutate(text: string, next: () => number): string {
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

Deno.test(`${MUTATIONS} mutations of the examples load or fail with a FlowError, each within the bound`, () => {
  let loaded = 0;
  let refused = 0;
  for (let i = 0; i < MUTATIONS; i++) {
    const next = random(i + 1);
    let text = EXAMPLES[i % EXAMPLES.length];
    const rounds = 1 + Math.floor(next() * 3);
    for (let r = 0; r < rounds; r++) text = mutate(text, next);
    const started = cpuMicroseconds();
    try {
      const flow = loadFlow(text, i % 10 === 0 ? "mutant.json" : "mutant.yaml");
      const stored = normalizeFlow(flow);
      assert.deepEqual(normalizeFlow(denormalizeFlow(stored)), stored, `mutation ${i} does not round-trip`);
      loaded++;
    } catch (error) {
      if (!(error instanceof FlowError)) {
        throw new Error(`mutation ${i} threw ${error}\n--- input ---\n${text}`);
      }
      assert.ok(!error.message.includes("\n    at "), `mutation ${i}: ${error.message}`);
      refused++;
    }
    const cpu = (cpuMicroseconds() - started) / 1000;
    assert.ok(cpu < MAX_CPU_MILLISECONDS, `mutation ${i} used ${Math.round(cpu)} ms of CPU`);
  }
  // Both outcomes occurred, so the generator exercises acceptance and refusal alike.
  assert.ok(loaded > MUTATIONS / 20 && refused > MUTATIONS / 20, `loaded ${loaded}, refused ${refused}`);
});
