/**
 * Field faults (issue 9) through the real CLI: a broken orchesjob, cancel without a reachable
 * orchesjob, unusable executors and state locations, runs without a driver, truthful `start -d`,
 * true times, and internal errors. External faults use tiny fake ORCHESJOB_BIN scripts.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { existsSync } from "node:fs";
import { cli, errorLine } from "../helpers.ts";
import { flowTest } from "./flow_env.ts";

const builtin = ["builtin"] as const;

const ONE_STEP = `flow_id: one
steps:
  - {id: a, command: ["true"]}
`;

flowTest(builtin, "an internal error (an unusable locks directory) exits 70 with one JSON line", async (env) => {
  const file = env.flow("flow.yaml", ONE_STEP);
  // A file where the locks directory belongs: an environment failure, not the user's input.
  Deno.writeTextFileSync(join(env.home, "locks"), "");
  const result = await env.run(["start", "--run-key", "k", file]);
  assert.equal(result.code, 70, result.stderr);
  assert.match(errorLine(result).error, /^internal error: /);
});

flowTest(builtin, "a first start with an unusable orchesjob exits 2 and stores no run", async (env) => {
  const file = env.flow("flow.yaml", ONE_STEP);
  const notExecutable = env.flow("not-executable", "#!/bin/sh\n");
  const cases: [Record<string, string>, string[], RegExp][] = [
    [{ ORCHESJOB_BIN: "/nonexistent/orchesjob" }, [], /\/nonexistent\/orchesjob: no such file/],
    [{}, ["--orchesjob-bin", notExecutable], /not-executable: not executable/],
    [{ ORCHESJOB_BIN: "no-such-orchesjob-anywhere" }, [], /no-such-orchesjob-anywhere: not found on PATH/],
  ];
  for (const [vars, globals, message] of cases) {
    const result = await env.run([...globals, "start", "--run-key", "k", file], vars);
    assert.equal(result.code, 2, result.stderr);
    assert.match(errorLine(result).error, message);
    assert.equal((await env.run(["status", "--run-key", "k"])).code, 3, "no run was stored");
  }
  // The key is not spent: the same key starts once orchesjob is usable (here: the built-in runner).
  assert.equal((await env.json(["start", "--run-key", "k", file])).status, "SUCCEEDED");
});

flowTest(builtin, "with HOME unset and no state option, commands exit 2 saying how to choose a place", async (env) => {
  const file = env.flow("flow.yaml", ONE_STEP);
  const denoDir = JSON.parse(new TextDecoder().decode(
    (await new Deno.Command(Deno.execPath(), { args: ["info", "--json"] }).output()).stdout,
  )).denoDir;
  const unset = { HOME: "", ORCHESJOB_FLOW_HOME: "", ORCHESJOB_HOME: "", XDG_DATA_HOME: "", DENO_DIR: denoDir };
  for (const args of [["start", "--run-key", "k", file], ["status", "--run-key", "k"]]) {
    const result = await cli(["--poll-interval", "0.1", ...args], { env: unset, cwd: env.home });
    assert.equal(result.code, 2, result.stderr);
    assert.match(errorLine(result).error, /no state location: HOME is not set; choose one with --db PATH/);
  }
  assert.deepEqual([...Deno.readDirSync(env.home)].map((e) => e.name).sort(), ["flow.yaml", "orchesjob-wrapper"]);
});

flowTest(builtin, "read-only commands create no directory or database, and name the file searched", async (env) => {
  const home = join(env.home, "never-created");
  for (const args of [["status"], ["status", "--format", "table"], ["watch", "--interval", "0.1"]]) {
    const result = await env.run([...args, "--run-key", "k"], { ORCHESJOB_FLOW_HOME: home });
    assert.equal(result.code, 3, result.stderr);
    assert.equal(errorLine(result).error, `run not found: k (state file ${join(home, "orchesjob-flow.sqlite3")})`);
    assert.equal(existsSync(home), false, `${args.join(" ")} created ${home}`);
  }
});
