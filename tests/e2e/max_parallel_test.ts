/**
 * max_parallel through the real CLI: a delayed retry whose time has come waits for a free slot
 * without the driver spinning meanwhile.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { flowTest, type Json, statuses, step } from "./flow_env.ts";

/** CPU time (user + system, seconds) a live process has used, from /proc (ticks of USER_HZ, 100 on Linux). */
function cpuSeconds(pid: number): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // After the command: state (field 3) is fields[0], so utime (14) and stime (15) are fields[11] and [12].
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

flowTest(
  ["builtin"],
  "a delayed retry that is due while max_parallel has no free slot does not make the driver spin",
  async (env) => {
    const mark = join(env.home, "b-failed-once");
    const release = join(env.home, "release-a");
    // b fails its first attempt at once and is retried after 0.3 s; a takes the only slot meanwhile
    // and holds it until the test lets it go, well past b's retry time.
    const file = env.flow(
      "mp.yaml",
      `flow_id: mp
max_parallel: 1
steps:
  - id: b
    command: "test -f ${mark} || { touch ${mark}; exit 1; }"
    retries: 1
    retry_delay_sec: 0.3
  - id: a
    command: "while [ ! -f ${release} ]; do sleep 0.05; done"
`,
    );
    const driver = env.spawn(["start", "-q", "--run-key", "mp", file]);
    const output = driver.output();
    let result: Deno.CommandOutput;
    try {
      // The situation under test: b DELAYED and due, a RUNNING in the only slot.
      await env.waitFor("mp", "b due while a holds the slot", (run: Json) => {
        const b = step(run, "b");
        return b.status === "DELAYED" && b.next_attempt_at !== null &&
          b.next_attempt_at < Date.now() / 1000 - 0.2 && step(run, "a").status === "RUNNING";
      });
      const before = cpuSeconds(driver.pid);
      const began = performance.now();
      await new Promise((resolve) => setTimeout(resolve, 2000));
      const used = cpuSeconds(driver.pid) - before;
      const wall = (performance.now() - began) / 1000;
      const run = await env.status("mp");
      assert.equal(step(run, "b").status, "DELAYED", "b still waits for the slot while the CPU is measured");
      assert.equal(step(run, "a").status, "RUNNING");
      // Polling every 0.1 s costs a few percent of a core; a driver that decides again at once,
      // round after round, because b's time has passed, takes all it can get.
      assert.ok(
        used < wall * 0.25,
        `the driver used ${used.toFixed(2)} s of CPU in ${wall.toFixed(2)} s waiting for a slot`,
      );
    } finally {
      Deno.writeTextFileSync(release, "");
      result = await output;
    }
    assert.equal(result.code, 0, new TextDecoder().decode(result.stderr));
    const run = await env.status("mp");
    assert.deepEqual(statuses(run), { b: "SUCCEEDED", a: "SUCCEEDED" });
    assert.equal(step(run, "b").attempt_no, 2);
  },
  // /proc is read for the driver's CPU time.
  { ignore: Deno.build.os !== "linux" },
);
