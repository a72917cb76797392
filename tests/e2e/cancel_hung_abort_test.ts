/**
 * `cancel` through an external orchesjob whose `abort` hangs: after the first Ctrl-C (once the cancel
 * is committed), the cancel waits for its aborts' grace, as it says, and not for the call limit.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { eventually, processAlive } from "../helpers.ts";
import { readLog } from "./stop_point.ts";
import { type FlowEnv, flowTest, statuses, step } from "./flow_env.ts";

/** orchesjob as the `job` wrapper, except that `abort` writes its PID to `abort.pid` and hangs. */
function hangingAbort(home: string, wrapper: string): string {
  const bin = join(home, "hanging-abort-orchesjob");
  Deno.writeTextFileSync(
    bin,
    `#!/bin/sh
if [ "$1" = abort ]; then echo $$ >> '${join(home, "abort.pid")}'; exec sleep 600; fi
exec '${wrapper}' "$@"
`,
  );
  Deno.chmodSync(bin, 0o755);
  return bin;
}

flowTest(
  ["external"],
  "a Ctrl-C during a hung abort: the cancel gives the abort its grace and a margin, not the call limit",
  async (env) => {
    const release = join(env.home, "release");
    const file = env.flow(
      "flow.yaml",
      `flow_id: hung\nsteps:\n  - {id: a, command: ${
        JSON.stringify(`while [ ! -e '${release}' ]; do sleep 0.05; done`)
      }}\n`,
    );
    const started = await env.json(["start", "--run-key", "k", "-d", file]);
    assert.equal(started.detached, true, JSON.stringify(started));
    const running = await env.waitFor(
      "k",
      "a's job runs",
      (run) => step(run, "a").orchesjob_status?.status === "RUNNING",
    );
    const jobPid = step(running, "a").orchesjob_status.target_pid;
    const bin = hangingAbort(env.home, env.wrapper);
    try {
      await cancelDuringHungAbort(env, bin, jobPid);
    } finally {
      Deno.writeTextFileSync(release, ""); // a failed check leaves no job behind
    }
  },
);

async function cancelDuringHungAbort(env: FlowEnv, bin: string, jobPid: number): Promise<void> {
  // A call limit far beyond the grace: only the cancel's own bound can end the hung abort in time.
  const limit = { ORCHESJOB_FLOW_CALL_TIMEOUT: "120" };
  const cancel = env.spawn(["--orchesjob-bin", bin, "cancel", "--run-key", "k", "--grace-seconds", "1"], limit);
  const output = cancel.output();
  const pidFile = join(env.home, "abort.pid");
  await eventually("the abort call hangs", () => readLog(pidFile).endsWith("\n"));
  const abortPid = Number(readLog(pidFile).trim());
  assert.ok(processAlive(abortPid), "the abort call is under way when the signal comes");
  const signalled = performance.now();
  cancel.kill("SIGINT");
  const result = await output;
  const seconds = (performance.now() - signalled) / 1000;
  const stderr = new TextDecoder().decode(result.stderr);
  assert.equal(result.code, 5, stderr);
  // The grace (1 s) and the margin, with room for a loaded machine; far below the call limit.
  assert.ok(seconds < 60, `the cancel took ${seconds.toFixed(1)} s after the Ctrl-C`);
  assert.match(stderr, /cancel: interrupted; finishing the aborts first/);
  assert.doesNotMatch(stderr, /did not answer within 120 s/);
  assert.match(stderr, /abort was stopped \(interrupted\); the job may still be running \(orchesjob run key k:a:1\)/);
  await eventually("the hung abort call was killed", () => !processAlive(abortPid));
  const run = JSON.parse(new TextDecoder().decode(result.stdout));
  assert.deepEqual([run.status, statuses(run)], ["CANCELLED", { a: "CANCELLED" }]);
  // The job the abort never reached ran on; a cancel through a working orchesjob ends it.
  assert.ok(processAlive(jobPid), "the job was not aborted");
  const again = await env.run(["cancel", "--run-key", "k", "--grace-seconds", "1"]);
  assert.equal(again.code, 0, again.stderr);
  await eventually("the job's process is gone", () => !processAlive(jobPid));
}
