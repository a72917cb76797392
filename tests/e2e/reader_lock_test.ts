/**
 * `job status` and `job logs` under another process's write lock taken right after they opened the
 * state file (a test-only stop point puts the lock in that window): they answer at once from a
 * read-only look, as README says, instead of waiting for the lock to go.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { eventually, hasOpen, isStopped } from "../helpers.ts";
import { holdWriteLock, stateFile } from "./write_lock.ts";
import { flowTest } from "./flow_env.ts";
import { readLog } from "./stop_point.ts";
import { builtin } from "./operator_env.ts";

flowTest(
  builtin,
  "job status and job logs answer at once under a write lock taken right after they opened the state file",
  async (env) => {
    const started = await env.run(["job", "start", "--run-key", "j1", "--", "sh", "-c", "echo out; sleep 300"]);
    assert.equal(started.code, 0, started.stderr);
    const db = stateFile(env);
    const log = join(env.home, "stop.log");
    const readers = [["job", "status", "--run-key", "j1"], ["job", "logs", "--run-key", "j1"]].map((args) => {
      const child = env.spawn(args, {
        ORCHESJOB_FLOW_BUSY_TIMEOUT_MS: "300",
        ORCHESJOB_FLOW_STOP_AT: "session:opened",
        ORCHESJOB_FLOW_CRASH_LOG: log,
      });
      let exited = false;
      const output = child.output().finally(() => (exited = true));
      return { args, child, output, exited: () => exited };
    });
    await using _kill = {
      async [Symbol.asyncDispose]() {
        for (const { child, exited } of readers) if (!exited()) child.kill("SIGKILL");
        await Promise.allSettled(readers.map(({ output }) => output));
        await env.run(["job", "abort", "--run-key", "j1", "--grace-seconds", "1"]);
      },
    };
    for (const { args, child, exited } of readers) {
      await eventually(`${args.join(" ")} stopped once it opened the state file`, () => {
        const text = readLog(log);
        return exited() || (text.includes(`session:opened ${child.pid}\n`) && isStopped(child.pid));
      });
      assert.equal(exited(), false);
      assert.ok(hasOpen(child.pid, db), `${args.join(" ")} has the state file open`);
    }
    await using lock = await holdWriteLock(env, 60);
    for (const { child } of readers) Deno.kill(child.pid, "SIGCONT");
    // They waited until the lock went (here 60 s), saying the file is locked.
    for (const { args, exited } of readers) {
      await eventually(`${args.join(" ")} answered while the lock was held`, () => exited() || lock.released(), 20);
    }
    assert.equal(lock.released(), false, "the readers answered while the lock was held");
    const [status, logs] = await Promise.all(readers.map(({ output }) => output));
    const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
    assert.equal(status.code, 0, text(status.stderr));
    assert.equal(text(status.stderr), "");
    assert.equal(JSON.parse(text(status.stdout)).status, "RUNNING");
    assert.equal(logs.code, 0, text(logs.stderr));
    assert.equal(text(logs.stderr), "");
    assert.equal(text(logs.stdout), "out\n");
  },
);
