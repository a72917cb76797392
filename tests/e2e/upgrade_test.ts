/**
 * An upgrade on a host with runs in flight: the previous release (commit {@link PREVIOUS}, state schema
 * 6, unpacked from git) drives a run while this build reads, drives and migrates the same state file.
 * Without that commit in the clone (a shallow clone, no git), the tests are skipped: their names say so.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { cli, type CliResult, errorLine, eventually, processAlive, REPO, tempDir, TEST_ENV } from "../helpers.ts";

/** The previous release point: main of 2026-12-02. */
const PREVIOUS = "482c494";

/** Why the previous release cannot be unpacked here, or null when it can. */
function unavailable(): string | null {
  try {
    const found = new Deno.Command("git", { args: ["-C", REPO, "cat-file", "-e", `${PREVIOUS}^{commit}`] })
      .outputSync();
    return found.success ? null : `commit ${PREVIOUS} is not in this clone (a shallow clone?)`;
  } catch {
    return "git cannot be run here";
  }
}

const skip = unavailable();
const ignore = skip !== null;
const named = (name: string) => skip === null ? name : `${name} (skipped: ${skip})`;

/** The previous release, unpacked from git into `dir`. */
function unpackPrevious(dir: string): string {
  const tar = join(dir, "release.tar");
  const archive = new Deno.Command("git", { args: ["-C", REPO, "archive", "-o", tar, PREVIOUS] }).outputSync();
  assert.ok(archive.success, new TextDecoder().decode(archive.stderr));
  const root = join(dir, "release");
  Deno.mkdirSync(root);
  const unpack = new Deno.Command("tar", { args: ["-xf", tar, "-C", root] }).outputSync();
  assert.ok(unpack.success, new TextDecoder().decode(unpack.stderr));
  return root;
}

/** A state home and a directory of markers (one directory per attempt of a step: `<step>.<n>`). */
class UpgradeEnv implements Disposable {
  readonly dir = tempDir("ojf-upgrade-");
  readonly home = join(this.dir.path, "home");
  readonly marks = join(this.dir.path, "marks");
  readonly env: Record<string, string>;
  readonly previous = unpackPrevious(this.dir.path);

  constructor() {
    Deno.mkdirSync(this.marks);
    this.env = { ORCHESJOB_FLOW_HOME: this.home, M: this.marks };
  }

  /** This build. */
  run(args: string[]): Promise<CliResult> {
    return cli(args, { env: this.env, cwd: this.dir.path });
  }

  /** The previous release, with its own configuration and lock file. */
  async old(args: string[]): Promise<CliResult> {
    const root = this.previous;
    const output = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-all", "--no-prompt", "--config", join(root, "deno.json"), join(root, "main.ts"), ...args],
      cwd: this.dir.path,
      env: { ...TEST_ENV, ...this.env },
      stdin: "null",
    }).output();
    const decoder = new TextDecoder();
    return { code: output.code, stdout: decoder.decode(output.stdout), stderr: decoder.decode(output.stderr) };
  }

  flow(name: string, text: string): string {
    const path = join(this.dir.path, name);
    Deno.writeTextFileSync(path, text);
    return path;
  }

  open(gate: string): void {
    Deno.writeTextFileSync(join(this.marks, gate), "");
  }

  /** The markers made so far, sorted: each step's attempts that ran. */
  markers(): string[] {
    return [...Deno.readDirSync(this.marks)].filter((e) => e.isDirectory).map((e) => e.name).sort();
  }

  /** `schema_meta.schema_version` of the state file, read without writing. */
  schemaVersion(): number {
    const db = new DatabaseSync(join(this.home, "orchesjob-flow.sqlite3"), { readOnly: true });
    try {
      const row = db.prepare("SELECT value FROM schema_meta WHERE key = 'schema_version'").get() as { value: string };
      return Number(row.value);
    } finally {
      db.close();
    }
  }

  [Symbol.dispose](): void {
    this.dir[Symbol.dispose]();
  }
}

