/** The run commands' edges through the real CLI: bindings, paths, errors, interrupts, tables. */
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  catchesSignal,
  CLI,
  cli,
  collectText,
  errorLine,
  eventually,
  hasOpen,
  processAlive,
  withoutOrchesjob,
} from "../helpers.ts";
import { FlowEnv, flowTest, statuses, step } from "./flow_env.ts";
import { countLines, waitForFile } from "./fault_helpers.ts";
import { driverHolder } from "../../src/store/mod.ts";

const builtin = ["builtin"] as const;
const both = ["builtin", "external"] as const;

const TWO_STEPS = `flow_id: two
steps:
  - {id: a, command: ["true"]}
  - {id: b, when: a, command: ["true"]}
`;

flowTest(
  builtin,
  "a run is bound to its definition: a changed file is refused on resume, naming both hashes",
  async (env) => {
    const file = env.flow("flow.yaml", TWO_STEPS);
    const first = await env.json(["start", "--run-key", "bound", file]);
    env.flow("flow.yaml", TWO_STEPS.replace('["true"]}\n  - {id: b', '["false"]}\n  - {id: b'));
    const refused = await env.run(["start", "--run-key", "bound", file]);
    assert.equal(refused.code, 2);
    const message = errorLine(refused).error;
    assert.match(
      message,
      /^start: run bound is bound to another definition: stored sha256:[0-9a-f]{64}, .* is sha256:[0-9a-f]{64}/,
    );
    assert.ok(message.includes(first.definition_hash));
    // Formatting or comments alone do not change the definition.
    env.flow("flow.yaml", "# same flow, new comment\n" + TWO_STEPS.replaceAll(", ", ",  "));
    assert.equal((await env.run(["start", "--run-key", "bound", file])).code, 0);
    assert.deepEqual(await env.status("bound"), { ...first, driver: null });
  },
);

flowTest(
  builtin,
  "the state file is found by --db, ORCHESJOB_FLOW_HOME, ORCHESJOB_HOME, XDG_DATA_HOME, then ~/.local/share",
  async (env) => {
    const file = env.flow("flow.yaml", TWO_STEPS);
    const cases: [string[], Record<string, string>, string][] = [
      [
        ["--db", join(env.home, "explicit", "my.sqlite3")],
        { ORCHESJOB_FLOW_HOME: join(env.home, "ignored") },
        join(env.home, "explicit", "my.sqlite3"),
      ],
      [
        [],
        { ORCHESJOB_FLOW_HOME: join(env.home, "flowhome"), ORCHESJOB_HOME: join(env.home, "ignored") },
        join(env.home, "flowhome", "orchesjob-flow.sqlite3"),
      ],
      [
        [],
        { ORCHESJOB_FLOW_HOME: "", ORCHESJOB_HOME: join(env.home, "jobhome") },
        join(env.home, "jobhome", "orchesjob-flow.sqlite3"),
      ],
      [
        [],
        {
          ORCHESJOB_FLOW_HOME: "",
          ORCHESJOB_HOME: "",
          XDG_DATA_HOME: join(env.home, "xdg"),
          HOME: join(env.home, "user"),
        },
        join(env.home, "xdg", "orchesjob-flow", "orchesjob-flow.sqlite3"),
      ],
      [
        [],
        { ORCHESJOB_FLOW_HOME: "", ORCHESJOB_HOME: "", XDG_DATA_HOME: "", HOME: join(env.home, "user") },
        join(env.home, "user", ".local", "share", "orchesjob-flow", "orchesjob-flow.sqlite3"),
      ],
    ];
    for (const [globals, vars, expected] of cases) {
      const result = await cli([...globals, "--poll-interval", "0.1", "start", "--run-key", "where", file], {
        env: vars,
      });
      assert.equal(result.code, 0, result.stderr);
      const info = Deno.statSync(expected);
      assert.ok(info.isFile, expected);
      assert.equal((Deno.statSync(join(expected, "..")).mode ?? 0) & 0o777, 0o700, `directory of ${expected}`);
      const again = await cli([...globals, "status", "--run-key", "where"], { env: vars });
      assert.equal(JSON.parse(again.stdout).status, "SUCCEEDED");
    }
  },
);

