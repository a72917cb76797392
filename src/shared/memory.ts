/**
 * A bound on a long-lived process's heap. V8 lets the old generation grow to several times its live
 * size before it collects (tuned for throughput on large machines): a driver whose live data is ~10
 * MiB reached ~60 MiB of heap over a 10k-step run, most of it garbage. With `--expose-gc` among the
 * process's V8 flags (src/cli/self.ts), {@link collectGarbageIfGrown} runs a full collection once the
 * heap has grown by a fixed amount since the last one; without the flag it does nothing.
 */
const collect = (globalThis as { gc?: (options?: GcOptions) => void }).gc;

/** Options of V8's `gc()` (its GC extension); "last-resort" collects until nothing more is freed, then gives pages back. */
interface GcOptions {
  type: "major";
  execution: "sync";
  flavor: "regular" | "last-resort";
}

/**
 * Growth of the used heap, past the size after the last collection, that triggers one. 4 MiB, not 8:
 * a 10k-step stub driver peaked ~3 MiB lower, for about the same time (a collection of its ~14 MiB live
 * heap takes ~11 ms).
 */
const GROWTH_BYTES = 4 * 1024 * 1024;
/**
 * The first call only takes the measure (a collection then, ~15 ms, would delay the first step),
 * unless the heap is already this large: reading a large flow file, or creating or loading a large
 * run, left garbage. That first collection gives the freed pages back to the system at once: after a
 * regular one V8 kept them, and a foreground `start` of a 10k-step YAML file held 160 MiB for its
 * first ~11 s, then 90 MiB; it now holds ~75-88 MiB from its first round on.
 */
const FIRST_COLLECTION_BYTES = 8 * 1024 * 1024;
/** Null until the first call. */
let threshold: number | null = null;

export function collectGarbageIfGrown(): void {
  if (!collect) return;
  const used = Deno.memoryUsage().heapUsed;
  const first = threshold === null;
  if (first && used < FIRST_COLLECTION_BYTES) {
    threshold = used + GROWTH_BYTES;
    return;
  }
  if (!first && used < threshold!) return;
  collect({ type: "major", execution: "sync", flavor: first ? "last-resort" : "regular" });
  threshold = Deno.memoryUsage().heapUsed + GROWTH_BYTES;
}

/**
 * A memory-reducing collection now, if the heap is over 8 MiB: for a process between two large pieces
 * of work (a large flow file read and hashed, before its run is created), so that the second does not
 * pile on the first's garbage. Leaves {@link collectGarbageIfGrown}'s measure as it is.
 */
export function releaseGarbage(): void {
  if (collect && Deno.memoryUsage().heapUsed >= FIRST_COLLECTION_BYTES) {
    collect({ type: "major", execution: "sync", flavor: "last-resort" });
  }
}

/** Calls per {@link collectGarbageIfGrown} from {@link collectGarbageIfGrownEvery}. */
const CHECK_EVERY = 64;
let calls = 0;

/**
 * {@link collectGarbageIfGrown} once per 64 calls: for loops over many steps within one round. A round
 * of a wide fan-out starts, or observes, thousands of steps, and checking only between rounds let its
 * heap grow by all of that round's garbage.
 */
export function collectGarbageIfGrownEvery(): void {
  if (++calls % CHECK_EVERY === 0) collectGarbageIfGrown();
}

/** The used heap that makes {@link collectLoadingGarbageEvery} collect; null until its first check. */
let loadingThreshold: number | null = null;
let loadingCalls = 0;

/**
 * For a process that makes garbage before it drives (a large flow file read one step at a time): a
 * regular collection once the heap has grown by 4 MiB, checked every 64 calls. It keeps its own
 * measure, so a driver's first {@link collectGarbageIfGrown} still gives back what loading left.
 */
export function collectLoadingGarbageEvery(): void {
  if (!collect || ++loadingCalls % CHECK_EVERY !== 0) return;
  const used = Deno.memoryUsage().heapUsed;
  if (loadingThreshold !== null && used >= loadingThreshold) {
    collect({ type: "major", execution: "sync", flavor: "regular" });
  }
  if (loadingThreshold === null || used >= loadingThreshold) {
    loadingThreshold = Deno.memoryUsage().heapUsed + GROWTH_BYTES;
  }
}
