/**
 * The heap bound of long-lived processes (src/shared/memory.ts), in a child process with the program's
 * own V8 flags: garbage allocated round after round stays collected, and without `--expose-gc` the
 * bound is a no-op rather than an error.
 */
import assert from "node:assert/strict";
import { V8_FLAGS } from "../../src/cli/self.ts";
import { REPO } from "../helpers.ts";

/** Allocates `rounds` x 2 MiB of garbage, calling the bound after each; prints the largest heapUsed seen. */
const SCRIPT = `
let collections = 0;
const gc = globalThis.gc;
if (gc) globalThis.gc = () => { collections++; gc(); };
const { collectGarbageIfGrown } = await import("${REPO}/src/shared/mod.ts");
let peak = 0;
let keep = null;
for (let round = 0; round < 200; round++) {
  collectGarbageIfGrown();
  // Old-generation garbage: each round's objects outlive the next round's allocations.
  const objects = Array.from({ length: 20000 }, (_, i) => ({ i, text: "x" + i + round }));
  keep = objects;
  peak = Math.max(peak, Deno.memoryUsage().heapUsed);
}
console.log(JSON.stringify({ peak, collections, exposed: typeof gc === "function", kept: keep.length }));
`;

async function runChild(flags: string): Promise<{ peak: number; collections: number; exposed: boolean }> {
  const dir = Deno.makeTempDirSync({ prefix: "ojf-memory-" });
  try {
    const file = `${dir}/child.ts`;
    Deno.writeTextFileSync(file, SCRIPT);
    const args = ["run", "--allow-all", "--no-prompt", ...(flags ? [`--v8-flags=${flags}`] : []), file];
    const out = await new Deno.Command(Deno.execPath(), { args, stdout: "piped", stderr: "piped" }).output();
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    return JSON.parse(new TextDecoder().decode(out.stdout));
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}

Deno.test("with the program's V8 flags, a process's heap stays bounded however much garbage it makes", async () => {
  const bounded = await runChild(V8_FLAGS);
  assert.ok(bounded.exposed, "V8_FLAGS expose gc");
  const unbounded = await runChild("--max-semi-space-size=1");
  assert.ok(!unbounded.exposed);
  // ~400 MiB of garbage in all, 2 MiB of it live at a time: the bound collects every ~8 MiB of growth
  // and keeps the heap near live data + 8 MiB; V8 left alone lets it grow further.
  assert.ok(bounded.collections >= 10, `collections: ${bounded.collections}`);
  assert.ok(bounded.peak < 24 * 1024 * 1024, `bounded peak ${bounded.peak}`);
  assert.ok(unbounded.peak > bounded.peak, `unbounded ${unbounded.peak}, bounded ${bounded.peak}`);
});
