/**
 * End-to-end behaviour of the flow-authoring fields through the real CLI: env, cwd, params,
 * max_parallel, backoff, retry_on_exit_codes, deferred start. Registered once per executor.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { CLI, type CliResult, eventually, processAlive, REPO } from "../helpers.ts";
import { pathExists } from "../../src/shared/mod.ts";
import { type ExecutorMode, type FlowEnv, flowTest, type Json, statuses, step } from "./flow_env.ts";

/** Runs the CLI in `cwd` (the e2e helpers always use the repository root). */
function spawnIn(env: FlowEnv, cwd: string, args: string[]): Deno.ChildProcess {
  return new Deno.Command(CLI[0], {
    args: [...CLI.slice(1), ...env.globals(), ...args],
    cwd,
    env: env.env(),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

async function runIn(env: FlowEnv, cwd: string, args: string[]): Promise<CliResult> {
  const output = await spawnIn(env, cwd, args).output();
  const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  return { code: output.code, stdout: decode(output.stdout), stderr: decode(output.stderr) };
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

export function registerAuthoringSuite(mode: ExecutorMode): void {
  const modes = [mode];

  flowTest(modes, "env, cwd and parameters reach steps, also after a resume from another directory", async (env) => {
    const project = join(env.home, "project");
    const elsewhere = join(env.home, "elsewhere");
    Deno.mkdirSync(join(project, "flows"), { recursive: true });
    Deno.mkdirSync(join(project, "data"));
    Deno.mkdirSync(elsewhere);
    const report = 'printf "%s|%s|%s|%s|%s|%s|%s|%s\\n" "$(pwd)" "$A" "$B" "$ORCHESJOB_FLOW_RUN_KEY" ' +
      '"$ORCHESJOB_FLOW_ID" "$ORCHESJOB_FLOW_STEP_ID" "$ORCHESJOB_FLOW_ATTEMPT" "$ORCHESJOB_FLOW_PARAM_DAY"';
    Deno.writeTextFileSync(
      join(project, "flows", "env.yaml"),
      `flow_id: envflow
params:
  DAY: null
  TAG: t0
env: {A: flow-a, B: flow-b}
cwd: ../data
steps:
  - id: first
    env: {B: "first-b-\${params.TAG}"}
    command: ${JSON.stringify(`${report} > first.txt`)}
  - id: gate
    depends_on: [first]
    command: "while [ ! -f go ]; do sleep 0.05; done"
  - id: after
    depends_on: [gate]
    cwd: ${JSON.stringify(project)}
    command: ["sh", "-c", ${JSON.stringify(`${report} > after.txt`)}, "\${params.DAY}"]
`,
    );
    // Started from the project root with a relative path, then killed while `gate` waits.
    const driver = spawnIn(env, project, ["start", "--run-key", "e1", "--param", "DAY=mon", "flows/env.yaml"]);
    await env.waitFor("e1", "gate running", (run) => step(run, "gate").status === "RUNNING");
    driver.kill("SIGKILL");
    await driver.output();
    Deno.writeTextFileSync(join(project, "data", "go"), "");
    // Resumed from another directory, by another relative path, without repeating --param.
    const resumed = await runIn(env, elsewhere, ["start", "--run-key", "e1", "../project/flows/env.yaml"]);
    assert.equal(resumed.code, 0, resumed.stderr);
    const run = JSON.parse(resumed.stdout);
    assert.equal(run.status, "SUCCEEDED");
    assert.deepEqual(run.params, { DAY: "mon", TAG: "t0" });
    const first = Deno.readTextFileSync(join(project, "data", "first.txt")).trim();
    assert.equal(first, `${join(project, "data")}|flow-a|first-b-t0|e1|envflow|first|1|mon`);
    const after = Deno.readTextFileSync(join(project, "after.txt")).trim();
    assert.equal(after, `${project}|flow-a|flow-b|e1|envflow|after|1|mon`);
    if (mode === "external") {
      // The external orchesjob records the wrapper that carries env and cwd.
      const command: string[] = step(run, "after").orchesjob_status.command;
      assert.equal(command[0], "/usr/bin/env");
      assert.ok(command.includes("ORCHESJOB_FLOW_STEP_ID=after"), command.join(" "));
    }
  });

  flowTest(
    modes,
    "a cwd that does not exist fails the attempt with the reason; the command never runs",
    async (env) => {
      const ran = join(env.home, "ran");
      const file = env.flow(
        "nocwd.yaml",
        `flow_id: nocwd\nsteps:\n  - id: s\n    cwd: missing/dir\n    command: ${JSON.stringify(`touch '${ran}'`)}\n`,
      );
      const run = await env.json(["start", "--run-key", "nc", file], 1);
      const s = step(run, "s");
      assert.equal(s.status, "FAILED");
      assert.equal(exists(ran), false, "the command did not run somewhere else");
      const stderr = await env.run(["job", "logs", "--run-key", "nc:s:1", "--stream", "stderr"]);
      assert.match(stderr.stdout, /change directory to '?[^ ]*missing\/dir/);
    },
  );

  flowTest(modes, "a PATH in a step's env finds the step's program and does not break the runner", async (env) => {
    const bin = join(env.home, "tools");
    Deno.mkdirSync(bin);
    Deno.writeTextFileSync(join(bin, "hello-tool"), '#!/bin/sh\necho "hello from $0" > "$1"\n');
    Deno.chmodSync(join(bin, "hello-tool"), 0o755);
    const out = join(env.home, "out.txt");
    // Only the tools directory: no /bin, so nothing of the runner's own may depend on this PATH.
    const file = env.flow(
      "path.yaml",
      `flow_id: path\nsteps:\n  - id: s\n    env: {PATH: ${JSON.stringify(bin)}}\n    command: [hello-tool, ${
        JSON.stringify(out)
      }]\n`,
    );
    const run = await env.json(["start", "--run-key", "pt", file]);
    assert.equal(step(run, "s").status, "SUCCEEDED", JSON.stringify(step(run, "s")));
    assert.match(Deno.readTextFileSync(out), /hello from .*hello-tool/);
  });

  flowTest(modes, "a parameter in a command; refused when missing or unknown, and nothing is stored", async (env) => {
    const file = env.flow(
      "params.yaml",
      `flow_id: p
params: {NAME: null, GREETING: hello}
steps:
  - id: greet
    command: ["sh", "-c", "echo \\"$1\\" > '${env.home}/greet.txt'", "-", "\${params.GREETING} \${params.NAME}"]
`,
    );
    // Refused before the state file is made: a mistyped --param on a new host leaves nothing behind.
    const stateFile = join(env.home, "orchesjob-flow.sqlite3");
    const missing = await env.run(["start", "--run-key", "p1", file]);
    assert.equal(missing.code, 2);
    assert.equal(pathExists(stateFile), false, "no state file was made for a missing parameter");
    assert.deepEqual(JSON.parse(missing.stderr), {
      error: 'start: missing required parameter "NAME": give --param NAME=VALUE',
    });
    const unknown = await env.run(["start", "--run-key", "p1", "--param", "NAME=x", "--param", "NAMES=y", file]);
    assert.equal(unknown.code, 2);
    assert.match(JSON.parse(unknown.stderr).error, /unknown parameter "NAMES"/);
    assert.equal(pathExists(stateFile), false, "no state file was made for an unknown parameter");
    assert.equal((await env.run(["status", "--run-key", "p1"])).code, 3, "no run was created");
    // With a state file there (another run made it), a missing parameter is still refused and stores nothing.
    assert.equal((await env.run(["start", "--run-key", "other", "--param", "NAME=x", file])).code, 0);
    assert.equal(pathExists(stateFile), true, "a state file is there");
    assert.equal((await env.run(["start", "--run-key", "p1", file])).code, 2);
    assert.equal((await env.run(["status", "--run-key", "p1"])).code, 3, "no run was created");

    const run = await env.json(["start", "--run-key", "p1", "--param", "NAME=edge host", file]);
    assert.equal(run.status, "SUCCEEDED");
    assert.equal(Deno.readTextFileSync(join(env.home, "greet.txt")), "hello edge host\n");
    // Other values mean another definition: the run is bound to the one it started with.
    const other = await env.run(["start", "--run-key", "p1", "--param", "NAME=x", file]);
    assert.equal(other.code, 2);
    assert.match(JSON.parse(other.stderr).error, /bound to another definition/);
  });

  flowTest(
    modes,
    "max_parallel: 2 is never exceeded in a fan-out of 10, and steps start in file order",
    async (env) => {
      const log = join(env.home, "marks");
      const ids = Array.from({ length: 10 }, (_, i) => `s${i}`);
      // The first two steps wait (up to 2 min, for a loaded machine) until both have started, so the limit is surely
      // reached; the others just take a moment.
      const barrier =
        `n=0; while [ "$(grep -c '^+' '${log}')" -lt 2 ] && [ $n -lt 2400 ]; do sleep 0.05; n=$((n+1)); done`;
      const steps = ids.map((id, i) =>
        `  - id: ${id}\n    depends_on: [root]\n    command: ${
          JSON.stringify(`echo "+ ${id}" >> '${log}'; ${i < 2 ? barrier : "sleep 0.1"}; echo "- ${id}" >> '${log}'`)
        }\n`
      ).join("");
      const file = env.flow(
        "fan.yaml",
        `flow_id: fan\nmax_parallel: 2\nsteps:\n  - {id: root, command: ["true"]}\n${steps}`,
      );
      const run = await env.json(["start", "--run-key", "fan", file]);
      assert.equal(run.status, "SUCCEEDED");
      // The steps' own marks: at no moment were more than two of them between "+" and "-".
      let running = 0;
      let most = 0;
      const lines = Deno.readTextFileSync(log).trim().split("\n");
      assert.equal(lines.length, 20);
      for (const line of lines) {
        running += line.startsWith("+") ? 1 : -1;
        most = Math.max(most, running);
      }
      assert.equal(most, 2, "two steps did run at once (the limit was reached, not just respected)");
      // The runner's own record, independent of how long the commands take: no instant had more than
      // two steps between started_at and finished_at.
      const edges = ids.flatMap((id) => [
        [step(run, id).started_at as number, 1],
        [step(run, id).finished_at as number, -1],
      ]).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
      let recorded = 0;
      for (const [, delta] of edges) {
        recorded += delta;
        assert.ok(recorded <= 2, "at most two steps RUNNING at once in the run's state");
      }
      const started = ids.map((id) => step(run, id).started_at as number);
      for (let i = 1; i < started.length; i++) assert.ok(started[i] >= started[i - 1], `file order at ${ids[i]}`);
    },
  );

  flowTest(
    modes,
    "exponential backoff: each drawn delay is within its jitter bounds, kept across a resume",
    async (env) => {
      const counter = join(env.home, "count");
      const file = env.flow(
        "backoff.yaml",
        `flow_id: backoff
steps:
  - id: flaky
    retries: 3
    retry_delay_sec: 0.6
    retry_backoff: exponential
    retry_max_delay_sec: 1
    retry_jitter: 0.5
    command: ${JSON.stringify(`echo x >> '${counter}'; [ $(wc -l < '${counter}') -ge 3 ]`)}
`,
      );
      // Create the run without a driver (the lock is held), then advance it one round per process
      // with `tick` until the first retry is DELAYED: no race with a running driver.
      {
        using _lock = await env.holdDriverLock("bo");
        assert.equal((await env.json(["start", "--run-key", "bo", "-d", file])).detached, false);
      }
      let delayed: Json = null;
      await eventually("the first retry is drawn", async () => {
        delayed = await env.json(["tick", "--run-key", "bo"]);
        return step(delayed, "flaky").retry_history.length === 1;
      }, 60);
      const firstRecord = step(delayed, "flaky").retry_history[0];
      // Another process advances it again (the retry may or may not be due yet): nothing is drawn again.
      const again = await env.json(["tick", "--run-key", "bo"]);
      assert.deepEqual(step(again, "flaky").retry_history[0], firstRecord);
      const run = await env.json(["start", "--run-key", "bo", file]);
      assert.equal(run.status, "SUCCEEDED");
      const flaky = step(run, "flaky");
      assert.equal(flaky.attempt_no, 3);
      const history = flaky.retry_history;
      assert.equal(history.length, 2);
      assert.deepEqual(history[0], firstRecord, "the resume did not draw the delay again");
      const bounds = [[0.3, 0.6], [0.5, 1]]; // 0.6·2^(n-1), capped at 1, less up to half
      history.forEach((record: Json, i: number) => {
        assert.equal(record.attempt_no, i + 1);
        assert.ok(record.delay_sec >= bounds[i][0] && record.delay_sec <= bounds[i][1], JSON.stringify(record));
        assert.ok(Math.abs(record.next_attempt_at - (record.failed_at + record.delay_sec)) < 0.002);
        const nextStart = i + 1 < history.length ? history[i + 1].started_at : flaky.started_at;
        assert.ok(nextStart >= record.next_attempt_at, `attempt ${i + 2} started no earlier than its time`);
      });
    },
  );

  flowTest(modes, "retry_on_exit_codes: another exit code stops the retries at once", async (env) => {
    const file = env.flow(
      "codes.yaml",
      `flow_id: codes
steps:
  - id: picky
    retries: 5
    retry_on_exit_codes: [75]
    command: '[ "$ORCHESJOB_FLOW_ATTEMPT" = 1 ] && exit 75; exit 3'
`,
    );
    const run = await env.json(["start", "--run-key", "rc", file], 1);
    const picky = step(run, "picky");
    assert.equal(picky.status, "FAILED");
    assert.equal(picky.attempt_no, 2, "exit 75 was retried, exit 3 was not");
    assert.equal(picky.orchesjob_status.exit_code, 3);
    assert.match(picky.error, /not retried: exit code not in retry_on_exit_codes/);
  });

  flowTest(modes, "status --format mermaid: the graph coloured by step status (golden file)", async (env) => {
    await env.json(["start", "--run-key", "gm", "examples/branching-hello-failure-flow.yaml"], 1);
    const result = await env.run(["status", "--run-key", "gm", "--format", "mermaid"]);
    assert.equal(result.code, 0, result.stderr);
    const golden = join(REPO, "tests", "fixtures", "graph", "branching-hello-failure-flow.status.mmd");
    assert.equal(result.stdout, Deno.readTextFileSync(golden));
  });

  flowTest(
    modes,
    "--not-before: SCHEDULED until the time, then runs; in the foreground (ISO) and detached (+DURATION)",
    async (env) => {
      const marks = join(env.home, "marks");
      const file = env.flow(
        "later.yaml",
        `flow_id: later\nsteps:\n  - id: s\n    command: ${JSON.stringify(`date +%s >> '${marks}'`)}\n`,
      );
      const bad = await env.run(["start", "--run-key", "nb0", "--not-before", "soon", file]);
      assert.equal(bad.code, 2);
      assert.match(JSON.parse(bad.stderr).error, /--not-before needs an ISO 8601 time/);
      assert.equal((await env.run(["status", "--run-key", "nb0"])).code, 3, "nothing was stored");

      // Detached, 2 s from now: SCHEDULED at once, with its time; the step starts no earlier.
      const detached = await env.json(["start", "--run-key", "nb1", "-d", "--not-before", "+2s", file]);
      assert.equal(detached.status, "SCHEDULED");
      assert.equal(detached.detached, true);
      const notBefore: number = detached.not_before;
      assert.ok(Math.abs(notBefore - (detached.started_at + 2)) < 0.5, JSON.stringify(detached));
      const done = await env.waitFor("nb1", "finished", (run) => run.status === "SUCCEEDED");
      assert.ok(step(done, "s").started_at >= notBefore, "the step started no earlier than asked");
      assert.ok(step(done, "s").orchesjob_status.started_at >= Math.floor(notBefore));
      assert.ok(Number(Deno.readTextFileSync(marks).trim()) >= Math.floor(notBefore), "the step's own mark");

      // Foreground, with an ISO 8601 time with offset 1.5 s ahead.
      const at = new Date(Date.now() + 1500);
      const iso = at.toISOString().replace("Z", "+00:00");
      const run = await env.json(["start", "--run-key", "nb2", "--not-before", iso, file]);
      assert.equal(run.status, "SUCCEEDED");
      assert.ok(Math.abs(run.not_before - at.getTime() / 1000) < 0.002);
      assert.ok(step(run, "s").started_at >= run.not_before);
    },
  );

  flowTest(modes, "--not-before: cancel while SCHEDULED; nothing ever starts and the driver exits", async (env) => {
    const file = env.flow("never.yaml", 'flow_id: never\nsteps:\n  - {id: s, command: ["true"]}\n');
    const detached = await env.json(["start", "--run-key", "nb3", "-d", "--not-before", "+1h", file]);
    assert.equal(detached.status, "SCHEDULED");
    const table = await env.run(["status", "--run-key", "nb3", "--format", "table"]);
    assert.match(table.stdout, /SCHEDULED .*Begins: \d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}/);
    const cancelled = await env.json(["cancel", "--run-key", "nb3"]);
    assert.equal(cancelled.status, "CANCELLED");
    assert.deepEqual(statuses(cancelled), { s: "CANCELLED" });
    await eventually("the detached driver exits", () => !processAlive(detached.pid), 30);
    assert.deepEqual(await env.jobs("nb3:s:1"), [], "no job was started");
    // A second start of the cancelled run reports it, with the cancelled exit code.
    const again = await env.run(["start", "--run-key", "nb3", file]);
    assert.equal(again.code, 4);
  });
}

export { eventually, exists, type Json, statuses };
