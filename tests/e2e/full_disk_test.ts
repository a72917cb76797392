/**
 * A full disk under the program's own output and under the built-in runner's job files: nothing is
 * killed, nothing is taken for a command's exit status, every step runs once.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { CLI, collectText, eventually, processAlive } from "../helpers.ts";
import { canMount, countLines, fillInodes, logged, smallFilesystem, waitForFile } from "./fault_helpers.ts";
import { FlowEnv, type Json, step } from "./flow_env.ts";
import { STUBBORN } from "./operator_env.ts";
import { CRASH_AT_VARIABLE, pathExists as exists } from "../../src/shared/mod.ts";

/** A test on a home that is a small tmpfs (`options`), which only root with the right to mount may make. */
function onSmallFilesystem(
  mode: "builtin" | "external",
  name: string,
  options: string,
  body: (env: FlowEnv, mount: string) => Promise<void>,
): void {
  Deno.test({
    name: `[${mode}] ${name}`,
    ignore: !canMount(),
    async fn() {
      using env = new FlowEnv(mode);
      const mount = join(env.home, "small");
      using _small = smallFilesystem(mount, options);
      await body(env, mount);
    },
  });
}

Deno.test("[builtin] stdout and stderr on a full disk: the driver drives on through its diagnostics, then exits 70", async () => {
  using env = new FlowEnv("builtin");
  const log = join(env.home, "ran");
  const go = join(env.home, "go");
  const file = env.flow(
    "two.yaml",
    `flow_id: two\nsteps:\n  - {id: a, command: ${logged(log, "a", waitForFile(go))}}\n` +
      `  - {id: b, when: a, command: ${logged(log, "b")}}\n`,
  );
  // The driver's writes fail while another process holds the write lock (a short busy timeout, test
  // only), and it says so on stderr, which is /dev/full: a failed diagnostic must not kill it.
  const driver = new Deno.Command("sh", {
    args: ["-c", 'exec "$@" > /dev/full 2> /dev/full', "sh", ...CLI, ...env.globals(), "start", "--run-key", "k", file],
    env: env.env({ ORCHESJOB_FLOW_BUSY_TIMEOUT_MS: "100" }),
    stdout: "null",
    stderr: "null",
  }).spawn();
  await env.waitFor("k", "a's job is recorded", (run) => step(run, "a").orchesjob_status !== null);
  const admin = new DatabaseSync(join(env.home, "orchesjob-flow.sqlite3"));
  admin.exec("BEGIN IMMEDIATE");
  Deno.writeTextFileSync(go, ""); // a ends: recording that needs the write lock, which fails: a diagnostic
  await eventually("a's command ran", () => countLines(log).a === 1);
  await new Promise((resolve) => setTimeout(resolve, 1500)); // 15 busy timeouts
  const during = admin.prepare("SELECT status FROM flow_steps WHERE run_key = 'k' AND step_id = 'b'").get() as Json;
  assert.equal(during.status, "PENDING", "the driver could not record a's end while the lock was held");
  admin.exec("COMMIT");
  admin.close();
  const status = await driver.status;
  const run: Json = await env.status("k");
  assert.deepEqual([run.status, step(run, "a").status, step(run, "b").status], ["SUCCEEDED", "SUCCEEDED", "SUCCEEDED"]);
  assert.deepEqual(countLines(log), { a: 1, b: 1 });
  assert.equal(status.code, 70, "the run SUCCEEDED, but its answer could not be written");

  // A command that would exit 0 says that its answer is lost.
  const lost = await new Deno.Command("sh", {
    args: ["-c", 'exec "$@" > /dev/full', "sh", ...CLI, "status", "--run-key", "k"],
    env: env.env(),
    stdout: "null",
    stderr: "piped",
  }).output();
  assert.equal(lost.code, 70);
  assert.deepEqual(JSON.parse(new TextDecoder().decode(lost.stderr).trim()), {
    error: "stdout could not be written: No space left on device (os error 28)",
  });
});

