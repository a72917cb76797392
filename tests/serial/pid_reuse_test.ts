/**
 * A step's supervisor PID taken over by another step of the same driver. Every job a launch server
 * starts shows the server's mark on its command line, so the mark cannot tell them apart; the
 * leader's start could only be compared with the claim to within 2 s (the boot time is whole
 * seconds). A read of a timed-out step (`logs`) then took the other step's supervisor, started within
 * those 2 s on the PID the aborted one left, for the aborted job's and resumed that abort on it:
 * SIGTERM to its group, SIGKILL after the deadline. The claim now holds the supervisor's start in
 * clock ticks, which names it exactly.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { pathExists } from "../../src/shared/mod.ts";
import { canSteerPids, eventually, readPid } from "../helpers.ts";
import { flowTest, statuses } from "../e2e/flow_env.ts";

/** The modification times (ms) of the built-in jobs' claim files under the home that name `pid`. */
function claimTimesOf(home: string, pid: number): number[] {
  const jobs = join(home, "jobs");
  return [...Deno.readDirSync(jobs)]
    .filter((entry) => entry.name.endsWith(".claim"))
    .map((entry) => join(jobs, entry.name))
    .filter((path) => Number(/^\d+/.exec(Deno.readTextFileSync(path))?.[0]) === pid)
    .map((path) => Deno.statSync(path).mtime!.getTime());
}

flowTest(
  ["builtin"],
  "a read of an aborted step never signals another step whose supervisor took over its PID",
  async (env) => {
    // Steering a PID can miss (any fork on the host takes it first): a few trials, one must hit.
    for (let trial = 0; trial < 10; trial++) {
      const dir = join(env.home, `t${trial}`);
      Deno.mkdirSync(dir);
      const [aPid, bPid, bTerm, release] = ["a.pid", "b.pid", "b.term", "release"].map((f) => join(dir, f));
      // A times out and ends on the abort's SIGTERM; C waits until A's supervisor is gone (reaped),
      // then has the kernel hand out its PID next: to B's supervisor, forked by the same server.
      const flow = env.flow(
        `reuse${trial}.yaml`,
        `flow_id: reuse
steps:
  - id: A
    timeout_sec: 0.5
    command: "echo $PPID > ${aPid}; exec sleep 30"
  - id: C
    command: "while [ ! -e ${aPid} ]; do sleep 0.02; done; X=$(cat ${aPid}); while [ -e /proc/$X ]; do sleep 0.02; done; echo $((X - 1)) > /proc/sys/kernel/ns_last_pid"
  - id: B
    depends_on: [C]
    command: "trap 'echo TERM >> ${bTerm}' TERM; echo $PPID > ${bPid}; while [ ! -e ${release} ]; do sleep 0.05; done"
`,
      );
      const key = `r${trial}`;
      assert.equal((await env.json(["start", "--run-key", key, "-d", flow])).detached, true);
      // Read from B's file, not by status commands: their processes would take the steered PID.
      await eventually(`${key}: B runs`, () => readPid(bPid) !== null);
      // The situation under test: B's supervisor on A's old PID, claimed within the 2 s that the old
      // check (the leader's start against A's claim, in whole seconds) gave A's supervisor.
      const pid = readPid(bPid);
      const claims = claimTimesOf(env.home, pid!);
      const reused = pid === readPid(aPid) && claims.length === 2 && Math.abs(claims[1] - claims[0]) < 2000;
      if (reused) {
        // Within the abort's deadline: a read of A resumes its abort (SIGTERM to a group still A's).
        const logs = await env.run(["logs", "--run-key", key, "--step", "A"]);
        assert.equal(logs.code, 0, logs.stderr);
      }
      Deno.writeTextFileSync(release, "");
      const run = await env.waitFor(key, "the run ends", (r) => r.finished_at !== null);
      if (!reused) continue;
      assert.equal(pathExists(bTerm), false, "B's supervisor, on A's old PID, was signalled as A's");
      assert.deepEqual(statuses(run), { A: "FAILED", C: "SUCCEEDED", B: "SUCCEEDED" });
      return;
    }
    assert.fail("no trial gave B's supervisor the PID A's supervisor left");
  },
  // Root on Linux only: the PID reuse is forced through /proc/sys/kernel/ns_last_pid.
  { ignore: Deno.build.os !== "linux" || !canSteerPids() },
);
