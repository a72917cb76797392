/** How long a failed attempt waits before its retry. Pure: the random draw is an argument. */
import type { RetryBackoff } from "../domain/mod.ts";

export interface BackoffPolicy {
  backoff: RetryBackoff;
  /** The first delay (every delay, for `fixed`). */
  delaySec: number;
  /** Ceiling of a delay; null for none. */
  maxDelaySec: number | null;
  /** 0..1: up to this fraction of the delay is drawn off at random. */
  jitter: number;
}

/** Doublings beyond this change nothing but could overflow to Infinity. */
const MAX_DOUBLINGS = 1000;

/**
 * The delay (seconds, millisecond precision) before the retry that follows failed attempt
 * `attemptNo` (1-based): `delay` for fixed, `delay·2^(n-1)` for exponential, capped at the ceiling,
 * then reduced by `jitter·random` of itself, so it lies in [d·(1−jitter), d] and never exceeds the
 * ceiling. `random` is in [0, 1).
 */
export function retryDelay(policy: BackoffPolicy, attemptNo: number, random: number): number {
  const doublings = policy.backoff === "exponential" ? Math.min(Math.max(attemptNo - 1, 0), MAX_DOUBLINGS) : 0;
  const base = policy.delaySec * 2 ** doublings;
  const capped = policy.maxDelaySec === null ? base : Math.min(base, policy.maxDelaySec);
  return Math.round(capped * (1 - policy.jitter * random) * 1000) / 1000;
}
