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
/**
 * One process's bound on its heap: a full collection whenever the used heap has grown by
 * {@link GROWTH_BYTES} since the last. Its first check only takes the measure, unless `releaseFirst`
 * and the heap is already over {@link FIRST_COLLECTION_BYTES}: then it collects at once, giving the
 * pages back.
 */
class HeapBound {
  /** Null until the first check. */
  private threshold: number | null = null;
  private calls = 0;

  constructor(private readonly releaseFirst: boolean) {}

  check(): void {
    if (!collect) return;
    const used = Deno.memoryUsage().heapUsed;
    const first = this.threshold === null;
    if (first && !(this.releaseFirst && used >= FIRST_COLLECTION_BYTES)) {
      this.threshold = used + GROWTH_BYTES;
      return;
    }
    if (!first && used < this.threshold!) return;
    collect({ type: "major", execution: "sync", flavor: first ? "last-resort" : "regular" });
    this.threshold = Deno.memoryUsage().heapUsed + GROWTH_BYTES;
  }

  /** {@link check} once per {@link CHECK_EVERY} calls: for loops over many steps. */
  checkEvery(): void {
    if (++this.calls % CHECK_EVERY === 0) this.check();
  }
}

/** Calls per check from the loops that check every so many steps. */
const CHECK_EVERY = 64;

/** A driver's bound; its first check gives back what reading a large file or run left. */
const driving = new HeapBound(true);
/**
 * The bound while a large flow file is read a step at a time: a measure of its own, so that the
 * driver's first check still gives back what loading left.
 */
const loading = new HeapBound(false);

export function collectGarbageIfGrown(): void {
  driving.check();
}

/**
 * {@link collectGarbageIfGrown} once per 64 calls: for loops over many steps within one round. A round
 * of a wide fan-out starts, or observes, thousands of steps, and checking only between rounds let its
 * heap grow by all of that round's garbage.
 */
export function collectGarbageIfGrownEvery(): void {
  driving.checkEvery();
}

/**
 * For a process that makes garbage before it drives (a large flow file read one step at a time): a
 * regular collection once the heap has grown by 4 MiB, checked every 64 calls.
 */
export function collectLoadingGarbageEvery(): void {
  loading.checkEvery();
}

/**
 * A memory-reducing collection now, if the heap is over 8 MiB: for a process between two large pieces
 * of work (a large flow file read and hashed, before its run is created), so that the second does not
 * pile on the first's garbage. Leaves the bounds' measures as they are.
 */
export function releaseGarbage(): void {
  if (collect && Deno.memoryUsage().heapUsed >= FIRST_COLLECTION_BYTES) {
    collect({ type: "major", execution: "sync", flavor: "last-resort" });
  }
}
