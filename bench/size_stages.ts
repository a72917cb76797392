// deno-lint-ignore-file no-console -- a benchmark report is printed output
/**
 * Child process of bench/size.ts: `size_stages.ts FLOW_FILE DB RUN_KEY` times each stage of a flow's
 * way through the program in a fresh process (so one size's heap does not slow the next), the best
 * of three runs each, and prints the milliseconds as JSON. It creates RUN_KEY in DB for the CLI
 * figures that follow.
 */
import { createRun, decide } from "../src/engine/mod.ts";
import { definitionHash, denormalizeFlow, loadFlow, loadYamlLibrary, normalizeFlow } from "../src/flow/mod.ts";
import { quoteBangWhenValues } from "../src/flow/yaml_bang.ts";
import { openDatabase, RunStore } from "../src/store/mod.ts";
import type { RunState } from "../src/domain/mod.ts";

await loadYamlLibrary();

const REPEATS = 3;

/** V8's collector, exposed by `--v8-flags=--expose-gc` (bench/size.ts passes it). */
const collectGarbage = (globalThis as { gc?: () => void }).gc ?? (() => {});

/**
 * The result of the last of `REPEATS` runs of `work`, and the fewest milliseconds one took. Each
 * starts after a full collection, so no stage pays for the garbage an earlier one left.
 */
function best<T>(work: (repeat: number) => T): [T, number] {
  let result: T | undefined;
  let fastest = Infinity;
  for (let repeat = 0; repeat < REPEATS; repeat++) {
    collectGarbage();
    const started = performance.now();
    result = work(repeat);
    fastest = Math.min(fastest, performance.now() - started);
  }
  return [result!, fastest];
}

const [file, dbPath, runKey] = Deno.args;
const text = Deno.readTextFileSync(file);
const db = openDatabase(dbPath);
try {
  const runs = new RunStore(db);
  const [, rewrite] = best(() => quoteBangWhenValues(text));
  const [flow, load] = best(() => loadFlow(text, file));
  const [record, store] = best((repeat) =>
    createRun(runs, {
      runKey: repeat === REPEATS - 1 ? runKey : `${runKey}-${repeat}`,
      flow,
      definitionHash: definitionHash(flow),
      flowFile: file,
      executor: { kind: "builtin" },
    }, Date.now() / 1000)
  );
  const [, readBack] = best(() => denormalizeFlow(normalizeFlow(flow)));
  const [, decideFirst] = best(() => decide(record.state, new Map(), Date.now() / 1000));
  // Every step ended but the last, which waits for all of them: its condition is evaluated.
  const ended: RunState = {
    ...record.state,
    status: "RUNNING",
    steps: record.state.steps.map((step, i, all) => i < all.length - 1 ? { ...step, status: "SUCCEEDED" } : step),
  };
  const [actions, decideLast] = best(() => decide(ended, new Map(), Date.now() / 1000));
  if (actions.length !== 1 || actions[0].kind !== "start") throw new Error("the last step should start");
  console.log(
    JSON.stringify({
      rewrite,
      load,
      store,
      "read back": readBack,
      "decide first": decideFirst,
      "decide last": decideLast,
    }),
  );
} finally {
  db.close();
}
