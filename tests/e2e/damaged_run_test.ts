/**
 * A run whose stored record cannot be read back (a JSON column that does not parse, an unknown status,
 * a definition that is not a flow): the commands that need it name the run and exit 65, and `list` and
 * `clean` go on with the other runs.
 */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { join } from "node:path";
import { errorLine } from "../helpers.ts";
import { flowTest, type Json } from "./flow_env.ts";
import { builtin, TWO_STEPS } from "./operator_env.ts";

const DAMAGED = 65;

function stateFile(home: string): DatabaseSync {
  return new DatabaseSync(join(home, "orchesjob-flow.sqlite3"));
}

/** Runs `sql` against the state file and returns the rows of `check` (to show the damage is there). */
function damage(home: string, sql: string, ...values: string[]): void {
  const db = stateFile(home);
  try {
    assert.equal(Number(db.prepare(sql).run(...values).changes), 1, `${sql} changed one row`);
  } finally {
    db.close();
  }
}

function row(home: string, sql: string, runKey: string): Json {
  const db = stateFile(home);
  try {
    return db.prepare(sql).get(runKey);
  } finally {
    db.close();
  }
}

flowTest(builtin, "damaged run: its commands exit 65 naming it; list shows it; clean deletes it", async (env) => {
  await env.json(["start", "--run-key", "good", env.flow("two.yaml", TWO_STEPS)]);
  await env.json(["start", "--run-key", "bad", env.flow("two.yaml", TWO_STEPS)]);
  damage(env.home, "UPDATE flow_steps SET orchesjob_status = '{cut off' WHERE run_key = 'bad' AND step_id = 'a'");
  const before = row(env.home, "SELECT * FROM flow_steps WHERE run_key = ? AND step_id = 'a'", "bad");

  for (const args of [["status"], ["start", env.flow("two.yaml", TWO_STEPS)], ["retry"], ["cancel"], ["wait"]]) {
    const result = await env.run([...args, "--run-key", "bad"]);
    assert.equal(result.code, DAMAGED, `${args[0]}: ${result.stderr}`);
    assert.equal(result.stdout, "", `${args[0]} printed nothing on stdout`);
    const { error } = errorLine(result);
    assert.ok(error.startsWith(`${args[0]}: run "bad" is damaged in the state file: `), error);
    assert.ok(error.includes('flow_steps.orchesjob_status of step "a" is not JSON'), error);
  }
  // Nothing the refused commands did changed the run.
  assert.deepEqual(row(env.home, "SELECT * FROM flow_steps WHERE run_key = ? AND step_id = 'a'", "bad"), before);
  assert.equal((await env.status("good")).status, "SUCCEEDED");

  const listed = await env.run(["list"]);
  assert.equal(listed.code, 0, listed.stderr);
  const warning = JSON.parse(listed.stderr.trim());
  assert.ok(warning.warning.startsWith('list: run "bad" is damaged'), listed.stderr);
  const runs = JSON.parse(listed.stdout);
  assert.deepEqual(runs.map((run: Json) => run.run_key), ["bad", "good"]);
  assert.equal(runs[0].status, "SUCCEEDED");
  assert.match(runs[0].damaged, /flow_steps\.orchesjob_status of step "a" is not JSON/);
  assert.equal(runs[1].damaged, undefined);
  assert.deepEqual(runs[1].step_counts, { total: 2, done: 2, running: 0, failed: 0, cancelled: 0 });
  const table = await env.run(["list", "--format", "table"]);
  assert.equal(table.code, 0, table.stderr);
  assert.match(table.stdout, /\nbad +two +DAMAGED \(SUCCEEDED\) /);
  assert.match(table.stdout, /\ngood +two +SUCCEEDED /);

  // clean reads plain columns only: the damaged run goes like any finished one.
  const cleaned = await env.json(["clean", "--older-than", "0"]);
  assert.deepEqual(cleaned.runs.map((run: Json) => run.run_key).sort(), ["bad", "good"]);
  assert.equal(cleaned.runs.find((run: Json) => run.run_key === "bad").jobs.length, 2, "bad's two jobs went too");
  assert.deepEqual(await env.json(["list"]), []);
});

flowTest(builtin, "damaged run: an unknown status, a definition that is not JSON or not a flow", async (env) => {
  const cases: [string, string, RegExp][] = [
    [
      "UPDATE flow_runs SET status = 'PAUSED' WHERE run_key = ?",
      "status",
      /flow_runs\.status is "PAUSED", not one of /,
    ],
    [
      "UPDATE flow_steps SET status = '' WHERE run_key = ? AND step_id = 'b'",
      "step status",
      /flow_steps\.status of step "b" is "", not one of /,
    ],
    ["UPDATE flow_runs SET definition = 'nope' WHERE run_key = ?", "definition", /flow_runs\.definition is not JSON/],
    ["UPDATE flow_runs SET definition = '{}' WHERE run_key = ?", "flow", /flow_runs\.definition is not a flow/],
    [
      'UPDATE flow_runs SET definition = replace(definition, \'"id":"b"\', \'"id":"c"\') WHERE run_key = ?',
      "steps",
      /flow_steps does not hold the steps its definition names/,
    ],
    ["UPDATE flow_runs SET executor = '' WHERE run_key = ?", "executor", /flow_runs\.executor is not JSON/],
  ];
  for (const [sql, what, message] of cases) {
    const runKey = `bad-${what.replace(" ", "-")}`;
    await env.json(["start", "--run-key", runKey, env.flow("two.yaml", TWO_STEPS)]);
    damage(env.home, sql, runKey);
    const result = await env.run(["status", "--run-key", runKey]);
    assert.equal(result.code, DAMAGED, `${what}: ${result.stderr}`);
    const { error } = errorLine(result);
    assert.ok(error.startsWith(`status: run "${runKey}" is damaged in the state file: `), error);
    assert.match(error, message);
  }
  const listed = await env.run(["list"]);
  assert.equal(listed.code, 0, listed.stderr);
  assert.equal(listed.stderr.trim().split("\n").length, cases.length, "one warning per damaged run");
  assert.equal(JSON.parse(listed.stdout).filter((run: Json) => run.damaged).length, cases.length);
});

flowTest(
  builtin,
  "damaged job: job commands exit 65 naming it; the flow's status and clean are not stopped",
  async (env) => {
    await env.json(["start", "--run-key", "r", env.flow("two.yaml", TWO_STEPS)]);
    damage(env.home, "UPDATE jobs SET command = '[\"tru' WHERE run_key = 'r:a:1'");
    const jobStatus = await env.run(["job", "status", "--run-key", "r:a:1"]);
    assert.equal(jobStatus.code, DAMAGED, jobStatus.stderr);
    assert.match(
      errorLine(jobStatus).error,
      /^job [0-9a-f-]+ \(run key "r:a:1"\) is damaged in the state file: jobs\.command/,
    );
    const other = await env.json(["job", "status", "--run-key", "r:b:1"]);
    assert.equal(other.status, "SUCCEEDED");
    assert.equal((await env.status("r")).status, "SUCCEEDED");

    const cleaned = await env.json(["clean", "--older-than", "0"]);
    assert.deepEqual(cleaned.runs.map((run: Json) => [run.run_key, run.jobs.length]), [["r", 2]]);
    assert.equal(row(env.home, "SELECT COUNT(*) AS n FROM jobs WHERE run_key LIKE ?", "r:%").n, 0, "both jobs went");
  },
);
