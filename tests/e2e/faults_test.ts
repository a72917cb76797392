/**
 * Faults outside the engine's control, each forced for real: a supervisor SIGKILLed under its
 * command, a step whose spawn fails, jobs cleaned under a live run, the state file replaced, a held
 * write lock, a full disk. Each asserts from marker files how often every step ran, and that no
 * process of the test's jobs remains.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { LOST_AFTER_START } from "../../src/engine/mod.ts";
import { eventually, processAlive } from "../helpers.ts";
import { FlowEnv, flowTest, statuses, step } from "./flow_env.ts";
import {
  assertNoJobProcesses,
  canMount,
  countLines,
  jobGroups,
  logged,
  smallFilesystem,
  waitForFile,
  waitForLines,
} from "./fault_helpers.ts";

const builtin = ["builtin"] as const;

flowTest(
  builtin,
  "a SIGKILLed supervisor: the job stays RUNNING while its command lives, then LOST, never rerun",
  async (env) => {
    const log = join(env.home, "ran");
    const go = join(env.home, "go");
    const file = env.flow(
      "sup.yaml",
      `flow_id: sup
steps:
  - {id: a, retries: 1, command: ${logged(log, "S", `${waitForFile(go)}; echo E >> '${log}'`)}}
`,
    );
    const driver = env.spawn(["start", "--run-key", "k", file]);
    await waitForLines(log, 1);
    // The situation under test: a supervisor killed once it recorded its command's PID. (The command
    // writes its line right after the fork, maybe before that record: a kill then leaves the job
    // STARTING, its command unknown, a case of its own.)
    await eventually("the job is RUNNING, its command's PID recorded", async () => {
      const [job] = await env.jobs("k:a:1");
      return job?.status === "RUNNING";
    });
    const [worker] = jobGroups(env.home);
    Deno.kill(worker, "SIGKILL");
    await eventually("the supervisor is dead", () => !processAlive(worker));
    // Reads after the death: the command still runs, so neither LOST nor a retry may be decided.
    for (let i = 0; i < 3; i++) {
      const run = await env.status("k");
      assert.equal(step(run, "a").status, "RUNNING");
      assert.equal(step(run, "a").attempt_no, 1);
      const [job] = await env.jobs("k:a:1");
      assert.equal(job.status, "RUNNING", "the job's process group is alive");
    }
    Deno.writeTextFileSync(go, "");
    const output = await driver.output();
    assert.equal(output.code, 1);
    const final = await env.status("k");
    assert.equal(step(final, "a").status, "FAILED");
    assert.equal(step(final, "a").error, LOST_AFTER_START);
    assert.deepEqual(Deno.readTextFileSync(log), "S\nE\n", "one run, never two at once");
    await assertNoJobProcesses(env.home);
  },
);

flowTest(
  builtin,
  "a spawn that fails at run time (environment too big) is a failed attempt, not a crash",
  async (env) => {
    const log = join(env.home, "ran");
    // The command passes validate, but with this environment no exec can carry it (E2BIG): the
    // driver itself starts (its own arguments are short), the job's supervisor cannot.
    const file = env.flow(
      "big.yaml",
      `flow_id: big
steps:
  - {id: a, retries: 1, command: [echo, ${"y".repeat(100_000)}]}
  - {id: b, when: a, command: ${logged(log, "b")}}
`,
    );
    const huge: Record<string, string> = {};
    for (let i = 0; i < 17; i++) huge[`OJF_TEST_FILLER_${i}`] = "z".repeat(120_000);
    const result = await env.run(["start", "--run-key", "k", file], huge);
    assert.equal(result.code, 1, result.stderr);
    const final = await env.status("k");
    assert.equal(final.status, "FAILED");
    assert.deepEqual(statuses(final), { a: "FAILED", b: "SKIPPED" });
    assert.equal(step(final, "a").attempt_no, 2, "the retry ran and failed the same way");
    assert.match(step(final, "a").error, /^start failed: .*(Argument list too long|E2BIG)/);
    assert.deepEqual(countLines(log), {});
  },
);

flowTest(
  builtin,
  "job clean keeps the jobs of an unfinished run; a job cleaned anyway is never started again",
  async (env) => {
    const log = join(env.home, "ran");
    const go = join(env.home, "go");
    const file = env.flow(
      "clean.yaml",
      `flow_id: clean
steps:
  - {id: a, command: ${logged(log, "a", waitForFile(go))}}
  - {id: b, when: a, command: ${logged(log, "b")}}
`,
    );
    const driver = env.spawn(["start", "--run-key", "k", file]);
    await env.waitFor("k", "a's job is recorded", (run) => step(run, "a").orchesjob_status !== null);
    driver.kill("SIGKILL");
    assert.equal((await driver.output()).signal, "SIGKILL");
    Deno.writeTextFileSync(go, "");
    await eventually("a's job ended", async () => (await env.jobs("k:a:1"))[0]?.status === "SUCCEEDED");

    const kept = await env.json(["job", "clean", "--all"]);
    assert.equal(kept.deleted, 0);
    assert.equal(kept.skipped.length, 1);
    assert.match(kept.skipped[0].reason, /flow run k has not finished/);
    assert.equal((await env.jobs("k:a:1")).length, 1, "the job is still there");

    const forced = await env.json(["job", "clean", "--all", "--force"]);
    assert.equal(forced.deleted, 1);
    const final = await env.json(["start", "--run-key", "k", file], 1);
    assert.deepEqual(statuses(final), { a: "FAILED", b: "SKIPPED" });
    assert.match(step(final, "a").error, /^orchesjob no longer knows run key /);
    assert.deepEqual(countLines(log), { a: 1 }, "the cleaned job was not started again under its key");
    await assertNoJobProcesses(env.home);
  },
);

for (const fault of ["replaced", "deleted"] as const) {
  flowTest(
    builtin,
    `the state file ${fault} mid-run: the driver stops with exit 74 and a clear error, nothing runs twice`,
    async (env) => {
      const log = join(env.home, "ran");
      const go = join(env.home, "go");
      const file = env.flow(
        "swap.yaml",
        `flow_id: swap
steps:
  - {id: a, command: ${logged(log, "a", waitForFile(go))}}
  - {id: b, when: a, command: ${logged(log, "b")}}
`,
      );
      const driver = env.spawn(["start", "--run-key", "k", file]);
      await env.waitFor("k", "a's job is recorded", (run) => step(run, "a").orchesjob_status !== null);
      const state = join(env.home, "orchesjob-flow.sqlite3");
      if (fault === "replaced") {
        // A consistent copy (as a backup restore would put back), renamed over the original.
        const db = new DatabaseSync(state);
        db.exec(`VACUUM INTO '${state}.copy'`);
        db.close();
        Deno.renameSync(`${state}.copy`, state);
      } else {
        for (const suffix of ["", "-wal", "-shm"]) Deno.removeSync(state + suffix);
      }
      const output = await driver.output();
      const stderr = new TextDecoder().decode(output.stderr);
      assert.equal(output.code, 74, stderr);
      assert.match(JSON.parse(stderr.trim().split("\n").at(-1)!).error, new RegExp(`state database .* was ${fault} `));
      Deno.writeTextFileSync(go, "");
      if (fault === "replaced") {
        // The file now in place holds the run as copied: resuming it finishes the run, each step once.
        const final = await env.json(["start", "--run-key", "k", file]);
        assert.deepEqual(statuses(final), { a: "SUCCEEDED", b: "SUCCEEDED" });
        assert.deepEqual(countLines(log), { a: 1, b: 1 });
      } else {
        await eventually("a ended", () => !jobGroups(env.home).some(processAlive));
        assert.deepEqual(countLines(log), { a: 1 }, "nothing ran after the driver stopped");
      }
      await assertNoJobProcesses(env.home);
    },
  );
}

flowTest(builtin, "a zero-length state file is an error, not a new empty state", async (env) => {
  const log = join(env.home, "ran");
  const file = env.flow("one.yaml", `flow_id: one\nsteps:\n  - {id: a, command: ${logged(log, "a")}}\n`);
  await env.json(["start", "--run-key", "k", file]);
  const state = join(env.home, "orchesjob-flow.sqlite3");
  for (const suffix of ["-wal", "-shm"]) {
    try {
      Deno.removeSync(state + suffix);
    } catch { /* checkpointed and removed at close */ }
  }
  Deno.writeFileSync(state, new Uint8Array());
  for (const args of [["status", "--run-key", "k"], ["start", "--run-key", "k", file]]) {
    const result = await env.run(args);
    assert.equal(result.code, 2, result.stderr);
    assert.match(JSON.parse(result.stderr.trim()).error, /is empty \(zero bytes\)/);
  }
  assert.deepEqual(countLines(log), { a: 1 }, "the old run key did not run again");
});