flowTest(builtin, "an unknown run key is exit 3 with a JSON error, for every run command", async (env) => {
  for (const args of [["status"], ["watch"], ["cancel"], ["tick"], ["status", "--format", "table"]]) {
    const result = await env.run([...args, "--run-key", "nope"]);
    assert.equal(result.code, 3, args.join(" "));
    assert.equal(
      errorLine(result).error,
      `${args[0]}: run not found: nope (state file ${join(env.home, "orchesjob-flow.sqlite3")})`,
    );
  }
});

flowTest(builtin, "bad input to run commands is exit 2 with one JSON line, and loses no state", async (env) => {
  const file = env.flow("flow.yaml", TWO_STEPS);
  await env.json(["start", "--run-key", "keep", file]);
  const before = await env.status("keep");
  const bad = env.flow("bad.yaml", "flow_id: x\nsteps:\n  - {id: a, command: [a], when: b}\n");
  const cases: [string[], RegExp][] = [
    [["start", file], /--run-key is required/],
    [["start", "--run-key", "keep"], /start: missing FLOW_FILE/],
    [["start", "--run-key", "", file], /invalid run key ""/],
    [["start", "--run-key", "keep", bad], /bad\.yaml:3:\d+: step "a": when refers to unknown step "b"/],
    [["start", "--run-key", "keep", join(env.home, "missing.yaml")], /cannot read flow file/],
    [["status", "--run-key", "keep", "--format", "xml"], /--format must be one of json, table/],
    [["watch", "--run-key", "keep", "--mode", "tv"], /--mode must be one of screen, append/],
    [["watch", "--run-key", "keep", "--interval", "0"], /--interval must be at least 0.01, got "0"/],
    [["cancel", "--run-key", "keep", "--grace-seconds", "-1"], /--grace-seconds must be 0 or at least 0.01, got "-1"/],
    [["--executor", "orchesjob", "start", "--run-key", "other", file], /no orchesjob found/],
  ];
  for (const [args, pattern] of cases) {
    const result = await env.run(args, { PATH: withoutOrchesjob("/usr/bin:/bin") });
    assert.equal(result.code, 2, `${args.join(" ")}: ${result.stderr}`);
    assert.match(errorLine(result).error, pattern, args.join(" "));
  }
  assert.deepEqual(await env.status("keep"), before);
  assert.equal((await env.run(["status", "--run-key", "other"])).code, 3, "a refused start creates nothing");
});

flowTest(builtin, "a missing orchesjob binary refuses the first start (exit 2) and stores no run", async (env) => {
  const file = env.flow("flow.yaml", TWO_STEPS);
  const result = await env.run([
    "--orchesjob-bin",
    join(env.home, "no-such-orchesjob"),
    "start",
    "--run-key",
    "m",
    file,
  ]);
  assert.equal(result.code, 2);
  assert.match(errorLine(result).error, /^start: orchesjob is not usable: .*no-such-orchesjob: no such file/);
  assert.equal((await env.run(["status", "--run-key", "m"])).code, 3);
});

