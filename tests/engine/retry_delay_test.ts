import assert from "node:assert/strict";
import { type BackoffPolicy, retryDelay } from "../../src/engine/retry_delay.ts";

const fixed: BackoffPolicy = { backoff: "fixed", delaySec: 3, maxDelaySec: null, jitter: 0 };
const exponential: BackoffPolicy = { backoff: "exponential", delaySec: 1, maxDelaySec: null, jitter: 0 };

Deno.test("retryDelay: table of policies, attempts and draws", () => {
  const table: [BackoffPolicy, number, number, number][] = [
    // policy, failed attempt, random draw, expected delay
    [fixed, 1, 0, 3],
    [fixed, 7, 0.99, 3],
    [{ ...fixed, delaySec: 0 }, 3, 0.5, 0],
    [{ ...fixed, maxDelaySec: 2 }, 1, 0, 2],
    [{ ...fixed, jitter: 0.5 }, 1, 0.5, 2.25],
    [exponential, 1, 0, 1],
    [exponential, 2, 0, 2],
    [exponential, 3, 0, 4],
    [exponential, 11, 0, 1024],
    [{ ...exponential, maxDelaySec: 10 }, 4, 0, 8],
    [{ ...exponential, maxDelaySec: 10 }, 5, 0, 10],
    [{ ...exponential, maxDelaySec: 10 }, 50, 0, 10],
    [{ ...exponential, maxDelaySec: 10, jitter: 1 }, 50, 0.9, 1],
    [{ ...exponential, jitter: 0.2 }, 3, 0.5, 3.6],
    [{ ...exponential, delaySec: 0.1, jitter: 0.1 }, 2, 0.123, 0.198],
    // Attempt 0 (never happens) and huge attempts stay finite.
    [exponential, 0, 0, 1],
  ];
  for (const [policy, attempt, random, expected] of table) {
    assert.equal(retryDelay(policy, attempt, random), expected, JSON.stringify({ policy, attempt, random }));
  }
  assert.ok(Number.isFinite(retryDelay(exponential, 1e9, 0)));
});

Deno.test("retryDelay: every draw lies within [d·(1−jitter), d] and never above the ceiling", () => {
  const policy: BackoffPolicy = { backoff: "exponential", delaySec: 0.5, maxDelaySec: 6, jitter: 0.3 };
  for (let attempt = 1; attempt <= 8; attempt++) {
    const d = Math.min(0.5 * 2 ** (attempt - 1), 6);
    for (const random of [0, 0.25, 0.5, 0.999999]) {
      const delay = retryDelay(policy, attempt, random);
      assert.ok(delay <= d && delay >= d * 0.7 - 0.001 && delay <= 6, `${attempt} ${random} ${delay}`);
    }
  }
});
