/**
 * A bound on a long-lived process's heap. V8 lets the old generation grow to several times its live
 * size before it collects (tuned for throughput on large machines): a driver whose live data is ~10
 * MiB reached ~60 MiB of heap over a 10k-step run, most of it garbage. With `--expose-gc` among the
 * process's V8 flags (src/cli/self.ts), {@link collectGarbageIfGrown} runs a full collection once the
 * heap has grown by a fixed amount since the last one; without the flag it does nothing.
 */
const collect = (globalThis as { gc?: () => void }).gc;

/**
 * Growth of the used heap, past the size after the last collection, that triggers one. 4 MiB, not 8:
 * a 10k-step stub driver peaked ~3 MiB lower, for about the same time (a collection of its ~14 MiB live
 * heap takes ~11 ms).
 */
const GROWTH_BYTES = 4 * 1024 * 1024;
/**
 * Null until the first call, which only takes the measure: a collection then (~15 ms) would delay the
 * first step. Unless the heap is already this large: creating or loading a large run left garbage.
 */
const FIRST_COLLECTION_BYTES = 8 * 1024 * 1024;
/** Null until the first call. */
let threshold: number | null = null;

export function collectGarbageIfGrown(): void {
  if (!collect) return;
  const used = Deno.memoryUsage().heapUsed;
  if (threshold === null && used < FIRST_COLLECTION_BYTES) {
    threshold = used + GROWTH_BYTES;
    return;
  }
  if (threshold !== null && used < threshold) return;
  collect();
  threshold = Deno.memoryUsage().heapUsed + GROWTH_BYTES;
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
