/**
 * The abort a driver asks again before it retries an ABORTED attempt (Driver.settleAborted): an
 * orchesjob whose `abort` keeps failing must not hold the step RUNNING for ever.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { flowTest, step } from "./flow_env.ts";
import { writeJobWrapper } from "../helpers.ts";
import { countLines, logged } from "./fault_helpers.ts";

flowTest(
  ["builtin"],
  "an orchesjob whose abort keeps exiting 1 (after aborting) fails the timed-out step after executor_unavailable_sec, not retried, never stuck",
  async (env) => {
    const jobHome = join(env.home, "orchesjob");
    Deno.mkdirSync(jobHome);
    const inner = writeJobWrapper(jobHome, jobHome);
    const aborts = join(env.home, "aborts");
    const bin = join(env.home, "failing-abort-orchesjob");
    // Every `abort` does its work, then says it failed (orchesjob's exit 1: "database is locked").
    Deno.writeTextFileSync(
      bin,
      "#!/bin/sh\n" +
        `if [ "$1" = abort ]; then '${inner}' "$@" >/dev/null; echo x >> '${aborts}'; ` +
        "echo 'database is locked' >&2; exit 1; fi\n" +
        `exec '${inner}' "$@"\n`,
    );
    Deno.chmodSync(bin, 0o755);
    const log = join(env.home, "ran");
    const file = env.flow(
      "t.yaml",
      "flow_id: t\nexecutor_unavailable_sec: 2\nsteps:\n" +
        `  - {id: a, retries: 1, timeout_sec: 1, command: ${logged(log, "a", "sleep 60")}}\n`,
    );
    const result = await env.run(["--orchesjob-bin", bin, "start", "-q", "--run-key", "k", file]);
    assert.equal(result.code, 1, result.stderr);
    const run = JSON.parse(result.stdout);
    assert.equal(run.status, "FAILED", result.stdout);
    const a = step(run, "a");
    assert.equal(a.attempt_no, 1, "attempt 1 was not retried: nobody could confirm it ended");
    assert.match(a.error, /abort .*could not be confirmed.*database is locked/, a.error);
    // The situation occurred: the timeout's abort and the retry's abort asked again all failed.
    assert.ok(countLines(aborts).x >= 3, `abort calls: ${JSON.stringify(countLines(aborts))}`);
    assert.deepEqual(countLines(log), { a: 1 }, "the step's command ran once");
  },
);
