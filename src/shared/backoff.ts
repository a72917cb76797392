/** A growing pause between polls: `first`, multiplied by `factor` each time, never above `ceiling`. Seconds. */
export interface Backoff {
  readonly first: number;
  readonly factor: number;
  readonly ceiling: number;
}

/** The pause after `pause` (the first one when `pause` is undefined). */
export function nextPause(backoff: Backoff, pause?: number): number {
  if (pause === undefined) return Math.min(backoff.first, backoff.ceiling);
  return Math.min(pause * backoff.factor, backoff.ceiling);
}