onSmallFilesystem(
  "builtin",
  "no inode left for a job's output files: the job waits for one, never fails with the redirection's 1",
  "size=8m,nr_inodes=64",
  inodesRunOut,
);

onSmallFilesystem(
  "builtin",
  "no inode left for a job's output files, its supervisor's bash in POSIX mode (POSIXLY_CORRECT): the job waits too",
  "size=8m,nr_inodes=64",
  (env, mount) => inodesRunOut(env, mount, { POSIXLY_CORRECT: "1" }),
);

/**
 * Starts job `k` (a command that appends `k` to `log`) with room left for its launch file and its
 * claim only, none for its output files; `taken` holds the files that took the other inodes, and
 * `db` the connection that keeps SQLite's WAL and its index in place meanwhile (SQLite removes them
 * when the last connection closes, and could not make them again).
 */
async function startWithoutRoom(env: FlowEnv, mount: string, extraEnv: Record<string, string> = {}) {
  const on = { ...extraEnv, ORCHESJOB_FLOW_HOME: mount };
  const log = join(env.home, "ran");
  const job = (args: string[]) => env.run(["job", ...args], on);
  // The state file and the jobs directory exist before the inodes run out.
  assert.equal((await job(["start", "--sync", "--run-key", "first", "--", "true"])).code, 0);
  const db = new DatabaseSync(join(mount, "orchesjob-flow.sqlite3"));
  db.prepare("SELECT COUNT(*) FROM jobs").get();
  const taken = fillInodes(mount);
  taken.splice(-2).forEach((path) => Deno.removeSync(path));
  const start = await job(["start", "--run-key", "k", "--start-timeout", "1", "--", "sh", "-c", `echo k >> ${log}`]);
  assert.equal(start.code, 0, start.stderr);
  const jobId: string = JSON.parse(start.stdout).job_id;
  return { job, log, taken, jobId, db };
}

async function inodesRunOut(env: FlowEnv, mount: string, extraEnv: Record<string, string> = {}): Promise<void> {
  const { job, log, jobId, db } = await startWithoutRoom(env, mount, extraEnv);
  using _db = db;
  const jobs = join(mount, "jobs");
  const has = (suffix: string) => {
    try {
      return Deno.statSync(join(jobs, `${jobId}${suffix}`)).isFile;
    } catch {
      return false;
    }
  };
  await eventually("the job is claimed", () => has(".claim"));
  await new Promise((resolve) => setTimeout(resolve, 1500));
  assert.ok(!has(".stdout") && !has(".exit"), "the supervisor waits: no output file, no exit status");
  const waiting = JSON.parse((await job(["status", "--run-key", "k"])).stdout);
  // Claimed by a live supervisor, its command not started: STARTING (RUNNING comes with the command's PID).
  assert.deepEqual([waiting.status, waiting.exit_code], ["STARTING", null]);
  assert.deepEqual(countLines(log), {}, "the command did not run without its output files");

  Deno.removeSync(join(mount, "filler"), { recursive: true });
  await eventually("the job ends", async () => {
    const status = JSON.parse((await job(["status", "--run-key", "k"])).stdout);
    return status.status !== "STARTING" && status.status !== "RUNNING";
  });
  const final = JSON.parse((await job(["status", "--run-key", "k"])).stdout);
  assert.deepEqual([final.status, final.exit_code], ["SUCCEEDED", 0], JSON.stringify(final));
  assert.deepEqual(countLines(log), { k: 1 }, "it ran once");
}

onSmallFilesystem(
  "builtin",
  "a job aborted while it waits for room for its output files never starts, even once there is room",
  "size=8m,nr_inodes=64",
  abortedWhileWaiting,
);