/** A step that makes its attempt's marker, waits for the file `gate` (if any), then exits `code`. */
function gatedStep(id: string, after: string | null, gate: string | null, code = 0): string {
  const mark = `mkdir "$M/${id}.$(ls -d "$M/${id}".* 2>/dev/null | wc -l | tr -d ' ')"`;
  // Also ends once the markers are gone (a failed test's directory removed): never a loop left behind.
  const wait = gate === null ? "" : `; while [ -d "$M" ] && [ ! -e "$M/${gate}" ]; do sleep 0.05; done`;
  const needs = after === null ? "" : `\n    depends_on: [${after}]`;
  return `  - id: ${id}${needs}\n    command: ${JSON.stringify(`${mark}${wait}; exit ${code}`)}\n`;
}

function ok(result: CliResult, what: string): CliResult {
  assert.equal(result.code, 0, `${what}: ${result.stdout}${result.stderr}`);
  return result;
}

/** Starts the run detached with the previous release and waits for its step `gate` to be under way. */
async function oldStartDetached(env: UpgradeEnv, flow: string, marker: string): Promise<number> {
  const started = ok(
    await env.old(["--executor", "builtin", "--poll-interval", "0.1", "start", "-d", "--run-key", "r", flow]),
    "the previous release's start -d",
  );
  const driver = JSON.parse(started.stdout);
  assert.equal(driver.detached, true, started.stdout);
  await eventually(`the previous release's driver ran ${marker}`, () => env.markers().includes(marker));
  assert.equal(env.schemaVersion(), 6, "the previous release made a file of its own schema");
  return driver.pid;
}

Deno.test({
  name: named("this build reads a run that the previous release drives without migrating the file, and both go on"),
  ignore,
  async fn() {
    using env = new UpgradeEnv();
    const flow = env.flow(
      "flow.yaml",
      `flow_id: upgrade\nsteps:\n${gatedStep("a", null, null)}${gatedStep("gate", "a", "open")}` +
        `${gatedStep("b", "gate", null)}${gatedStep("c", "b", null)}`,
    );
    const pid = await oldStartDetached(env, flow, "gate.0");
    // Every read of this build, while the previous release drives the run: an answer, and no migration
    // (which the previous release would refuse after a rollback).
    const status = JSON.parse(ok(await env.run(["status", "--run-key", "r"]), "status").stdout);
    assert.equal(status.status, "RUNNING");
    assert.equal(status.driver?.pid, pid, "the previous release's driver is seen as the run's driver");
    const listed = JSON.parse(ok(await env.run(["list"]), "list").stdout);
    assert.deepEqual(listed.map((run: { run_key: string }) => run.run_key), ["r"]);
    ok(await env.run(["logs", "--run-key", "r", "--step", "a"]), "logs");
    const job = JSON.parse(ok(await env.run(["job", "status", "--run-key", "r:gate:1"]), "job status").stdout);
    assert.equal(job.status, "RUNNING");
    ok(await env.run(["job", "logs", "--run-key", "r:gate:1"]), "job logs");
    ok(await env.run(["clean", "--dry-run", "--older-than", "0"]), "clean --dry-run");
    const early = await env.run(["wait", "--run-key", "r", "--timeout", "0.01"]);
    assert.equal(early.code, 124, early.stdout + early.stderr);
    assert.equal(env.schemaVersion(), 6, "no read migrated the file");
    assert.ok(processAlive(pid), "the previous release's driver still runs");
    // The run ends under the previous release's driver, each step run once, followed by watch.
    const watch = env.run(["watch", "--no-advance", "--run-key", "r", "--interval", "0.1"]);
    env.open("open");
    ok(await watch, "watch --no-advance");
    const done = JSON.parse(ok(await env.run(["status", "--run-key", "r"]), "status").stdout);
    assert.equal(done.status, "SUCCEEDED", JSON.stringify(done));
    assert.deepEqual(env.markers(), ["a.0", "b.0", "c.0", "gate.0"]);
    assert.equal(env.schemaVersion(), 6, "still the previous release's schema");
    // So a rollback still reads it.
    assert.equal(
      JSON.parse(ok(await env.old(["status", "--run-key", "r"]), "the previous status").stdout).status,
      "SUCCEEDED",
    );
  },
});

