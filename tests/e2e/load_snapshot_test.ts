/**
 * A run is read as one commit left it: a follower (`status`) that reads a run while a driver commits
 * a change to its row and its steps sees the run either before or after that commit, never its row
 * from before with its steps from after. The reader is stopped (a test-only stop point, SIGSTOP)
 * between the two reads, so the commit really lands in that window; the test asserts that it did.
 */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { isStopped } from "../helpers.ts";
import { flowTest, statuses } from "./flow_env.ts";
import { spawnStopped } from "./stop_point.ts";
import { builtin, TWO_STEPS, undrivenRun } from "./operator_env.ts";
import { stateFile } from "./write_lock.ts";

flowTest(
  builtin,
  "status reads a run from one snapshot: a commit between its reads of the run row and the steps is not half seen",
  async (env) => {
    await undrivenRun(env, "r", env.flow("two.yaml", TWO_STEPS));
    // Stopped after reading the run row, before the step rows.
    const child = await spawnStopped(env, ["status", "--run-key", "r"], "store:load-run-read");
    // A driver's commit, as one transaction: the run and its steps end together.
    const db = new DatabaseSync(stateFile(env));
    try {
      db.exec("BEGIN IMMEDIATE");
      db.exec("UPDATE flow_runs SET status = 'SUCCEEDED', finished_at = started_at + 1 WHERE run_key = 'r'");
      db.exec("UPDATE flow_steps SET status = 'SUCCEEDED', attempt_no = 1 WHERE run_key = 'r'");
      db.exec("COMMIT");
    } finally {
      db.close();
    }
    assert.equal(isStopped(child.pid), true, "the commit landed while status was stopped between its reads");
    const result = await child.finish();
    assert.equal(result.code, 0, result.stderr);
    const seen = JSON.parse(result.stdout);
    // Before the fix: {status: PENDING, steps SUCCEEDED}, the run row from before the commit.
    assert.deepEqual([seen.status, statuses(seen)], ["PENDING", { a: "PENDING", b: "PENDING" }]);
    // The commit is there for the next reader, whole.
    const after = await env.status("r");
    assert.deepEqual([after.status, statuses(after)], ["SUCCEEDED", { a: "SUCCEEDED", b: "SUCCEEDED" }]);
  },
  { ignore: Deno.build.os !== "linux" }, // the stop is watched in /proc
);
