/**
 * `logs` of a built-in job whose end is not recorded yet (its driver died while the job ran), under
 * another process's write lock taken after `logs` opened the state file (a test-only stop point puts
 * the lock in that window): it prints the output and exits 0 at once, its record of the job's end
 * skipped, instead of waiting in SQLite for the busy timeout (signals unheard), then failing. The
 * next reader records the end; nothing is launched twice.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { eventually, hasOpen } from "../helpers.ts";
import { runCrashingAt } from "./fault_helpers.ts";
import { flowTest } from "./flow_env.ts";
import { builtin } from "./operator_env.ts";
import { spawnStopped } from "./stop_point.ts";
import { assertLockHeld, holdWriteLock, stateFile } from "./write_lock.ts";
import type { FlowEnv } from "./flow_env.ts";

/** The status of every built-in job in the state file, read as it is committed. */
function jobStatuses(env: FlowEnv): string[] {
  const db = new DatabaseSync(stateFile(env), { readOnly: true });
  try {
    return (db.prepare("SELECT status FROM jobs").all() as { status: string }[]).map((row) => row.status);
  } finally {
    db.close();
  }
}

/**
 * A run whose one step's job ended while no driver ran: `start` dies (SIGKILL) right after it launched
 * the job, which then prints and ends with nobody to record it. `counter` gets a line per execution.
 */
async function unrecordedEnd(env: FlowEnv, counter: string): Promise<void> {
  const script = `echo run >> '${counter}'; echo out; echo err >&2`;
  const file = env.flow("one.yaml", `flow_id: one\nsteps:\n  - id: s\n    command: ${JSON.stringify(script)}\n`);
  await runCrashingAt(env, "runner:after-supervisor-spawn", ["start", "--run-key", "r1", file]);
  const ended = join(env.home, "jobs", "ended");
  await eventually("the step's job ended", () => {
    try {
      return [...Deno.readDirSync(ended)].some((entry) => entry.name.endsWith(".exit"));
    } catch {
      return false;
    }
  });
  assert.deepEqual(jobStatuses(env), ["STARTING"], "the job's end is not recorded");
}

for (const follow of [false, true]) {
  const args = ["logs", "--run-key", "r1", "--step", "s", ...(follow ? ["--follow"] : [])];
  flowTest(
    builtin,
    `${args.join(" ")} under a write lock taken after it opened the state file prints the output at once`,
    async (env) => {
      const counter = join(env.home, "counter");
      await unrecordedEnd(env, counter);
      const logs = await spawnStopped(env, args, "session:opened");
      assert.ok(hasOpen(logs.pid, stateFile(env)), "logs has the state file open");
      let result;
      {
        await using lock = await holdWriteLock(env, 60);
        // Before the fix: its record of the job's end waited in SQLite for the busy timeout (15 s),
        // deaf to signals, then failed with exit 70 while the lock was still held.
        result = await logs.finish();
        assert.equal(lock.released(), false, "logs ended while the lock was held");
        assertLockHeld(env);
        // The lock stopped its record: the end is still unrecorded (a reader with no lock records it, below).
        assert.deepEqual(jobStatuses(env), ["STARTING"], "logs met the lock: it recorded nothing");
      }
      assert.equal(result.code, 0, result.stderr);
      assert.equal(result.stdout, "out\n");
      assert.equal(result.stderr, "err\n");
      // The files stayed: the next reader prints the same output and records the job's end.
      const again = await env.run(args);
      assert.equal(again.code, 0, again.stderr);
      assert.deepEqual([again.stdout, again.stderr], ["out\n", "err\n"]);
      assert.deepEqual(jobStatuses(env), ["SUCCEEDED"], "the next reader recorded the job's end");
      assert.equal(Deno.readTextFileSync(counter), "run\n", "the command ran once");
    },
  );
}
