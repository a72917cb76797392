/**
 * A cancel of many running steps looks at /proc once per round for all of them, not once per job per
 * look: on a loaded host with a thousand processes a pass over /proc took a tenth of a second, and a
 * cancel of 100 steps, making two passes per job one after another, took from half a minute to
 * minutes. Counted through the test hook ORCHESJOB_FLOW_TEST_SCAN_LOG (one line per pass, with the
 * number of process groups it answered for), not timed. So does a `job clean` of many aborted jobs,
 * which keeps those whose group still lives.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { processAlive } from "../helpers.ts";
import { flowTest, statuses, step } from "./flow_env.ts";

const JOBS = 8;

flowTest(
  ["builtin"],
  "a cancel's aborts share their looks at /proc: one pass answers for every job in its grace",
  async (env) => {
    // Each command leaves a child that ignores SIGTERM in its process group and waits for it: the
    // SIGTERM ends the command, its supervisor records that and exits, and the group lives on to the
    // SIGKILL. Every look during the grace must then ask /proc whether the group still lives.
    const pidFile = (i: number) => join(env.home, `s${i}.pid`);
    const command = (i: number) => `(trap '' TERM; exec sleep 100) & echo $! > ${pidFile(i)}; wait`;
    const steps = Array.from({ length: JOBS }, (_, i) => `  - id: s${i}\n    command: "${command(i)}"\n`);
    const file = env.flow("wide.yaml", `flow_id: wide\nsteps:\n${steps.join("")}`);
    assert.equal((await env.json(["start", "--run-key", "w", "-d", file])).detached, true);
    const pids: number[] = [];
    await env.waitFor("w", "every step's command runs", (run) => {
      pids.length = 0;
      for (let i = 0; i < JOBS; i++) {
        const target = step(run, `s${i}`).orchesjob_status?.target_pid;
        const text = (() => {
          try {
            return Deno.readTextFileSync(pidFile(i));
          } catch {
            return "";
          }
        })();
        if (!(target > 0) || !text.endsWith("\n")) return false;
        pids.push(Number(text));
      }
      return true;
    });
    for (const pid of pids) assert.ok(processAlive(pid), `the child ${pid} runs when the cancel begins`);
    const log = join(env.home, "scans.log");
    const cancelled = await env.json(["cancel", "--run-key", "w", "--grace-seconds", "3"], 0, {
      ORCHESJOB_FLOW_TEST_SCAN_LOG: log,
    });
    assert.equal(cancelled.status, "CANCELLED");
    assert.deepEqual(Object.values(statuses(cancelled)), Array(JOBS).fill("CANCELLED"));
    // The guarantee stands: each group, still the job's at the grace's end, got its SIGKILL.
    for (const pid of pids) assert.ok(!processAlive(pid), `the child ${pid} that ignored SIGTERM was SIGKILLed`);
    const answered = Deno.readTextFileSync(log).trim().split("\n").map((line) => {
      const match = /^scan (\d+)$/.exec(line);
      assert.ok(match, `a line of the scan log: ${line}`);
      return Number(match[1]);
    });
    // One job's look per pass (the passes made one per job, one after another) would leave this at 1.
    const most = Math.max(...answered);
    assert.equal(most, JOBS, `no pass answered for every job: ${answered.length} passes, for ${most} groups at most`);
  },
  // Elsewhere a signal probes each group: there is no pass over /proc to share.
  { ignore: Deno.build.os !== "linux" },
);

flowTest(
  ["builtin"],
  "a job clean of many aborted jobs looks at /proc once for all of them, not twice per job",
  async (env) => {
    for (let i = 0; i < JOBS; i++) {
      assert.equal((await env.json(["job", "start", "--run-key", `k${i}`, "--", "sleep", "100"])).status, "RUNNING");
      assert.equal((await env.json(["job", "abort", "--run-key", `k${i}`, "--grace-seconds", "0"])).status, "ABORTED");
    }
    const log = join(env.home, "scans.log");
    const cleaned = await env.json(["job", "clean", "--all"], 0, { ORCHESJOB_FLOW_TEST_SCAN_LOG: log });
    // The situation under test: every job was ABORTED and its abort done (its group gone), which only
    // a pass over /proc tells, so every one was deleted.
    assert.equal(cleaned.items.length, JOBS, JSON.stringify(cleaned));
    assert.equal(cleaned.skipped, undefined);
    // Two passes per job, one after another, made this 2 × JOBS lines of `scan 1`.
    assert.deepEqual(Deno.readTextFileSync(log).trim().split("\n"), [`scan ${JOBS}`]);
  },
  { ignore: Deno.build.os !== "linux" },
);