// SIGQUIT is Ctrl-\ at a terminal: it stops a run as Ctrl-C does (by default it killed the process unexplained).
for (const signal of ["SIGINT", "SIGTERM", "SIGQUIT"] as const) {
  flowTest(both, `${signal} stops a foreground start with exit 130; start again resumes and finishes`, async (env) => {
    const log = join(env.home, "ran");
    const go = join(env.home, "go");
    // a runs until the test creates `go`, so the signal always lands while a runs (a fixed-length
    // step could end, and the run with it, before a loaded machine delivers the signal).
    const file = env.flow(
      "flow.yaml",
      `flow_id: interrupted
steps:
  - {id: a, command: ${JSON.stringify(`echo a >> '${log}'; while [ ! -f '${go}' ]; do sleep 0.05; done`)}}
  - {id: b, when: a, command: ${JSON.stringify(`echo b >> '${log}'`)}}
`,
    );
    const child = env.spawn(["start", "--run-key", "int", file]);
    await env.waitFor("int", "a RUNNING", (run) => step(run, "a").orchesjob_status?.status === "RUNNING");
    assert.deepEqual(countLines(log), { a: 1 }, "a's command really runs");
    child.kill(signal);
    const output = await child.output();
    const stderr = new TextDecoder().decode(output.stderr);
    assert.deepEqual([output.signal, output.code], [null, 130], stderr);
    assert.equal(stderr, "", "no error, no stack trace");
    const stopped = JSON.parse(new TextDecoder().decode(output.stdout)); // the run's state, one JSON document
    assert.equal(stopped.status, "RUNNING", "the run is left resumable");
    assert.deepEqual(statuses(stopped), { a: "RUNNING", b: "PENDING" });
    Deno.writeTextFileSync(go, "");
    const resumed = await env.json(["start", "--run-key", "int", file]);
    assert.deepEqual(statuses(resumed), { a: "SUCCEEDED", b: "SUCCEEDED" });
    assert.equal(Deno.readTextFileSync(log), "a\nb\n");
  });
}

