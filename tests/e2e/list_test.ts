/** `list` through the real CLI. */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { errorLine } from "../helpers.ts";
import { flowTest, type Json, step } from "./flow_env.ts";
import { builtin, FAILING, SLEEPING, TWO_STEPS } from "./operator_env.ts";

flowTest(builtin, "list: newest first, filters by status, flow, time and limit; JSON is status's", async (env) => {
  const empty = await env.run(["list"]);
  assert.equal(empty.code, 0, empty.stderr);
  assert.deepEqual(JSON.parse(empty.stdout), []);
  assert.ok(!existsSync(join(env.home, "orchesjob-flow.sqlite3")), "list created no state file");

  await env.json(["start", "--run-key", "s1", env.flow("two.yaml", TWO_STEPS)]);
  await env.json(["start", "--run-key", "f1", env.flow("bad.yaml", FAILING)], 1);
  const detached = await env.json(["start", "--run-key", "r1", "-d", env.flow("slow.yaml", SLEEPING)]);
  assert.equal(detached.detached, true);
  try {
    await env.waitFor("r1", "nap running", (run) => step(run, "nap").status === "RUNNING");
    const keys = (list: Json[]) => list.map((run: Json) => run.run_key);
    const all = await env.json(["list"]);
    assert.deepEqual(keys(all), ["r1", "f1", "s1"]);
    // Linux names the holder (from /proc/locks); elsewhere only that there is one.
    const holder = Deno.build.os === "linux" ? detached.pid : null;
    assert.deepEqual(all[0].driver, { pid: holder }, "r1 is held by its detached driver");
    assert.equal(all[1].driver, null);
    assert.deepEqual(all[1].step_counts, { total: 1, done: 1, running: 0, failed: 1, cancelled: 0 });
    assert.deepEqual(all[0].step_counts, { total: 1, done: 0, running: 1, failed: 0, cancelled: 0 });
    // Each object is what status prints, without steps.
    const { steps: _steps, ...statusOfS1 } = await env.status("s1");
    const { step_counts: _c, ...listedS1 } = all[2];
    assert.deepEqual(listedS1, statusOfS1);
    const withSteps = await env.json(["list", "--steps", "--flow", "two"]);
    const { step_counts: _c2, ...fullS1 } = withSteps[0];
    assert.deepEqual(fullS1, await env.status("s1"));

    assert.deepEqual(keys(await env.json(["list", "--status", "FAILED"])), ["f1"]);
    assert.deepEqual(keys(await env.json(["list", "--status", "FAILED", "--status", "SUCCEEDED"])), ["f1", "s1"]);
    assert.deepEqual(keys(await env.json(["list", "--status", "SUCCEEDED,RUNNING"])), ["r1", "s1"]);
    assert.deepEqual(keys(await env.json(["list", "--flow", "bad"])), ["f1"]);
    assert.deepEqual(keys(await env.json(["list", "--limit", "2"])), ["r1", "f1"]);
    assert.deepEqual(keys(await env.json(["list", "--since", "1h"])), ["r1", "f1", "s1"]);
    assert.deepEqual(keys(await env.json(["list", "--since", "2999-01-01"])), []);
    assert.deepEqual(keys(await env.json(["list", "--since", "2000-01-01T00:00:00Z", "--limit", "0"])), [
      "r1",
      "f1",
      "s1",
    ]);

    const table = await env.run(["list", "--format", "table"]);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /^Runs: 3 {2}Times: \S+/);
    assert.match(table.stdout, /Run key +Flow +Status +Started +Elapsed +Done +Failed +Cancelled +Driver/);
    assert.match(
      table.stdout,
      /\nr1 +slow +RUNNING +\d{4}-\d\d-\d\d \d\d:\d\d:\d\d +\d\d:\d\d:\d\d +0\/1 +0 +0 +(pid \d+|yes)\n/,
    );
    if (holder !== null) assert.ok(table.stdout.includes(` pid ${holder}\n`));
    assert.match(table.stdout, /\nf1 +bad +FAILED .* 1\/1 +1 +0 +-\n/);

    for (
      const [args, pattern] of [
        [["list", "--status", "DONE"], /^list: option --status must be one of SCHEDULED, PENDING, RUNNING/],
        [["list", "--status", "failed"], /did you mean FAILED\?$/],
        [["list", "--limit", "-1"], /^list: option --limit must be >= 0/],
        [["list", "--limit", "1.5"], /^list: option --limit must be a whole number/],
        [["list", "--since", "yesterday"], /^list: option --since needs a duration/],
        [["list", "--format", "xml"], /^list: option --format must be one of json, table/],
      ] as [string[], RegExp][]
    ) {
      const result = await env.run(args);
      assert.equal(result.code, 2, args.join(" "));
      assert.match(errorLine(result).error, pattern);
    }
  } finally {
    await env.run(["cancel", "--run-key", "r1", "--grace-seconds", "1"]);
  }
});