Deno.test({
  name: named(
    "a file migrated under the previous release's driver: it goes on; killed, this build resumes its ended job, and a rollback is refused in one line",
  ),
  ignore,
  async fn() {
    using env = new UpgradeEnv();
    const flow = env.flow(
      "flow.yaml",
      `flow_id: upgrade\nsteps:\n${gatedStep("a", null, "open1")}${gatedStep("b", "a", "open2", 3)}` +
        `${gatedStep("c", "b", null)}`,
    );
    const pid = await oldStartDetached(env, flow, "a.0");
    // Cron fires this build for another run: a writer, it migrates the file under the running driver.
    const other = env.flow("other.yaml", `flow_id: other\nsteps:\n${gatedStep("x", null, null)}`);
    ok(await env.run(["--executor", "builtin", "start", "-q", "--run-key", "other", other]), "start of another run");
    assert.equal(env.schemaVersion(), 7, "this build's start migrated the file");
    // Cron fires this build for the run itself: the same file hashes the same, and its driver keeps it.
    const again = JSON.parse(ok(await env.run(["start", "-d", "--run-key", "r", flow]), "start -d of the run").stdout);
    assert.equal(again.detached, false, JSON.stringify(again));
    assert.equal(again.driver?.pid, pid, "the previous release's driver still drives the run");
    // The previous release's driver, its connection open across the migration, goes on to step b.
    env.open("open1");
    await eventually(
      "the previous release's driver started b after the migration",
      () => env.markers().includes("b.0"),
    );
    // A reboot: the driver dies; b's job (a supervisor of the previous release) ends while nobody watches.
    Deno.kill(pid, "SIGKILL");
    await eventually("the driver is gone", () => !processAlive(pid));
    env.open("open2");
    const jobs = join(env.home, "jobs");
    await eventually(
      "b's job ended",
      () => [...Deno.readDirSync(jobs)].filter((e) => e.name.endsWith(".exit")).length === 3,
    );
    const resumed = await env.run(["--poll-interval", "0.1", "resume", "--run-key", "r", "-q"]);
    assert.equal(resumed.code, 1, resumed.stdout + resumed.stderr);
    const run = JSON.parse(resumed.stdout);
    const steps = Object.fromEntries(run.steps.map((s: { id: string }) => [s.id, s]));
    assert.equal(steps.a.status, "SUCCEEDED");
    assert.equal(steps.b.status, "FAILED");
    assert.equal(steps.b.orchesjob_status.exit_code, 3, "b's exit code, recorded by nobody, was picked up");
    assert.equal(steps.c.status, "SKIPPED");
    assert.deepEqual(env.markers(), ["a.0", "b.0", "x.0"], "no step ran twice");
    // A rollback: the previous release refuses the newer file in one JSON line, exit 2, and changes nothing.
    for (
      const args of [["status", "--run-key", "r"], ["list"], ["resume", "--run-key", "r"], [
        "job",
        "status",
        "--run-key",
        "r:b:1",
      ]]
    ) {
      const refused = await env.old(args);
      assert.equal(refused.code, 2, `${args.join(" ")}: ${refused.stdout}${refused.stderr}`);
      assert.match(errorLine(refused).error, /schema version 7 is newer than this orchesjob-flow understands \(6\)/);
    }
    const after = JSON.parse(ok(await env.run(["status", "--run-key", "r"]), "status after the rollback").stdout);
    assert.deepEqual(after.steps.map((s: { status: string }) => s.status), ["SUCCEEDED", "FAILED", "SKIPPED"]);
  },
});

