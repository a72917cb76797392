/** Running async work on many items with a bound on how many are in flight at once. */

/** Calls `fn` on every item, at most `limit` at a time; resolves when all are done (rejects on the first error). */
export async function forEachBounded<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(Math.max(1, limit), items.length) }, worker));
}