for (const [signal, number] of [["SIGINT", 2], ["SIGTERM", 15], ["SIGHUP", 1], ["SIGQUIT", 3]] as const) {
  flowTest(
    builtin,
    `${signal} while start waits for its flow on stdin: one JSON line, exit 130, nothing stored`,
    async (env) => {
      const child = new Deno.Command(CLI[0], {
        args: [...CLI.slice(1), ...env.globals(), "start", "--run-key", "in", "-"],
        env: env.env(),
        stdin: "piped",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      // The signal lands while the flow is being read: the read listens for it (nothing is written).
      await eventually("start listens while it reads stdin", () => catchesSignal(child.pid, number));
      child.kill(signal);
      const output = await child.output();
      assert.equal(output.code, 130);
      assert.deepEqual(JSON.parse(new TextDecoder().decode(output.stderr)), {
        error: "start: interrupted while reading <stdin>; nothing was stored",
      });
      assert.equal((await env.run(["status", "--run-key", "in"])).code, 3, "no run was stored");
    },
  );
}

flowTest(both, "a second foreground start waits for the driving one and exits with the run's code", async (env) => {
  const go = join(env.home, "go");
  const file = env.flow(
    "flow.yaml",
    `flow_id: wait\nsteps:\n  - {id: a, command: ${
      JSON.stringify(`while [ ! -f '${go}' ]; do sleep 0.05; done; exit 1`)
    }}\n`,
  );
  await env.json(["start", "-d", "--run-key", "wt", file]);
  await env.waitFor("wt", "a RUNNING", (run) => step(run, "a").status === "RUNNING");
  const second = env.spawn(["start", "--run-key", "wt", file]);
  let exited = false;
  const output = second.output().finally(() => (exited = true));
  // The run cannot end before `go` exists: a second start that has read the run and has not exited
  // by now is waiting for it.
  const db = Deno.realPathSync(join(env.home, "orchesjob-flow.sqlite3"));
  await eventually("the second start has opened the state file", () => exited || hasOpen(second.pid, db), 60);
  await env.waitFor("wt", "a still held", (run) => step(run, "a").status === "RUNNING");
  assert.equal(exited, false, "the second start returned while the run was still RUNNING");
  Deno.writeTextFileSync(go, "");
  const waited = await output;
  const stderr = new TextDecoder().decode(waited.stderr);
  assert.equal(waited.code, 1, stderr);
  assert.equal(JSON.parse(new TextDecoder().decode(waited.stdout)).status, "FAILED");
  // A finished run: start prints it and exits with its code; cancel leaves it as it is.
  assert.equal((await env.run(["start", "--run-key", "wt", file])).code, 1);
  const cancel = await env.json(["cancel", "--run-key", "wt"]);
  assert.equal(cancel.status, "FAILED");
});

flowTest(both, "status --format table shows the header, counts and a row per step", async (env) => {
  const file = env.flow(
    "flow.yaml",
    `flow_id: table
steps:
  - {id: download, command: ["true"]}
  - {id: validate, when: download, retries: 1, command: "exit 4"}
  - {id: notify, when: "!validate", command: ["true"]}
  - {id: never, when: validate, command: ["true"]}
`,
  );
  await env.run(["start", "--run-key", "tbl", file]);
  const table = (await env.run(["status", "--run-key", "tbl", "--format", "table"])).stdout;
  const lines = table.split("\n");
  assert.equal(lines[0], "Flow: table  Run: tbl");
  assert.equal(lines[1], "Status: X FAILED  Steps: 4/4 done, 0 running, 1 failed");
  assert.match(
    lines[2],
    /^Started: \d{4}-\d\d-\d\d \d\d:\d\d:\d\d {2}Finished: \d{4}-\d\d-\d\d \d\d:\d\d:\d\d {2}Elapsed: \d\d:\d\d:\d\d {2}Times: (UTC[+-]\d\d:\d\d|\S+ \(UTC[+-]\d\d:\d\d\))$/,
  );
  assert.equal(lines[3], "");
  assert.match(lines[4], /^Step +Status +Attempt +Elapsed +orchesjob +Run key +Error$/);
  assert.match(lines[5], /^-+ {2}-+ {2}-+ {2}-+ {2}-+ {2}-+ {2}-+$/);
  assert.match(lines[6], /^download +OK SUCCEEDED +1\/1 +\d\d:\d\d:\d\d +SUCCEEDED +tbl:download:1$/);
  assert.match(
    lines[7],
    /^validate +X FAILED +2\/2 +\d\d:\d\d:\d\d +FAILED +tbl:validate:2 +orchesjob status FAILED \(exit code 4\)$/,
  );
  assert.match(lines[8], /^notify +OK SUCCEEDED +1\/1 /);
  assert.match(lines[9], /^never +- SKIPPED +0\/1 +- +- +-$/, "a step that never started has no run key");
  assert.ok(!table.includes("\x1b["), "no colour when stdout is not a terminal");
});

flowTest(builtin, "a run key is made safe for log file names: no path traversal", async (env) => {
  const file = env.flow("flow.yaml", TWO_STEPS);
  const detached = await env.json(["start", "-d", "--run-key", "../../etc/x y", file]);
  assert.equal(detached.stdout_log, join(env.home, "logs", "orchesjob-flow-%2e%2e%2f%2e%2e%2fetc%2fx%20y.stdout.log"));
  await eventually("the run to finish", async () => (await env.status("../../etc/x y")).status === "SUCCEEDED");
  assert.ok(Deno.statSync(detached.stdout_log).isFile);
});

flowTest(
  both,
  "watch --advance drives a run that nobody drives; into a pipe it appends, with no screen codes",
  async (env) => {
    const file = env.flow("flow.yaml", TWO_STEPS);
    {
      // Create the run without a driver: while the lock is held, `start -d` launches none.
      using _lock = await env.holdDriverLock("adv");
      assert.equal((await env.json(["start", "-d", "--run-key", "adv", file])).status, "PENDING");
    }
    const watched = await env.run(["watch", "--run-key", "adv", "--advance", "--interval", "0.1"]);
    assert.equal(watched.code, 0, watched.stderr);
    assert.ok(!watched.stdout.includes("\x1b"), "no cursor, clear-screen or colour codes into a pipe");
    assert.match(watched.stdout, /Status: OK SUCCEEDED/);
    assert.deepEqual(statuses(await env.status("adv")), { a: "SUCCEEDED", b: "SUCCEEDED" });
  },
);

flowTest(builtin, "a state file that cannot be used is a clear exit-2 error, not a crash", async (env) => {
  const notDb = env.flow(
    "not-a-db.sqlite3",
    "this is not SQLite, just text that is long enough to be read as a header\n".repeat(20),
  );
  const result = await env.run(["--db", notDb, "status", "--run-key", "x"]);
  assert.equal(result.code, 2);
  assert.match(errorLine(result).error, /^status: cannot open state database .*not-a-db\.sqlite3: /);
  const dirAsDb = await env.run(["--db", env.home, "status", "--run-key", "x"]);
  assert.equal(dirAsDb.code, 2);
  assert.match(errorLine(dirAsDb).error, /^status: cannot open state database /);
  // A database written by a newer orchesjob-flow is refused rather than misread.
  const newer = join(env.home, "newer.sqlite3");
  // A run's `start` creates the state file (`status`, `tick` and the like find no run in a missing one).
  await env.json(["--db", newer, "start", "--run-key", "x", "-q", env.flow("two.yaml", TWO_STEPS)]);
  const sqlite = new (await import("node:sqlite")).DatabaseSync(newer);
  sqlite.exec("UPDATE schema_meta SET value = '999' WHERE key = 'schema_version'");
  sqlite.close();
  // Each names the file, whether it opens it read-only or for writing.
  const readOnly = ["status", "--run-key", "x"];
  for (const args of [readOnly, ["retry", "--run-key", "x", "--step", "a"], ["clean", "--older-than", "0"]]) {
    const refused = await env.run(["--db", newer, ...args]);
    assert.equal(refused.code, 2, refused.stderr);
    const { error } = errorLine(refused);
    assert.ok(error.startsWith(`${args[0]}: state database schema version 999 is newer than this`), error);
    assert.ok(error.endsWith(`understands (${error.match(/\((\d+)\)/)![1]}): ${newer}`), error);
  }
});

flowTest(both, "a waiting foreground start takes over when the other driver goes away unfinished", async (env) => {
  const file = env.flow("flow.yaml", TWO_STEPS);
  const lock = await env.holdDriverLock("take");
  const waiting = env.spawn(["start", "--run-key", "take", file]);
  await env.waitFor("take", "the run to exist", (run) => run.status === "PENDING");
  lock[Symbol.dispose]();
  const output = await waiting.output();
  assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
  assert.deepEqual(statuses(await env.status("take")), { a: "SUCCEEDED", b: "SUCCEEDED" });
});

const setsid = ["/usr/bin/setsid", "/bin/setsid"].find((path) => {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
});

Deno.test({
  name: "[builtin] start -d survives the end of the session that started it (as when an SSH session closes)",
  ignore: setsid === undefined,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    using env = new FlowEnv("builtin");
    const go = join(env.home, "go");
    // a runs until the test creates `go` (after the session is gone), so the kill lands while it runs.
    const file = env.flow(
      "flow.yaml",
      `flow_id: s\nsteps:\n  - {id: a, command: ${
        JSON.stringify(`while [ ! -f '${go}' ]; do sleep 0.05; done`)
      }}\n  - {id: b, when: a, command: ["true"]}\n`,
    );
    // A login-like session: its own session and process group, which is then hung up and killed whole.
    const quoted = [...CLI, ...env.globals(), "start", "-d", "--run-key", "ssh", file].map((a) => `'${a}'`).join(" ");
    const session = new Deno.Command(setsid!, {
      args: ["/bin/sh", "-c", `${quoted} > /dev/null; sleep 60`],
      cwd: env.home,
      env: env.env(),
      stdout: "null",
      stderr: "null",
    }).spawn();
    await env.waitFor("ssh", "a RUNNING", (run) => step(run, "a").status === "RUNNING");
    Deno.kill(-session.pid, "SIGHUP");
    Deno.kill(-session.pid, "SIGKILL");
    await session.status;
    Deno.writeTextFileSync(go, "");
    const run = await env.waitFor("ssh", "the run to finish", (r) => r.status !== "RUNNING");
    assert.equal(run.status, "SUCCEEDED");
    assert.deepEqual(statuses(run), { a: "SUCCEEDED", b: "SUCCEEDED" }, "b was started after the session ended");
  },
});

flowTest(
  builtin,
  "a Ctrl-C during cancel's grace waits for the SIGKILL: no job that ignores SIGTERM is left",
  async (env) => {
    const file = env.flow(
      "stubborn.yaml",
      `flow_id: stubborn\nsteps:\n  - {id: a, command: "trap '' TERM; sleep 100"}\n`,
    );
    assert.equal((await env.json(["start", "--run-key", "s", "-d", file])).detached, true);
    const run = await env.waitFor("s", "a runs", (run) => step(run, "a").orchesjob_status?.target_pid > 0);
    const pid: number = step(run, "a").orchesjob_status.target_pid;
    const cancel = env.spawn(["cancel", "--run-key", "s", "--grace-seconds", "6"]);
    await env.waitFor("s", "the cancel is committed", (run) => run.status === "CANCELLED");
    assert.ok(processAlive(pid), "the command ignores SIGTERM: it lives through the grace");
    cancel.kill("SIGINT");
    const output = await cancel.output();
    const stderr = new TextDecoder().decode(output.stderr);
    assert.equal(output.code, 0, stderr);
    assert.match(JSON.parse(stderr.trim()).warning, /^cancel: interrupted; finishing the aborts first/);
    assert.ok(!processAlive(pid), "SIGKILLed at the end of the grace");
    assert.equal(step(await env.status("s"), "a").status, "CANCELLED");
  },
);

flowTest(
  builtin,
  "cancel waiting for the start gate says so, and a Ctrl-C then stops it with the run unchanged",
  async (env) => {
    const file = env.flow("slow.yaml", `flow_id: slow\nsteps:\n  - {id: a, command: "sleep 60"}\n`);
    assert.equal((await env.json(["start", "--run-key", "g", "-d", file])).detached, true);
    await env.waitFor("g", "a runs", (run) => step(run, "a").status === "RUNNING");
    // This process holds the start gate, as a driver in the middle of starting jobs (or a stopped one) does.
    using gate = Deno.openSync(join(env.home, "locks", "g.gate.lock"), { read: true, write: true });
    gate.lockSync(true);
    const cancel = env.spawn(["cancel", "--run-key", "g"]);
    const collected = collectText(cancel.stderr);
    await eventually(
      "cancel says it waits for the gate",
      () => collected.text.includes("waiting for the run's start gate"),
    );
    cancel.kill("SIGINT");
    const stderr = await collected.done;
    assert.equal((await cancel.status).code, 130, stderr);
    const lines = stderr.trim().split("\n").map((line) => JSON.parse(line));
    assert.match(lines[0].warning, /^cancel: waiting for the run's start gate/);
    assert.equal(lines[1].error, "cancel: interrupted before the cancel was committed; run g is unchanged");
    gate.unlockSync();
    assert.equal((await env.status("g")).status, "RUNNING");
    await env.json(["cancel", "--run-key", "g", "--grace-seconds", "0"]);
  },
);

flowTest(
  builtin,
  "cancel of a run whose last job finished while nobody drove it cancels nothing: the run ends as its steps say",
  async (env) => {
    const go = join(env.home, "go");
    const file = env.flow(
      "f.yaml",
      `flow_id: f\nsteps:\n  - {id: ok, command: ["true"]}\n  - id: last\n    when: ok\n    command: ${
        JSON.stringify(waitForFile(go))
      }\n`,
    );
    const driver = env.spawn(["start", "-q", "--run-key", "k", file]);
    await env.waitFor("k", "last runs", (run) => step(run, "last").orchesjob_status?.status === "RUNNING");
    driver.kill("SIGKILL");
    await driver.output();
    Deno.writeTextFileSync(go, "");
    await eventually("the job finished", async () => (await env.jobs("k:last:1"))[0].status === "SUCCEEDED");
    assert.equal(step(await env.status("k"), "last").status, "RUNNING", "the state still says RUNNING");

    const cancelled = await env.json(["cancel", "--run-key", "k"]);
    assert.equal(cancelled.status, "SUCCEEDED", JSON.stringify(cancelled));
    assert.deepEqual(statuses(cancelled), { ok: "SUCCEEDED", last: "SUCCEEDED" });
    assert.equal(cancelled.error, null);
    assert.ok(cancelled.finished_at >= step(cancelled, "last").finished_at);
    assert.equal((await env.run(["wait", "--run-key", "k"])).code, 0, "wait says SUCCEEDED");
  },
);

flowTest(builtin, "steps that time out together are aborted side by side, not one grace after another", async (env) => {
  // Each ignores SIGTERM, so each abort lasts its whole 5 s grace before the SIGKILL.
  const stubborn = JSON.stringify("trap '' TERM; while :; do sleep 0.1; done");
  const file = env.flow(
    "stubborn.yaml",
    `flow_id: stubborn\nsteps:\n${
      ["a", "b", "c"].map((id) => `  - {id: ${id}, timeout_sec: 1, command: ${stubborn}}\n`).join("")
    }`,
  );
  const began = performance.now();
  const run = await env.json(["start", "-q", "--run-key", "t", file], 1);
  assert.ok((performance.now() - began) / 1000 >= 1 + 5, "the aborts waited out their grace");
  const steps = ["a", "b", "c"].map((id) => step(run, id));
  assert.deepEqual(steps.map((s) => [s.orchesjob_status.status, s.error]), [
    ["ABORTED", "timed out after 1 s"],
    ["ABORTED", "timed out after 1 s"],
    ["ABORTED", "timed out after 1 s"],
  ]);
  // Each attempt ends when its abort is recorded. One abort after another, the third would be
  // recorded two whole graces (10 s) after the first.
  const ends: number[] = steps.map((s) => s.finished_at);
  assert.ok(Math.max(...ends) - Math.min(...ends) < 5, `the attempts ended at ${ends.join(", ")}`);
});

flowTest(builtin, "a timeout's grace does not hold back the other steps: they start and end meanwhile", async (env) => {
  // `slow` ignores SIGTERM, so its abort lasts the whole 5 s grace; it touches `beat` while it lives.
  // `b` ends during that grace, and `c` (after b) must start then, not once the grace is over.
  const beat = join(env.home, "beat");
  const stubborn = JSON.stringify(`trap '' TERM; while :; do touch '${beat}'; sleep 0.1; done`);
  const file = env.flow(
    "grace.yaml",
    `flow_id: grace
steps:
  - {id: slow, timeout_sec: 1, command: ${stubborn}}
  - {id: b, command: "sleep 2"}
  - {id: c, depends_on: [b], command: "true"}
`,
  );
  const run = await env.json(["start", "-q", "--run-key", "g", file], 1);
  const slow = step(run, "slow");
  assert.deepEqual([slow.orchesjob_status.status, slow.error], ["ABORTED", "timed out after 1 s"]);
  assert.equal(step(run, "c").status, "SUCCEEDED");
  // The situation happened: slow lived through its grace (SIGTERM at ~1 s, SIGKILL at ~6 s).
  const died = Deno.statSync(beat).mtime!.getTime() / 1000;
  assert.ok(died - slow.started_at >= 1 + 4, `slow lived ${died - slow.started_at} s`);
  // c started (b ended at ~2 s) and ended well before slow's grace was over.
  const c = step(run, "c");
  assert.ok(c.finished_at < died - 2, `c ran ${c.started_at}-${c.finished_at}, slow died at ${died}`);
});

/** The PID of a process whose command line holds every one of `words`, or null. */
function processWith(words: string[]): number | null {
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const args = Deno.readTextFileSync(`/proc/${entry.name}/cmdline`).split("\0");
      if (words.every((word) => args.includes(word))) return Number(entry.name);
    } catch { /* gone */ }
  }
  return null;
}