flowTest(builtin, "a write lock held by another process: the driver waits, says so, and finishes", async (env) => {
  const log = join(env.home, "ran");
  const go = join(env.home, "go");
  const file = env.flow(
    "held.yaml",
    `flow_id: held
steps:
  - {id: a, command: ${logged(log, "a", waitForFile(go))}}
  - {id: b, when: a, command: ${logged(log, "b")}}
`,
  );
  // A short busy timeout (test-only), so the held lock fails the driver's writes within the test.
  const driver = env.spawn(["start", "--run-key", "k", file], { ORCHESJOB_FLOW_BUSY_TIMEOUT_MS: "100" });
  await env.waitFor("k", "a's job is recorded", (run) => step(run, "a").orchesjob_status !== null);
  const admin = new DatabaseSync(join(env.home, "orchesjob-flow.sqlite3"));
  admin.exec("BEGIN IMMEDIATE"); // as an admin's sqlite3 shell holding a write transaction
  Deno.writeTextFileSync(go, ""); // a ends: recording that needs the write lock
  let stderr = "";
  const decoder = new TextDecoder();
  const reader = driver.stderr.getReader();
  while (!stderr.includes("retrying: database is locked")) {
    const { value, done } = await reader.read();
    assert.ok(!done, `the driver ended while the lock was held: ${stderr}`);
    stderr += decoder.decode(value);
  }
  const during = await env.status("k");
  assert.equal(during.status, "RUNNING", "the run waits, neither ended nor abandoned");
  assert.equal(step(during, "b").status, "PENDING");
  admin.exec("COMMIT");
  admin.close();
  reader.releaseLock();
  const output = await driver.output();
  assert.equal(output.code, 0, stderr + decoder.decode(output.stderr));
  const final = await env.status("k");
  assert.deepEqual(statuses(final), { a: "SUCCEEDED", b: "SUCCEEDED" });
  assert.equal(final.error, null);
  assert.deepEqual(countLines(log), { a: 1, b: 1 });
  await assertNoJobProcesses(env.home);
});

