/**
 * A foreground driver whose rounds are lost to a write lock another process holds while its jobs end:
 * each ended job rang the driver's bell (a file event), and the pause after a lost round, cut short by
 * the bell, gave no turn of the event loop in which to hear a signal; every lost round also waited out
 * one slice of the lock per running step. A Ctrl-C then took about 9 s to be heard (5 of 6 trials of a
 * 6-job fan-out with a join and a chain after it), against ~0.12 s now. The lock is held as in
 * held_lock_test.ts.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { pathExists } from "../../src/shared/mod.ts";
import { eventually } from "../helpers.ts";
import { flowTest, step } from "./flow_env.ts";
import { assertLockHeld, holdWriteLock } from "./write_lock.ts";

const STEPS = 6;
/**
 * How long the lock is held: far longer than a fixed driver needs to hear the signal (one slice of the
 * lock, a quarter of a second), shorter than the old one took (about 9 s).
 */
const HOLD_SECONDS = 3;

flowTest(
  ["builtin"],
  "Ctrl-C while the write lock is held as jobs end is heard with the lock still held",
  async (env) => {
    const [go, ended] = [join(env.home, "go"), (i: number) => join(env.home, `ended${i}`)];
    // A fan-out whose jobs end once the lock is held, a little apart (each end is a file event that
    // rings the driver), then a join and a chain that the driver would start next.
    const fan = Array.from(
      { length: STEPS },
      (_, i) =>
        `  - id: f${i}\n    command: "while [ ! -e ${go} ]; do sleep 0.05; done; sleep 0.${i + 1}; touch ${
          ended(i)
        }"\n`,
    );
    const after = ["j", "c1", "c2"].map((id, i) =>
      `  - id: ${id}\n    depends_on: [${i === 0 ? fan.map((_, f) => `f${f}`).join(", ") : i === 1 ? "j" : "c1"}]\n` +
      `    command: "true"\n`
    );
    const flow = env.flow("together.yaml", `flow_id: together\nsteps:\n${fan.join("")}${after.join("")}`);
    const driver = env.spawn(["start", "--run-key", "k", flow]);
    let exited = false;
    const output = driver.output().finally(() => (exited = true));
    await env.waitFor(
      "k",
      "every step runs",
      (run) => run.steps.filter((s: { orchesjob_status: unknown }) => s.orchesjob_status !== null).length === STEPS,
    );
    // Held for less than the old behaviour took to hear the signal, far longer than a slice of the wait.
    await using lock = await holdWriteLock(env, HOLD_SECONDS);
    Deno.writeTextFileSync(go, "");
    // During the jobs' ends, as they ring the driver.
    await eventually("every job ended", () => Array.from({ length: STEPS }, (_, i) => ended(i)).every(pathExists));
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(exited, false, "the driver is still there, its rounds lost to the lock");
    driver.kill("SIGINT");
    const done = await output;
    assert.equal(lock.released(), false, "the interrupt was heard only once the lock was let go");
    assertLockHeld(env);
    assert.equal(done.code, 130, new TextDecoder().decode(done.stderr));
    // The situation under test: the jobs ended while the lock was held, and the driver could record
    // none of those ends (its rounds were lost to the lock), not one that had nothing left to write.
    const run = await env.status("k");
    for (let i = 0; i < STEPS; i++) assert.equal(step(run, `f${i}`).status, "RUNNING", `f${i}'s end was not recorded`);
  },
);
