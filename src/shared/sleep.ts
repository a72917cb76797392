/** Waiting, in seconds. Long waits are cut into slices so a stop condition is noticed promptly. */

export function sleep(seconds: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, timerDelay(seconds)));
}

/** The longest delay a timer takes: longer ones fire after 1 ms (and print a warning). */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** `seconds` as a timer's delay in milliseconds, within what timers accept (about 24.8 days). */
export function timerDelay(seconds: number): number {
  return Math.min(MAX_TIMER_MS, Math.max(0, seconds * 1000));
}

/**
 * What `promise` comes to, or `late` if `seconds` pass first; the timer is cleared either way. A
 * failure before the deadline is thrown; one after it is nobody's to handle, and is dropped.
 */
export async function within<T, L>(promise: Promise<T>, seconds: number, late: L): Promise<T | L> {
  promise.catch(() => {});
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<L>((resolve) => timer = setTimeout(() => resolve(late), timerDelay(seconds)));
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** Sleeps `seconds`, returning early once `stop()` holds (checked every `slice` seconds). */
export async function sleepUnless(seconds: number, stop: () => boolean, slice = 0.25): Promise<void> {
  const until = performance.now() + seconds * 1000;
  while (performance.now() < until && !stop()) {
    await sleep(Math.min(slice, (until - performance.now()) / 1000));
  }
}