flowTest(builtin, "watch takes over when the driver dies after watch started", async (env) => {
  const log = join(env.home, "ran");
  const [go1, go2] = [join(env.home, "go1"), join(env.home, "go2")];
  const file = env.flow(
    "watched.yaml",
    `flow_id: watched
steps:
  - {id: a, command: ${logged(log, "a", waitForFile(go1))}}
  - {id: b, when: a, command: ${logged(log, "b", waitForFile(go2))}}
  - {id: c, when: b, command: ${logged(log, "c")}}
`,
  );
  const driver = env.spawn(["start", "--run-key", "k", file]);
  await waitForLines(log, 1);
  const watch = env.spawn(["watch", "--run-key", "k", "--interval", "0.1", "--mode", "append"]);
  const reader = watch.stdout.getReader();
  const decoder = new TextDecoder();
  let shown = "";
  const tables = async (n: number) => {
    while ((shown.match(/^Flow: /gm) ?? []).length < n) {
      const { value, done } = await reader.read();
      assert.ok(!done, `watch ended early: ${shown}`);
      shown += decoder.decode(value);
    }
  };
  await tables(1);
  Deno.writeTextFileSync(go1, ""); // a ends, b starts: a second table, after watch's first refresh
  await tables(2);
  assert.doesNotMatch(shown, /Driver: none/);
  driver.kill("SIGKILL");
  assert.equal((await driver.output()).signal, "SIGKILL");
  Deno.writeTextFileSync(go2, "");
  reader.releaseLock();
  const output = await watch.output();
  const stderr = decoder.decode(output.stderr);
  assert.equal(output.code, 0, stderr);
  assert.match(stderr, /"warning":"Driver: none; resume with/, "watch saw the run undriven and took it over");
  assert.deepEqual(statuses(await env.status("k")), { a: "SUCCEEDED", b: "SUCCEEDED", c: "SUCCEEDED" });
  assert.deepEqual(countLines(log), { a: 1, b: 1, c: 1 });
  await assertNoJobProcesses(env.home);
});

/**
 * A directory nobody may write: a read-only tmpfs for root (whom permissions do not stop), else
 * mode 0555 with the files 0444. Returns its path and how to undo it.
 */
function readOnlyCopy(files: string[]): { dir: string; [Symbol.dispose](): void } {
  const dir = Deno.makeTempDirSync({ prefix: "ojf-ro-" });
  // Root without the right to mount (a container) gets the modes only, which do not stop root.
  const root = canMount();
  const mount = (...args: string[]) => new Deno.Command("mount", { args, stdout: "null", stderr: "null" }).outputSync();
  if (root) assert.ok(mount("-t", "tmpfs", "-o", "size=4m", "tmpfs", dir).success, "mount a tmpfs (as root)");
  for (const file of files) Deno.copyFileSync(file, join(dir, file.split("/").at(-1)!));
  if (root) assert.ok(mount("-o", "remount,ro", dir).success, "remount it read-only");
  else {
    for (const entry of Deno.readDirSync(dir)) Deno.chmodSync(join(dir, entry.name), 0o444);
    Deno.chmodSync(dir, 0o555);
  }
  return {
    dir,
    [Symbol.dispose]() {
      if (root) new Deno.Command("umount", { args: [dir] }).outputSync();
      else Deno.chmodSync(dir, 0o755);
      Deno.removeSync(dir, { recursive: true });
    },
  };
}

flowTest(builtin, "status and list read a read-only home and a read-only copy of the state file", async (env) => {
  const file = env.flow("one.yaml", `flow_id: one\nsteps:\n  - {id: a, command: ["true"]}\n`);
  const done = await env.json(["start", "--run-key", "k", file]);
  const state = join(env.home, "orchesjob-flow.sqlite3");
  const files = [state, `${state}-wal`].filter((path) => {
    try {
      return Deno.statSync(path).isFile;
    } catch {
      return false;
    }
  });
  using copy = readOnlyCopy(files);
  assert.throws(() => Deno.writeTextFileSync(join(copy.dir, "probe"), ""), "the copy's directory is read-only");
  const before = [...Deno.readDirSync(copy.dir)].map((e) => e.name).sort();
  const copied = join(copy.dir, "orchesjob-flow.sqlite3");
  const ways: [string[], Record<string, string>][] = [[["--db", copied], {}], [[], { ORCHESJOB_FLOW_HOME: copy.dir }]];
  for (const [globals, env2] of ways) {
    const status = await env.run([...globals, "status", "--run-key", "k"], env2);
    assert.equal(status.code, 0, status.stderr);
    assert.deepEqual({ ...JSON.parse(status.stdout), driver: null }, { ...done, driver: null });
    const list = await env.run([...globals, "list"], env2);
    assert.equal(list.code, 0, list.stderr);
    assert.deepEqual(JSON.parse(list.stdout).map((run: { run_key: string }) => run.run_key), ["k"]);
  }
  assert.deepEqual([...Deno.readDirSync(copy.dir)].map((e) => e.name).sort(), before, "nothing was written");
}, { ignore: Deno.uid() === 0 && !canMount() }); // root without mount rights cannot make a read-only place

/** Fills the filesystem of `dir` (a file of zeros until ENOSPC); returns the file, to remove it later. */
function fillDisk(dir: string): string {
  const filler = join(dir, "filler");
  using file = Deno.openSync(filler, { write: true, create: true });
  const chunk = new Uint8Array(4096);
  for (let size = 4096; size >= 1; size = size / 2) {
    for (;;) {
      try {
        if (file.writeSync(chunk.subarray(0, size)) === 0) break;
      } catch {
        break; // ENOSPC
      }
    }
  }
  return filler;
}

Deno.test({
  name: "[builtin] a full disk when a step ends: the supervisor keeps the result until it can write it",
  // A real full filesystem: a small tmpfs, which only root with the right to mount may make.
  ignore: !canMount(),
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    using env = new FlowEnv("builtin");
    const mount = join(env.home, "small");
    using _small = smallFilesystem(mount, "size=8m");
    const on = { ORCHESJOB_FLOW_HOME: mount };
    const log = join(env.home, "ran");
    const go = join(env.home, "go");
    const file = env.flow(
      "full.yaml",
      `flow_id: full
steps:
- {id: a, retries: 1, command: ${logged(log, "a", waitForFile(go))}}
- {id: b, when: a, command: ${logged(log, "b")}}
`,
    );
    const status = async () => JSON.parse((await env.run(["status", "--run-key", "k"], on)).stdout);
    const driver = env.spawn(["start", "--run-key", "k", file], on);
    await eventually("a's job is recorded", async () => {
      const run = await env.run(["status", "--run-key", "k"], on);
      return run.code === 0 && step(JSON.parse(run.stdout), "a").orchesjob_status?.status === "RUNNING";
    });
    const jobs = join(mount, "jobs");
    const target = () => {
      const name = [...Deno.readDirSync(jobs)].find((e) => e.name.endsWith(".target"))?.name;
      return name ? Number(Deno.readTextFileSync(join(jobs, name)).trim()) : null;
    };
    await eventually("a's command has a PID", () => target() !== null);
    const pid = target()!;
    const filler = fillDisk(mount);
    Deno.writeTextFileSync(go, ""); // a's command exits 0 onto the full disk
    await eventually("a's command ended", () => !processAlive(pid));
    const exitFiles = () => [...Deno.readDirSync(jobs)].filter((e) => e.name.endsWith(".exit"));
    const written = exitFiles().map((e) => Deno.readTextFileSync(join(jobs, e.name)));
    assert.ok(written.every((text) => !text.endsWith("\n")), "no result could be written: the disk is full");
    const during = await status();
    assert.equal(step(during, "a").status, "RUNNING", "not LOST, not retried");
    assert.equal(step(during, "a").attempt_no, 1);
    Deno.removeSync(filler);
    const output = await driver.output();
    assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
    const final = await status();
    assert.deepEqual(statuses(final), { a: "SUCCEEDED", b: "SUCCEEDED" });
    assert.equal(step(final, "a").attempt_no, 1);
    assert.deepEqual(countLines(log), { a: 1, b: 1 });
    await assertNoJobProcesses(mount);
  },
});
