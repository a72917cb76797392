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
import { mutate, random } from "./mutations.ts";

// loadFlow needs the YAML library, which the CLI imports only when it reads a flow file.
await loadYamlLibrary();

const MUTATIONS = 5000;
const MAX_CPU_MILLISECONDS = 2000;
const EXAMPLES = [...Deno.readDirSync(join(REPO, "examples"))]
  .filter((entry) => entry.name.endsWith(".yaml"))
  .map((entry) => Deno.readTextFileSync(join(REPO, "examples", entry.name)));
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