Deno.test({
  name: named("jobs that the previous release's job start launched are read, aborted and cleaned by this build"),
  ignore,
  async fn() {
    using env = new UpgradeEnv();
    const gated = `mkdir "$M/j1.0"; while [ -d "$M" ] && [ ! -e "$M/never" ]; do sleep 0.05; done`;
    ok(await env.old(["job", "start", "--run-key", "j1", "--", "/bin/sh", "-c", gated]), "the previous job start");
    ok(await env.old(["job", "start", "--run-key", "j2", "--", "/bin/sh", "-c", "exit 7"]), "the previous job start");
    await eventually("j1's command runs", () => env.markers().includes("j1.0"));
    const running = JSON.parse(ok(await env.run(["job", "status", "--run-key", "j1"]), "job status").stdout);
    assert.equal(running.status, "RUNNING");
    assert.ok(processAlive(running.target_pid));
    await eventually("j2 ended with its exit code", async () => {
      const ended = JSON.parse(ok(await env.run(["job", "status", "--run-key", "j2"]), "job status").stdout);
      return ended.status === "FAILED" && ended.exit_code === 7;
    });
    assert.equal(env.schemaVersion(), 6, "job status only read the file");
    const aborted = JSON.parse(ok(await env.run(["job", "abort", "--run-key", "j1"]), "job abort").stdout);
    assert.equal(aborted.status, "ABORTED");
    // The command and its supervisor (the group's leader): job clean keeps an aborted job whose group lives.
    await eventually("j1's process group is gone", () => ![running.target_pid, running.worker_pid].some(processAlive));
    assert.equal(env.schemaVersion(), 7, "job abort, a writer, migrated the file");
    // j2's end, seen above but not recorded (read-only), is recorded by a job status now: job clean
    // chooses only jobs whose end is recorded.
    const recorded = JSON.parse(ok(await env.run(["job", "status", "--run-key", "j2"]), "job status").stdout);
    assert.equal(recorded.exit_code, 7);
    const cleaned = JSON.parse(ok(await env.run(["job", "clean", "--all"]), "job clean").stdout);
    assert.equal(cleaned.deleted, 2, JSON.stringify(cleaned));
    const left = [...Deno.readDirSync(join(env.home, "jobs"))].filter((e) => e.isFile).map((e) => e.name);
    assert.deepEqual(left, [], "every job file was removed");
    const gone = await env.run(["job", "status", "--run-key", "j1"]);
    assert.equal(gone.code, 3, gone.stdout + gone.stderr);
  },
});

Deno.test({
  name: named(
    "the previous release's start -d on a file this build migrated exits 2 in one line, launches no driver, and this build resumes the run, each step once",
  ),
  ignore,
  async fn() {
    using env = new UpgradeEnv();
    const flow = env.flow(
      "flow.yaml",
      `flow_id: upgrade\nsteps:\n${gatedStep("a", null, "open")}${gatedStep("b", "a", null)}`,
    );
    const pid = await oldStartDetached(env, flow, "a.0");
    // A reboot: the previous release's driver dies with a under way; the host is upgraded meanwhile,
    // and this build's first write (another run) migrates the file.
    Deno.kill(pid, "SIGKILL");
    await eventually("the driver is gone", () => !processAlive(pid));
    const other = env.flow("other.yaml", `flow_id: other\nsteps:\n${gatedStep("x", null, null)}`);
    ok(await env.run(["--executor", "builtin", "start", "-q", "--run-key", "other", other]), "start of another run");
    assert.equal(env.schemaVersion(), 7, "this build's start migrated the file");
    const logs = join(env.home, "logs");
    const driverLogs = () => {
      try {
        return [...Deno.readDirSync(logs)].map((e) => `${e.name} ${Deno.statSync(join(logs, e.name)).size}`).sort();
      } catch {
        return [];
      }
    };
    const logsBefore = driverLogs();
    // A cron entry still calling the previous release: its start -d, of the run and of a new one, is
    // refused before anything is launched or stored.
    for (const key of ["r", "fresh"]) {
      const refused = await env.old(["--executor", "builtin", "start", "-d", "--run-key", key, flow]);
      assert.equal(refused.code, 2, `start -d ${key}: ${refused.stdout}${refused.stderr}`);
      assert.equal(refused.stdout, "", "no run printed");
      assert.equal(refused.stderr.trim().split("\n").length, 1, `one line: ${refused.stderr}`);
      assert.match(errorLine(refused).error, /schema version 7 is newer than this orchesjob-flow understands \(6\)/);
    }
    assert.deepEqual(driverLogs(), logsBefore, "no background driver was launched");
    assert.equal(env.schemaVersion(), 7);
    const listed = JSON.parse(ok(await env.run(["list"]), "list").stdout);
    assert.deepEqual(listed.map((run: { run_key: string }) => run.run_key).sort(), ["other", "r"], "no run fresh");
    assert.deepEqual(env.markers(), ["a.0", "x.0"], "nothing ran for the refused starts");
    // This build takes the run over: a's job (launched by the previous release) ends, b runs, each once.
    env.open("open");
    const resumed = await env.run(["--poll-interval", "0.1", "resume", "--run-key", "r", "-q"]);
    assert.equal(resumed.code, 0, resumed.stdout + resumed.stderr);
    assert.equal(JSON.parse(resumed.stdout).status, "SUCCEEDED");
    assert.deepEqual(env.markers(), ["a.0", "b.0", "x.0"], "no step ran twice, none was lost");
  },
});