/** The wait of `start -d` for its background driver, 15 s, shortened for a test (the variable is test-only). */
const SHORT_LAUNCH_WAIT = { ORCHESJOB_FLOW_TEST_LAUNCH_WAIT_SECONDS: "2" };

flowTest(
  builtin,
  "start -d whose driver neither takes the run nor exits within the wait says so and exits 75; the run stays resumable",
  async (env) => {
    const file = env.flow("slow.yaml", `flow_id: slow\nsteps:\n  - {id: a, command: "sleep 30"}\n`);
    const starter = env.spawn(["start", "-d", "--run-key", "stuck", file], SHORT_LAUNCH_WAIT);
    // The background driver, stopped as soon as it exists: it can neither take the run nor exit.
    let driver: number | null = null;
    await eventually("the background driver was launched", () => (driver = processWith(["_drive", "stuck"])) !== null);
    Deno.kill(driver!, "SIGSTOP");
    const output = await starter.output();
    const stdout = JSON.parse(new TextDecoder().decode(output.stdout));
    const db = join(env.home, "orchesjob-flow.sqlite3");
    // The situation under test: the driver never held the run while start -d waited.
    assert.equal(await driverHolder(db, "stuck"), null, "the stopped driver took the run");
    assert.equal(output.code, 75, new TextDecoder().decode(output.stderr));
    assert.equal(stdout.detached, false);
    assert.equal(stdout.status, "PENDING");
    assert.match(
      stdout.error,
      new RegExp(`background driver \\(pid ${driver}\\) neither took the run nor exited within 2 s`),
    );
    // Let go, the driver takes the run and drives it: nothing was lost.
    Deno.kill(driver!, "SIGCONT");
    await env.waitFor("stuck", "a runs", (run) => step(run, "a").status === "RUNNING");
    await env.json(["cancel", "--run-key", "stuck", "--grace-seconds", "0"]);
  },
);