async function abortedWhileWaiting(env: FlowEnv, mount: string): Promise<void> {
  const { job, log, taken, jobId, db } = await startWithoutRoom(env, mount);
  using _db = db;
  const path = (suffix: string) => join(mount, "jobs", `${jobId}${suffix}`);
  // The claim file holds the supervisor's PID (empty for a moment after the claim).
  const claimed = () =>
    Number(/^\d+/.exec(exists(path(".claim")) ? Deno.readTextFileSync(path(".claim")) : "")?.[0] ?? 0);
  await eventually("the job is claimed", () => claimed() > 0);
  const supervisor = claimed();
  // The output file's name taken by a directory (one inode freed for it): making the file fails as on
  // a disk with no inode left, however many there are; a second inode is freed for the abort's file.
  Deno.removeSync(taken.pop()!);
  Deno.mkdirSync(path(".stdout"));
  Deno.removeSync(taken.pop()!);
  await new Promise((resolve) => setTimeout(resolve, 1500));
  assert.ok(processAlive(supervisor), "the supervisor waits for room");
  assert.ok(!exists(path(".stderr")) && !exists(path(".exit")), "no output file, no exit status yet");

  // `job abort` returns once the job has ended: at once when its SIGTERM (or the abort file) ends the
  // supervisor's wait, only at the SIGKILL 60 s later when the wait ignores both.
  const abortedAt = performance.now();
  const aborted = await job(["abort", "--run-key", "k", "--grace-seconds", "60"]);
  assert.equal(aborted.code, 0, aborted.stderr);
  assert.ok(performance.now() - abortedAt < 45_000, "the supervisor ended on the SIGTERM, not the SIGKILL");
  assert.ok(!processAlive(supervisor), "the supervisor stopped waiting");
  // Room comes back: nothing is left to start the command.
  Deno.removeSync(path(".stdout"));
  Deno.removeSync(join(mount, "filler"), { recursive: true });
  await new Promise((resolve) => setTimeout(resolve, 1500));
  const final = JSON.parse((await job(["status", "--run-key", "k"])).stdout);
  assert.equal(final.status, "ABORTED", JSON.stringify(final));
  assert.deepEqual(countLines(log), {}, "the aborted command never ran");
}

onSmallFilesystem(
  "builtin",
  "no inode left for the next step's launch file: the driver waits, then runs it once",
  "size=8m,nr_inodes=64",
  launchFileWaits,
);

