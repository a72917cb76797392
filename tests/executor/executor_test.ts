/**
 * The Executor interface the engine uses, against both implementations: the built-in runner in
 * process, and the external adapter driving the `orchesjob-flow job` wrapper.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { BuiltinRunner, type Executor, ExternalExecutor } from "../../src/executor/mod.ts";
import { jobsDirectory, openDatabase } from "../../src/store/mod.ts";
import { eventually, writeJobWrapper } from "../helpers.ts";

const IMPLEMENTATIONS: [string, (home: string) => { executor: Executor; close(): void }][] = [
  ["built-in", (home) => {
    const dbPath = join(home, "state.sqlite3");
    const db = openDatabase(dbPath);
    return { executor: new BuiltinRunner(db, jobsDirectory(dbPath)), close: () => db.close() };
  }],
  ["external via the job wrapper", (home) => ({
    // The wrapper names its state home itself: test files that run in parallel share one environment.
    executor: new ExternalExecutor(writeJobWrapper(home, home)),
    close: () => {},
  })],
];

for (const [name, open] of IMPLEMENTATIONS) {
  Deno.test({
    name: `${name}: start with env, status, running, logs, abort (also of a finished job), unknown keys`,
    sanitizeOps: false,
    sanitizeResources: false,
    async fn() {
      const home = Deno.makeTempDirSync({ prefix: "ojf-executor-" });
      const { executor, close } = open(home);
      try {
        assert.equal(await executor.status("unknown"), null);
        assert.equal(await executor.abort("unknown", { graceSeconds: 1 }), null);
        assert.equal(await executor.logs({ runKey: "unknown" }, "stdout"), null);

        const started = await executor.start("greet", ["sh", "-c", 'echo "$GREETING"; echo oops >&2'], {
          strict: true,
          env: { GREETING: "hello from env" },
        });
        assert.equal(started.accepted, true);
        await eventually("greet to succeed", async () => (await executor.status("greet"))?.status === "SUCCEEDED");
        assert.equal(
          new TextDecoder().decode((await executor.logs({ runKey: "greet" }, "stdout"))!),
          "hello from env\n",
        );
        assert.equal(new TextDecoder().decode((await executor.logs({ runKey: "greet" }, "stderr"))!), "oops\n");
        // Parts of the output: from a byte on (for --follow), or the last bytes (for a failure's reason).
        const part = async (range: { from: number } | { last: number }) =>
          new TextDecoder().decode((await executor.logs({ runKey: "greet" }, "stdout", range))!);
        assert.equal(await part({ from: 6 }), "from env\n");
        assert.equal(await part({ from: 100 }), "");
        assert.equal(await part({ last: 4 }), "env\n");
        assert.equal(await part({ last: 100 }), "hello from env\n");
        // Aborting a job that has already finished is an answer (its final state), not an error.
        assert.equal((await executor.abort("greet", { graceSeconds: 1 }))?.status, "SUCCEEDED");

        // The start waits up to startTimeoutSec for the job to be RUNNING: generous, for a loaded machine.
        const long = await executor.start("long", ["sleep", "30"], { strict: true, startTimeoutSec: 60 });
        assert.equal(long.status, "RUNNING");
        assert.deepEqual((await executor.running()).map((job) => job.run_key), ["long"]);
        const aborted = await executor.abort("long", { graceSeconds: 1, reason: "test" });
        assert.equal(aborted?.status, "ABORTED");
        assert.deepEqual(await executor.running(), []);
      } finally {
        close();
        Deno.removeSync(home, { recursive: true });
      }
    },
  });
}
