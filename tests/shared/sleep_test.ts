/** Timers given more than they take (about 24.8 days) must wait, not fire at once. */
import assert from "node:assert/strict";
import { sleep, timerDelay } from "../../src/shared/mod.ts";
import { Doorbell } from "../../src/engine/doorbell.ts";

Deno.test("a timer delay is clamped to what timers accept", () => {
  assert.equal(timerDelay(1.5), 1500);
  assert.equal(timerDelay(-1), 0);
  assert.equal(timerDelay(1e11), 2 ** 31 - 1);
  assert.equal(timerDelay(Infinity), 2 ** 31 - 1);
});

Deno.test("a doorbell sleep of a billion seconds is still sleeping later, and a ring still ends it", async () => {
  // Unclamped, such timers fire after 1 ms; a later, short timer must win the race.
  const bell = new Doorbell();
  const long = bell.sleep(1e9).then((rang) => rang ? "rang" : "timer");
  const first = await Promise.race([long, sleep(0.3).then(() => "short")]);
  assert.equal(first, "short");
  bell.ring();
  assert.equal(await long, "rang");
});