async function launchFileWaits(env: FlowEnv, mount: string): Promise<void> {
  const on = { ORCHESJOB_FLOW_HOME: mount };
  const log = join(env.home, "ran");
  const go = join(env.home, "go");
  const file = env.flow(
    "two.yaml",
    `flow_id: two\nsteps:\n  - {id: a, command: ${logged(log, "a", waitForFile(go))}}\n` +
      `  - {id: b, when: a, command: ${logged(log, "b")}}\n`,
  );
  const status = async () => JSON.parse((await env.run(["status", "--run-key", "k"], on)).stdout);
  const driver = env.spawn(["start", "--run-key", "k", file], on);
  await eventually("a runs", () => countLines(log).a === 1);
  // Every inode but one taken: a's exit file takes it, and b's launch file finds none.
  const taken = fillInodes(mount);
  Deno.removeSync(taken.pop()!);
  Deno.writeTextFileSync(go, "");
  await eventually("a is recorded as SUCCEEDED", async () => step(await status(), "a").status === "SUCCEEDED");
  await new Promise((resolve) => setTimeout(resolve, 1500));
  const during = await status();
  assert.equal(during.status, "RUNNING");
  assert.deepEqual(
    [step(during, "b").status, step(during, "b").orchesjob_status],
    ["RUNNING", null],
    "b's intent, no job",
  );
  assert.deepEqual(countLines(log), { a: 1 });
  Deno.removeSync(join(mount, "filler"), { recursive: true });
  const output = await driver.output();
  const stderr = new TextDecoder().decode(output.stderr);
  assert.equal(output.code, 0, stderr);
  assert.match(stderr, /state database unusable, retrying: no space left on the device \(No space left on device/);
  const final = await status();
  assert.deepEqual([final.status, step(final, "b").status, step(final, "b").attempt_no], ["SUCCEEDED", "SUCCEEDED", 1]);
  assert.deepEqual(countLines(log), { a: 1, b: 1 });
}

onSmallFilesystem(
  "external",
  "orchesjob's home full: its exit 1 on start is a passing fault, and the step runs once it has room",
  "size=8m,nr_inodes=64",
  orchesjobHomeFull,
);

async function orchesjobHomeFull(env: FlowEnv, mount: string): Promise<void> {
  // orchesjob (the built-in runner's CLI) keeps its state on the small filesystem.
  const bin = join(env.home, "orchesjob-on-small");
  Deno.writeTextFileSync(bin, `#!/bin/sh\nORCHESJOB_FLOW_HOME='${mount}' exec '${env.wrapper}' "$@"\n`);
  Deno.chmodSync(bin, 0o755);
  const first = await env.run(["job", "start", "--sync", "--run-key", "first", "--", "true"], {
    ORCHESJOB_FLOW_HOME: mount,
  });
  assert.equal(first.code, 0, first.stderr);
  fillInodes(mount); // no inode left: orchesjob cannot make its state file's WAL
  const refused = await env.run(["job", "start", "--run-key", "x", "--", "true"], { ORCHESJOB_FLOW_HOME: mount });
  assert.equal(refused.code, 1, `orchesjob's general error: ${refused.stderr}`);
  assert.match(JSON.parse(refused.stderr.trim()).error, /^cannot open state database .*: no space left on its device/);

  const log = join(env.home, "ran");
  const file = env.flow("one.yaml", `flow_id: one\nsteps:\n  - {id: a, command: ${logged(log, "a")}}\n`);
  // The flow's own state there: an environment failure (70), not a usage error (2).
  const own = await env.run(["start", "--run-key", "there", file], { ORCHESJOB_FLOW_HOME: mount });
  assert.equal(own.code, 70, own.stderr);
  assert.match(
    JSON.parse(own.stderr.trim()).error,
    /^start: cannot open state database .*: no space left on its device/,
  );

  const driver = new Deno.Command(CLI[0], {
    args: [...CLI.slice(1), "--poll-interval", "0.1", "--orchesjob-bin", bin, "start", "--run-key", "k", file],
    env: env.env(),
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const run = await env.waitFor("k", "a's failed start is a fault", (run) => step(run, "a").executor_error !== null);
  assert.deepEqual([run.status, step(run, "a").status, step(run, "a").error], ["RUNNING", "RUNNING", null]);
  assert.match(step(run, "a").executor_error.message, /(start|status) exited 1: .*no space left on its device/);
  assert.deepEqual(countLines(log), {});
  Deno.removeSync(join(mount, "filler"), { recursive: true });
  const output = await driver.output();
  assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
  const final = await env.status("k");
  assert.deepEqual([final.status, step(final, "a").status, step(final, "a").executor_error], [
    "SUCCEEDED",
    "SUCCEEDED",
    null,
  ]);
  assert.deepEqual(countLines(log), { a: 1 });
}

onSmallFilesystem(
  "builtin",
  "clean on a full disk frees the jobs' output first, so it can record what it deleted",
  "size=8m",
  cleanOnFullDisk,
);

async function cleanOnFullDisk(env: FlowEnv, mount: string): Promise<void> {
  const on = { ORCHESJOB_FLOW_HOME: mount };
  const file = env.flow("big.yaml", `flow_id: big\nsteps:\n  - {id: a, command: "head -c 3000000 /dev/zero"}\n`);
  assert.equal((await env.run(["start", "--run-key", "k", file], on)).code, 0);
  // A finished run whose driver lock is held (as by a `retry` about to reopen it): neither pass of
  // clean may touch its files, the pass that makes room included.
  const small = env.flow("small.yaml", `flow_id: small\nsteps:\n  - {id: a, command: "echo kept"}\n`);
  const held = await env.run(["start", "--run-key", "held", small], on);
  assert.equal(held.code, 0, held.stderr);
  const heldJob: Json = step(JSON.parse(held.stdout), "a").orchesjob_status;
  using heldLock = await Deno.open(join(mount, "locks", "held.driver.lock"), { create: true, write: true });
  assert.ok(await heldLock.tryLock(true));
  const jobFiles = () => [...Deno.readDirSync(join(mount, "jobs"))].length;
  const before = jobFiles();
  // A write lock held elsewhere is not a full disk: clean waits for it and removes nothing meanwhile
  // (here it is interrupted in that wait).
  const admin = new DatabaseSync(join(mount, "orchesjob-flow.sqlite3"));
  admin.exec("BEGIN IMMEDIATE");
  const child = env.spawn(["clean", "--older-than", "0"], { ...on, ORCHESJOB_FLOW_BUSY_TIMEOUT_MS: "100" });
  const stderr = collectText(child.stderr);
  let exited = false;
  const status = child.status.finally(() => (exited = true));
  await eventually("clean says it waits for the lock", () => exited || stderr.text.includes("waiting"));
  assert.equal(exited, false, stderr.text);
  assert.equal(jobFiles(), before, "no job file removed");
  child.kill("SIGINT");
  const locked = await status;
  await child.stdout.cancel();
  await stderr.done;
  admin.exec("ROLLBACK");
  admin.close();
  assert.equal(locked.code, 130, stderr.text);
  assert.match(stderr.text, /interrupted while opening state database .*; nothing was stored/);
  assert.equal(jobFiles(), before, "no job file removed");
  const filler = fillBytes(mount);
  assert.throws(() => Deno.writeFileSync(join(mount, "probe"), new Uint8Array(4096)), "the disk is full");
  const cleaned = await env.run(["clean", "--older-than", "0"], on);
  assert.equal(cleaned.code, 0, cleaned.stderr);
  const report = JSON.parse(cleaned.stdout);
  assert.deepEqual(report.runs.map((run: Json) => run.run_key), ["k"]);
  assert.deepEqual(report.skipped, [{ run_key: "held", reason: "a process holds its driver lock" }]);
  assert.equal(Deno.readTextFileSync(heldJob.stdout_file), "kept\n", "the held run's output was left alone");
  Deno.removeSync(filler);
  assert.deepEqual(JSON.parse((await env.run(["list"], on)).stdout).map((run: Json) => run.run_key), ["held"]);
  const left = [...Deno.readDirSync(join(mount, "jobs"))].map((entry) => entry.name)
    .filter((name) => name !== "ended"); // the job-end hints' directory, which drivers watch
  assert.ok(
    left.length > 0 && left.every((name) => name.startsWith(heldJob.job_id)),
    left.join(),
  );
}

/** Fills the filesystem of `dir` with one file of zeros until no byte fits; returns the file. */
function fillBytes(dir: string): string {
  const path = join(dir, "filler");
  using file = Deno.openSync(path, { write: true, create: true });
  for (let size = 1 << 16; size >= 1; size >>= 1) {
    const chunk = new Uint8Array(size);
    for (;;) {
      try {
        file.writeSync(chunk);
      } catch {
        break;
      }
    }
  }
  return path;
}

onSmallFilesystem(
  "builtin",
  "no inode left for an abort's deadline file: the abort still ends a job that ignores SIGTERM",
  "size=8m,nr_inodes=64",
  (env, mount) => abortWithoutRoom(env, mount, false),
);

onSmallFilesystem(
  "builtin",
  "no inode left for an abort's deadline file, and the abort killed in its grace: a later read sends the SIGKILL",
  "size=8m,nr_inodes=64",
  (env, mount) => abortWithoutRoom(env, mount, true),
);

/**
 * A running job that ignores SIGTERM, aborted once the disk has no inode left for its abort file.
 * With `crash`, the abort is killed during its grace; a later `job status` must finish it.
 */
async function abortWithoutRoom(env: FlowEnv, mount: string, crash: boolean): Promise<void> {
  const on = { ORCHESJOB_FLOW_HOME: mount };
  const job = (args: string[], extra: Record<string, string> = {}) => env.run(["job", ...args], { ...on, ...extra });
  const started = await job(["start", "--run-key", "k", "--", "sh", "-c", "trap '' TERM; sleep 60"]);
  assert.equal(started.code, 0, started.stderr);
  const jobId: string = JSON.parse(started.stdout).job_id;
  // Keeps SQLite's WAL and its index in place (see startWithoutRoom).
  using db = new DatabaseSync(join(mount, "orchesjob-flow.sqlite3"));
  db.prepare("SELECT COUNT(*) FROM jobs").get();
  let pid = 0;
  await eventually("the command runs", async () => {
    pid = JSON.parse((await job(["status", "--run-key", "k"])).stdout).target_pid ?? 0;
    return pid > 0;
  });
  fillInodes(mount);
  const abortFile = join(mount, "jobs", `${jobId}.abort`);
  if (!crash) {
    const aborted = await job(["abort", "--run-key", "k", "--grace-seconds", "1"]);
    assert.equal(aborted.code, 0, aborted.stderr);
    assert.equal(JSON.parse(aborted.stdout).status, "ABORTED");
  } else {
    const child = env.spawn(["job", "abort", "--run-key", "k", "--grace-seconds", "30"], {
      ...on,
      [CRASH_AT_VARIABLE]: "runner:abort-grace",
    });
    const output = await child.output();
    assert.equal(output.signal, "SIGKILL", new TextDecoder().decode(output.stderr));
    assert.ok(processAlive(pid), "the command ignored the SIGTERM and outlived the abort");
    // The SIGKILL is due 5 s (the default grace) after the abort, at the first read after that.
    await eventually("a read killed the command", async () => {
      assert.equal(JSON.parse((await job(["status", "--run-key", "k"])).stdout).status, "ABORTED");
      return !processAlive(pid);
    }, 20);
  }
  assert.ok(!exists(abortFile), "there was no room for the abort file");
  assert.ok(!processAlive(pid), "the command is gone");
}

onSmallFilesystem(
  "builtin",
  "no inode left for the cancel lock: the cancel goes on without it and ends the step",
  "size=8m,nr_inodes=64",
  async (env, mount) => {
    const on = { ORCHESJOB_FLOW_HOME: mount };
    const file = env.flow("stubborn.yaml", STUBBORN);
    const started = await env.run(["start", "-d", "--run-key", "c", file], on);
    assert.equal(started.code, 0, started.stderr);
    let pid = 0;
    await eventually("the command runs", async () => {
      const run = JSON.parse((await env.run(["status", "--run-key", "c"], on)).stdout);
      pid = step(run, "a").orchesjob_status?.target_pid ?? 0;
      return pid > 0;
    });
    // Keeps SQLite's WAL and its index in place (see startWithoutRoom).
    using db = new DatabaseSync(join(mount, "orchesjob-flow.sqlite3"));
    db.prepare("SELECT COUNT(*) FROM flow_runs").get();
    fillInodes(mount);
    const cancelled = await env.run(["cancel", "--run-key", "c", "--grace-seconds", "1"], on);
    assert.equal(cancelled.code, 0, cancelled.stderr);
    assert.equal(step(JSON.parse(cancelled.stdout), "a").status, "CANCELLED");
    assert.ok(!exists(join(mount, "locks", "c.cancel.lock")), "there was no room for the cancel lock");
    assert.ok(!processAlive(pid), "the command is gone");
  },
);
