// deno-lint-ignore-file no-console -- prints its measurement as one JSON line
/**
 * One flow-file read for bench/run.ts: `deno run -A bench/load_peak.ts FILE parts|whole` reads FILE as
 * the CLI does (`parts`: loadFlow, which reads a large file a step at a time, with the CLI's heap
 * bound) or with its whole document parsed at once (`whole`), and prints {ms, steps, peak_rss_kib}.
 */
import { loadYamlLibrary } from "../src/flow/mod.ts";
import { loadFlow, loadWholeFlow } from "../src/flow/load.ts";
import { collectLoadingGarbageEvery } from "../src/shared/mod.ts";

const [file, how] = Deno.args;
await loadYamlLibrary();
const text = Deno.readTextFileSync(file);
const started = performance.now();
const flow = how === "whole"
  ? loadWholeFlow(text, file)
  : loadFlow(text, file, { afterStep: collectLoadingGarbageEvery });
const ms = performance.now() - started;
const peak = Number(/VmHWM:\s+(\d+)/.exec(Deno.readTextFileSync("/proc/self/status"))?.[1] ?? NaN);
console.log(JSON.stringify({ ms, steps: flow.steps.length, peak_rss_kib: Deno.build.os === "linux" ? peak : null }));