flowTest(
  builtin,
  "start -d stopped past its 15 s wait for the driver still reports the driver that took the run",
  async (env) => {
    const file = env.flow("slow.yaml", `flow_id: slow\nsteps:\n  - {id: a, command: "sleep 30"}\n`);
    // The 15 s wait, shortened to 2 s (test-only), which the stop below outlasts.
    const starter = env.spawn(["start", "-d", "--run-key", "late", file], SHORT_LAUNCH_WAIT);
    // As soon as the background driver exists, `start -d` is in its wait for it: it sets the wait's
    // deadline in the same synchronous stretch of code that spawned the driver, before anything this
    // test can see. Stopped there (a SIGSTOP, a paused VM), it resumes after its deadline, while the
    // driver took the run meanwhile.
    await eventually("the background driver was launched", () => processWith(["_drive", "late"]) !== null);
    Deno.kill(starter.pid, "SIGSTOP");
    // The situation under test: stopped before the driver held the run, `start -d` cannot have seen it.
    assert.equal(await driverHolder(join(env.home, "orchesjob-flow.sqlite3"), "late"), null, "stopped too late");
    await env.waitFor("late", "a runs", (run) => step(run, "a").status === "RUNNING");
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    Deno.kill(starter.pid, "SIGCONT");
    const output = await starter.output();
    const stderr = new TextDecoder().decode(output.stderr);
    assert.equal(output.code, 0, stderr);
    assert.equal(JSON.parse(new TextDecoder().decode(output.stdout)).detached, true);
    await env.json(["cancel", "--run-key", "late", "--grace-seconds", "0"]);
  },
);
