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
if (gc) globalThis.gc = (...options) => { collections++; gc(...options); };
const { collectGarbageIfGrown, collectGarbageIfGrownEvery } = await import("${REPO}/src/shared/mod.ts");
// "every": the round's bound is checked the way a round over many steps does, once per 64 calls.
const check = Deno.args[0] === "every"
  ? () => { for (let i = 0; i < 64; i++) collectGarbageIfGrownEvery(); }
  : collectGarbageIfGrown;
let peak = 0;
let keep = null;
for (let round = 0; round < 200; round++) {
  check();
  // Old-generation garbage: each round's objects outlive the next round's allocations.
  const objects = Array.from({ length: 20000 }, (_, i) => ({ i, text: "x" + i + round }));
  keep = objects;
  peak = Math.max(peak, Deno.memoryUsage().heapUsed);
}
console.log(JSON.stringify({ peak, collections, exposed: typeof gc === "function", kept: keep.length }));
`;

/**
 * Makes `MIB` MiB of garbage (none if 0), then calls the bound once, as a driver's first round does
 * after creating or loading its run; prints how many collections that call ran.
 */
const FIRST_CALL_SCRIPT = `
let collections = 0;
const gc = globalThis.gc;
globalThis.gc = (...options) => { collections++; gc(...options); };
const { collectGarbageIfGrown } = await import("${REPO}/src/shared/mod.ts");
// Live while it is built (so it reaches the old generation, which scavenges leave alone), then dropped.
let objects = [];
for (let i = 0; i < Number(Deno.args[0]) * 32768; i++) objects.push({ i });
const made = objects.length;
objects = null;
const before = Deno.memoryUsage();
collectGarbageIfGrown();
const after = Deno.memoryUsage();
console.log(JSON.stringify({ collections, before: before.heapUsed, after: after.heapUsed, made,
  freed: before.heapTotal - after.heapTotal, rssFreed: before.rss - after.rss }));
`;

async function runChild(
  flags: string,
  script = SCRIPT,
  args: string[] = [],
  // deno-lint-ignore no-explicit-any
): Promise<any> {
  const dir = Deno.makeTempDirSync({ prefix: "ojf-memory-" });
  try {
    const file = `${dir}/child.ts`;
    Deno.writeTextFileSync(file, script);
    const argv = ["run", "--allow-all", "--no-prompt", ...(flags ? [`--v8-flags=${flags}`] : []), file, ...args];
    const out = await new Deno.Command(Deno.execPath(), { args: argv, stdout: "piped", stderr: "piped" }).output();
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    return JSON.parse(new TextDecoder().decode(out.stdout));
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}

for (const how of ["round", "every"]) {
  Deno.test(`with the program's V8 flags, a process's heap stays bounded however much garbage it makes (${how})`, async () => {
    const bounded = await runChild(V8_FLAGS, SCRIPT, [how]);
    assert.ok(bounded.exposed, "V8_FLAGS expose gc");
    const unbounded = await runChild("--max-semi-space-size=1");
    assert.ok(!unbounded.exposed);
    // ~400 MiB of garbage in all, 2 MiB of it live at a time: the bound collects every ~8 MiB of growth
    // and keeps the heap near live data + 8 MiB; V8 left alone lets it grow further.
    assert.ok(bounded.collections >= 10, `collections: ${bounded.collections}`);
    assert.ok(bounded.peak < 24 * 1024 * 1024, `bounded peak ${bounded.peak}`);
    assert.ok(unbounded.peak > bounded.peak, `unbounded ${unbounded.peak}, bounded ${bounded.peak}`);
  });
}

Deno.test("the bound's first call collects only when the heap is already large (a big run created or loaded)", async () => {
  const small = await runChild(V8_FLAGS, FIRST_CALL_SCRIPT, ["0"]);
  assert.equal(small.collections, 0, `heap ${small.before}: the first call only takes the measure`);
  const large = await runChild(V8_FLAGS, FIRST_CALL_SCRIPT, ["40"]);
  assert.ok(large.before > 8 * 1024 * 1024, `the garbage made the heap large: ${large.before}`);
  assert.equal(large.collections, 1);
  assert.ok(large.after < large.before / 2, `collected: ${large.before} -> ${large.after}`);
  // And the pages it freed went back to the system: after a regular collection V8 kept most of them
  // (RSS 116 -> 95 MiB for ~75 MiB of heap freed; this one: 116 -> 37 MiB).
  assert.ok(large.freed > 32 * 1024 * 1024, `heap freed: ${large.freed}`);
  assert.ok(large.rssFreed > large.freed / 2, `RSS fell by ${large.rssFreed} for ${large.freed} of heap freed`);
});
