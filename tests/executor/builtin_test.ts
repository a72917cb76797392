/** The built-in runner's reconciliation of what supervisors leave behind (or do not). */
import assert from "node:assert/strict";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { BuiltinRunner } from "../../src/executor/mod.ts";
import { nowSeconds } from "../../src/shared/time.ts";
import { pathExists } from "../../src/shared/mod.ts";
import { jobsDirectory, openDatabase } from "../../src/store/mod.ts";
import { jobFiles } from "../../src/executor/builtin/supervisor.ts";
import type { JobRow } from "../../src/executor/builtin/job_table.ts";
import { MIGRATIONS } from "../../src/store/schema.ts";
import { eventually, processAlive, tempDir } from "../helpers.ts";

function row(jobId: string, fields: Partial<JobRow>): JobRow {
  return {
    job_id: jobId,
    run_key: jobId,
    command: '["sleep","30"]',
    worker_pid: null,
    target_pid: null,
    status: "RUNNING",
    exit_code: null,
    stdout_file: `/nonexistent/${jobId}.stdout`,
    stderr_file: `/nonexistent/${jobId}.stderr`,
    attempt_no: 1,
    rerun_of_job_id: null,
    rerun_reason: null,
    abort_reason: null,
    started_at: nowSeconds(),
    finished_at: null,
    updated_at: null,
    aborted_at: null,
    ...fields,
  };
}

Deno.test("a reused PID is not mistaken for the job's supervisor: the job is LOST", async () => {
  using dir = tempDir();
  const dbPath = join(dir.path, "state.sqlite3");
  const db = openDatabase(dbPath);
  const runner = new BuiltinRunner(db, jobsDirectory(dbPath));
  // This test process is alive, but it is not the supervisor of job "reused".
  runner.table.insertJob(row("reused", { worker_pid: Deno.pid }));
  const job = await runner.status("reused");
  assert.equal(job?.status, "LOST");
  assert.equal(typeof job?.finished_at, "number");
  db.close();
});

Deno.test("a STARTING job nobody launched (its starter died) is launched by the next reads, exactly once", async () => {
  using dir = tempDir();
  const dbPath = join(dir.path, "state.sqlite3");
  const jobs = jobsDirectory(dbPath);
  const marker = join(dir.path, "ran");
  // Two runners on two connections: two processes reading the same job at the same time.
  const dbs = [openDatabase(dbPath), openDatabase(dbPath)];
  const runners = dbs.map((db) => new BuiltinRunner(db, jobs));
  const command = JSON.stringify(["sh", "-c", `echo x >> '${marker}'`]);
  runners[0].table.insertJob(row("orphan", { status: "STARTING", command, stdout_file: join(jobs, "orphan.stdout") }));
  let status: string | undefined;
  await eventually("the orphaned job ends", async () => {
    for (const runner of runners) status = (await runner.status("orphan"))?.status;
    return status === "SUCCEEDED";
  });
  assert.equal(Deno.readTextFileSync(marker), "x\n", "launched once, though both readers relaunched it");
  for (const db of dbs) db.close();
});

Deno.test("a claimed job whose supervisor never wrote its PID is LOST after a grace period", async () => {
  using dir = tempDir();
  const dbPath = join(dir.path, "state.sqlite3");
  const db = openDatabase(dbPath);
  const jobs = jobsDirectory(dbPath);
  const runner = new BuiltinRunner(db, jobs);
  // A claim is an empty file until the supervisor writes its PID into it (earlier versions: a directory).
  for (const id of ["fresh", "stale", "fresh-dir", "stale-dir"]) {
    runner.table.insertJob(row(id, { status: "STARTING" }));
    if (id.endsWith("-dir")) Deno.mkdirSync(join(jobs, `${id}.claim`));
    else Deno.writeTextFileSync(join(jobs, `${id}.claim`), "");
  }
  for (const id of ["stale", "stale-dir"]) {
    Deno.utimeSync(join(jobs, `${id}.claim`), nowSeconds() - 3600, nowSeconds() - 3600);
  }
  assert.equal((await runner.status("fresh"))?.status, "STARTING", "its supervisor may be writing its PID");
  assert.equal((await runner.status("fresh-dir"))?.status, "STARTING");
  assert.equal((await runner.status("stale"))?.status, "LOST");
  assert.equal((await runner.status("stale-dir"))?.status, "LOST");
  assert.deepEqual((await runner.running()).map((job) => job.job_id).sort(), ["fresh", "fresh-dir"]);
  db.close();
});

Deno.test("a result file written by the supervisor wins over a dead PID, and ABORTED is never overwritten", async () => {
  using dir = tempDir();
  const dbPath = join(dir.path, "state.sqlite3");
  const db = openDatabase(dbPath);
  const jobs = jobsDirectory(dbPath);
  const runner = new BuiltinRunner(db, jobs);
  runner.table.insertJob(row("done", { worker_pid: 999_999_999 }));
  Deno.writeTextFileSync(join(jobs, "done.exit"), "0\n");
  assert.equal((await runner.status("done"))?.status, "SUCCEEDED");
  runner.table.insertJob(row("aborted", { status: "ABORTED", worker_pid: 999_999_999 }));
  Deno.writeTextFileSync(join(jobs, "aborted.exit"), "-15\n");
  const aborted = await runner.status("aborted");
  assert.equal(aborted?.status, "ABORTED");
  assert.equal(aborted?.exit_code, null);
  db.close();
});

Deno.test("a result file still being written (no newline yet) is not read; an earlier supervisor's .exit.tmp is", async () => {
  using dir = tempDir();
  const dbPath = join(dir.path, "state.sqlite3");
  const db = openDatabase(dbPath);
  const jobs = jobsDirectory(dbPath);
  const runner = new BuiltinRunner(db, jobs);
  // A live supervisor of the job (a shell whose command line names the job) mid-way through writing "137\n".
  const supervisor = new Deno.Command("sh", { args: ["-c", "sleep 60", "writing"], stdin: "null" }).spawn();
  try {
    const live = supervisor.pid;
    runner.table.insertJob(row("writing", { status: "RUNNING", worker_pid: live, target_pid: live }));
    Deno.mkdirSync(join(jobs, "writing.claim"));
    for (const partial of ["", "1", "13", "137"]) {
      Deno.writeTextFileSync(join(jobs, "writing.exit"), partial);
      const job = await runner.status("writing");
      assert.equal(job?.status, "RUNNING", JSON.stringify(partial));
      assert.equal(job?.exit_code, null, JSON.stringify(partial));
    }
    Deno.writeTextFileSync(join(jobs, "writing.exit"), "137\n");
    assert.equal((await runner.status("writing"))?.exit_code, 137);
  } finally {
    supervisor.kill("SIGKILL");
    await supervisor.status;
  }
  runner.table.insertJob(row("renamed", { worker_pid: 999_999_999 }));
  Deno.writeTextFileSync(join(jobs, "renamed.exit.tmp"), "3\n");
  assert.equal((await runner.status("renamed"))?.exit_code, 3);
  db.close();
});

Deno.test("the runner's tables migrate with it: a fresh file gets them, a file whose schema made them keeps its jobs", async () => {
  using dir = tempDir();
  const fresh = openDatabase(join(dir.path, "fresh.sqlite3"));
  const tablesBefore = fresh.prepare("SELECT name FROM sqlite_master WHERE name = 'jobs'").all();
  assert.deepEqual(tablesBefore, [], "the state file's own migrations no longer make the runner's tables");
  new BuiltinRunner(fresh, join(dir.path, "jobs"));
  assert.equal(fresh.prepare("SELECT name FROM sqlite_master WHERE name = 'jobs'").all().length, 1);
  fresh.close();

  // A file from before the move: its migration 1 made the tables, and it already holds a job.
  const oldPath = join(dir.path, "old.sqlite3");
  const old = new DatabaseSync(oldPath);
  old.exec(`CREATE TABLE schema_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    INSERT INTO schema_meta VALUES ('schema_version', '1');
    CREATE TABLE jobs (job_id TEXT PRIMARY KEY, run_key TEXT NOT NULL, command TEXT NOT NULL, worker_pid INTEGER,
      target_pid INTEGER, status TEXT NOT NULL, exit_code INTEGER, stdout_file TEXT NOT NULL, stderr_file TEXT NOT NULL,
      attempt_no INTEGER NOT NULL, rerun_of_job_id TEXT, rerun_reason TEXT, abort_reason TEXT,
      started_at INTEGER NOT NULL, finished_at INTEGER, updated_at INTEGER, aborted_at INTEGER);
    CREATE INDEX jobs_by_run_key ON jobs (run_key, attempt_no);
    CREATE INDEX jobs_active ON jobs (status) WHERE status IN ('STARTING', 'RUNNING');
    CREATE TABLE job_keys (run_key TEXT PRIMARY KEY, job_id TEXT NOT NULL, created_at INTEGER NOT NULL);
    CREATE TABLE job_unlocks (run_key TEXT PRIMARY KEY, allowed_at INTEGER NOT NULL, used_at INTEGER, reason TEXT,
      expires_at INTEGER);`);
  old.prepare(
    `INSERT INTO jobs (job_id, run_key, command, status, exit_code, stdout_file, stderr_file, attempt_no, started_at)
     VALUES ('kept', 'kept', '["true"]', 'SUCCEEDED', 0, '/x.stdout', '/x.stderr', 1, 1)`,
  ).run();
  old.prepare("INSERT INTO job_keys VALUES ('kept', 'kept', 1)").run();
  old.close();
  const db = openDatabase(oldPath);
  const runner = new BuiltinRunner(db, join(dir.path, "jobs"));
  assert.equal((await runner.status("kept"))?.status, "SUCCEEDED");
  const versions = db.prepare("SELECT key, value FROM schema_meta ORDER BY key").all();
  assert.deepEqual(versions.map((v) => ({ ...v })), [
    { key: "builtin_jobs_schema_version", value: "1" },
    { key: "schema_version", value: String(MIGRATIONS.length) },
  ]);
  db.close();
});

Deno.test("a job read the moment its start returns (no wait for RUNNING) is never taken for LOST", async () => {
  using dir = tempDir();
  const dbPath = join(dir.path, "state.sqlite3");
  const db = openDatabase(dbPath);
  const runner = new BuiltinRunner(db, jobsDirectory(dbPath));
  try {
    // The supervisor may still be inside its exec (through setsid) when the first status read comes.
    const statuses = new Set<string>();
    for (let i = 0; i < 120; i++) {
      const started = await runner.start(`quick-${i}`, ["true"], { strict: false, noWait: true });
      statuses.add(started.status);
      statuses.add((await runner.status(`quick-${i}`))!.status);
    }
    // Let every supervisor finish before the directory goes; they all succeed.
    await eventually("all quick jobs ended", async () => {
      for (let i = 0; i < 120; i++) statuses.add((await runner.status(`quick-${i}`))!.status);
      return !statuses.has("RUNNING") || (await runner.running()).length === 0;
    });
    assert.ok(statuses.has("STARTING"), "no read came before the supervisor started: the test proves nothing");
    assert.ok(!statuses.has("LOST"), `statuses seen: ${[...statuses]}`);
  } finally {
    db.close();
  }
});

/** A runner on a fresh state file in `dir`. */
function runnerIn(dir: string, options: { launchServer?: boolean } = {}) {
  const dbPath = join(dir, "state.sqlite3");
  const db = openDatabase(dbPath);
  return { db, runner: new BuiltinRunner(db, jobsDirectory(dbPath), options) };
}

/** Session (Linux only, else null) and process group of a live process, from /proc or ps. */
function sessionAndGroup(pid: number): { sid: number | null; pgid: number } {
  if (Deno.build.os === "linux") {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return { pgid: Number(fields[2]), sid: Number(fields[3]) };
  }
  const out = new Deno.Command("ps", { args: ["-o", "pgid=", "-p", String(pid)], stdout: "piped" }).outputSync();
  return { pgid: Number(new TextDecoder().decode(out.stdout).trim()), sid: null };
}

Deno.test("starts made together share one supervisor spawn, yet each job is its own process group with its own words", async () => {
  using dir = tempDir();
  const dbPath = join(dir.path, "state.sqlite3");
  const db = openDatabase(dbPath);
  const jobs = jobsDirectory(dbPath);
  const runner = new BuiltinRunner(db, jobs);
  const release = join(dir.path, "release");
  const wait = `while [ ! -e '${release}' ]; do sleep 0.02; done`;
  // Words a shell would mangle, an environment per job, a directory per job, and a program that does
  // not exist in the middle of the batch.
  const awkward = ["", "two words", "--", "-n", "a'b\"c", "$HOME", "line\nbreak", "*"];
  const commands: { key: string; command: string[]; env?: Record<string, string>; cwd?: string }[] = [
    { key: "first", command: ["sh", "-c", `${wait}; printf '%s|' "$0" "$@" "$X"`, ...awkward], env: { X: "x=1 y" } },
    { key: "missing", command: ["no-such-program-here", "arg"] },
    { key: "second", command: ["sh", "-c", `${wait}; pwd; printf '%s' "$X"`], env: { X: "second" }, cwd: "/" },
    { key: "third", command: ["sh", "-c", `${wait}; exit 3`] },
  ];
  try {
    const started = await Promise.all(
      commands.map(({ key, command, env, cwd }) =>
        runner.start(key, command, { strict: false, noWait: true, ...(env ? { env } : {}), ...(cwd ? { cwd } : {}) })
      ),
    );
    assert.ok(started.every((job) => job.accepted));
    const running = ["first", "second", "third"];
    await eventually("the batch's jobs running", async () => {
      for (const key of running) if ((await runner.status(key))?.status !== "RUNNING") return false;
      return true;
    });
    const workers = await Promise.all(running.map(async (key) => (await runner.status(key))!.worker_pid!));
    const groups = workers.map(sessionAndGroup);
    // One spawn: one session for the whole batch (seen where /proc tells). Each job leads its own process group.
    if (Deno.build.os === "linux") assert.equal(new Set(groups.map((g) => g.sid)).size, 1, JSON.stringify(groups));
    assert.deepEqual(groups.map((g) => g.pgid), workers);
    assert.equal(new Set(workers).size, 3);
    // Aborting one job of the batch ends its group only.
    await runner.abort("third", { graceSeconds: 2, reason: "test" });
    assert.ok(!processAlive(workers[2]));
    assert.ok(processAlive(workers[0]) && processAlive(workers[1]), "a sibling of the aborted job died");
    Deno.writeTextFileSync(release, "");
    await eventually("the batch's jobs ended", async () => (await runner.running()).length === 0);
    const first = (await runner.status("first"))!;
    assert.equal(first.status, "SUCCEEDED");
    assert.equal(Deno.readTextFileSync(first.stdout_file), [...awkward, "x=1 y"].map((w) => `${w}|`).join(""));
    const second = (await runner.status("second"))!;
    assert.equal(Deno.readTextFileSync(second.stdout_file), "/\nsecond");
    assert.equal((await runner.status("third"))!.status, "ABORTED");
    const missing = (await runner.status("missing"))!;
    assert.deepEqual([missing.status, missing.exit_code], ["FAILED", -1]);
    assert.match(Deno.readTextFileSync(missing.stderr_file), /cannot execute 'no-such-program-here'/);
  } finally {
    // Even after a failed assertion: no job is left waiting for a release file in a removed directory.
    Deno.writeTextFileSync(release, "");
    await eventually("no job left", async () => (await runner.running()).length === 0, 10).catch(() => {});
    db.close();
  }
});

Deno.test("jobs of one batch with thousands of words each get exactly their own words", async () => {
  using dir = tempDir();
  const { db, runner } = runnerIn(dir.path);
  try {
    const words = (tag: string) => Array.from({ length: 3000 }, (_, i) => `${tag}${i}`);
    // Each job prints its word count, first and last word, and (Linux) its session: one spawn, one session.
    const count = [
      "sh",
      "-c",
      'printf "%s %s %s\\n" "$#" "$1" "${3000}"; cut -s -d" " -f6 /proc/$$/stat 2> /dev/null',
      "x",
    ];
    await Promise.all([
      runner.start("many-a", [...count, ...words("a")], { strict: false, noWait: true }),
      runner.start("many-b", [...count, ...words("b")], { strict: false, noWait: true }),
    ]);
    await eventually("both jobs ended", async () => (await runner.running()).length === 0);
    const sessions = new Set<string>();
    for (const [key, tag] of [["many-a", "a"], ["many-b", "b"]]) {
      const job = (await runner.status(key))!;
      assert.equal(job.status, "SUCCEEDED", key);
      const [printed, session] = Deno.readTextFileSync(job.stdout_file).split("\n");
      assert.equal(printed, `3000 ${tag}0 ${tag}2999`);
      sessions.add(session);
    }
    if (Deno.build.os === "linux") assert.match([...sessions].join(" "), /^\d+$/, "one batch: one session");
  } finally {
    db.close();
  }
});

Deno.test({
  name: "the scripts ignore functions exported in the environment (bash -p): a BASH_FUNC_set cannot break a launch",
  // The exported-function format checked here is that of bash 4.3+ (macOS's bash 3.2 has its own).
  ignore: Deno.build.os !== "linux",
}, async () => {
  using dir = tempDir();
  const { db, runner } = runnerIn(dir.path, { launchServer: true });
  try {
    const baseEnv = {
      ...Deno.env.toObject(),
      "BASH_FUNC_set%%": "() { return 0; }",
      "BASH_FUNC_f%%": "() { echo from-f; }",
    };
    // Two jobs in one turn: one batch, through the launch server; the command still gets the function.
    await Promise.all(
      ["fa", "fb"].map((key) => runner.start(key, ["bash", "-c", "f"], { strict: false, noWait: true, baseEnv })),
    );
    await eventually("both jobs ended", async () => (await runner.running()).length === 0, 20);
    for (const key of ["fa", "fb"]) {
      const job = (await runner.status(key))!;
      assert.equal(job.status, "SUCCEEDED", key);
      assert.equal(Deno.readTextFileSync(job.stdout_file), "from-f\n");
      assert.match(
        Deno.readTextFileSync(job.stdout_file.replace(/\.stdout$/, ".claim")),
        /^\d+ [^@\s]\S*( @\d+)?\n$/,
        "the server launched it (a claim with its mark, and on Linux the supervisor's start)",
      );
    }
  } finally {
    db.close();
  }
});

Deno.test({
  name: "a store fault while recording a failed launch reaches the start's caller, not nowhere",
  // The spawn must fail: Linux refuses any word over 128 KiB (elsewhere only the total counts).
  ignore: Deno.build.os !== "linux",
}, async () => {
  using dir = tempDir();
  const { db, runner } = runnerIn(dir.path);
  // No exec can carry a 200 KB word (a word's limit is 128 KiB on Linux): the spawn fails, and the
  // failure is recorded in the store, which is closed by then (standing in for a store that fails).
  const started = runner.start("too-big", ["true", "x".repeat(200_000)], { strict: false, noWait: true });
  db.close();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const never = new Promise<"never settled">((resolve) => timer = setTimeout(() => resolve("never settled"), 10_000));
  const outcome = await Promise.race([started.then(() => "resolved", (error) => error), never]);
  clearTimeout(timer);
  assert.ok(outcome instanceof Error, `the start ${outcome}`);
  // The spawn did fail (its reason is in the job's stderr file, written before the store write).
  const [stderr] = [...Deno.readDirSync(jobsDirectory(join(dir.path, "state.sqlite3")))]
    .filter((entry) => entry.name.endsWith(".stderr"));
  const text = Deno.readTextFileSync(join(jobsDirectory(join(dir.path, "state.sqlite3")), stderr.name));
  assert.match(text, /cannot start the job: .*Argument list too long/);
});

Deno.test({
  name: "an old aborted job whose supervisor's PID was reused: a read never signals the process that has it now",
  ignore: Deno.build.os !== "linux" || !["/usr/bin/setsid", "/bin/setsid"].some(pathExists),
  async fn() {
    using dir = tempDir();
    const dbPath = join(dir.path, "state.sqlite3");
    const db = openDatabase(dbPath);
    const jobs = jobsDirectory(dbPath);
    const runner = new BuiltinRunner(db, jobs);
    // Each stands for a process that now has an aborted job's old supervisor PID: the leader of a
    // group of its own (setsid), as another job's supervisor is.
    // The job's own one is a shell that shows the job id on its command line, as a supervisor does.
    const leader = (...args: string[]) => new Deno.Command("setsid", { args, stdout: "null", stderr: "null" }).spawn();
    const abortedLongAgo = (jobId: string, pid: number, claimedAt: Date) => {
      const hourAgo = nowSeconds() - 3600;
      runner.table.insertJob(
        row(jobId, { status: "ABORTED", worker_pid: pid, aborted_at: hourAgo, finished_at: hourAgo }),
      );
      Deno.writeTextFileSync(join(jobs, `${jobId}.abort`), `${hourAgo + 5}\n`); // its SIGKILL long overdue
      Deno.writeTextFileSync(join(jobs, `${jobId}.claim`), `${pid}\n`);
      Deno.utimeSync(join(jobs, `${jobId}.claim`), claimedAt, claimedAt);
    };
    const stranger = leader("sleep", "60");
    const ours = leader("sh", "-c", "sleep 60; :", "recent");
    try {
      for (const pid of [stranger.pid, ours.pid]) {
        await eventually(
          "it leads its own group",
          () => Deno.readTextFileSync(`/proc/${pid}/stat`).split(") ")[1].split(" ")[2] === String(pid),
        );
      }
      // Claimed an hour before the stranger started: the PID is not the job's any more.
      abortedLongAgo("old", stranger.pid, new Date(Date.now() - 3600_000));
      assert.equal((await runner.status("old"))?.status, "ABORTED");
      await new Promise((resolve) => setTimeout(resolve, 300));
      assert.ok(processAlive(stranger.pid), "the stranger was not signalled");
      // The same, claimed after it started: that group is the job's, and its overdue SIGKILL is sent.
      abortedLongAgo("recent", ours.pid, new Date());
      assert.equal((await runner.status("recent"))?.status, "ABORTED");
      await eventually("the job's own group is killed", () => !processAlive(ours.pid), 10);
    } finally {
      for (const child of [stranger, ours]) {
        try {
          child.kill("SIGKILL");
        } catch { /* gone */ }
        await child.status;
      }
      db.close();
    }
  },
});

Deno.test("a start whose job row cannot be stored (another process's write lock) leaves no .launch file", async () => {
  using dir = tempDir();
  const dbPath = join(dir.path, "state.sqlite3");
  const db = openDatabase(dbPath);
  const jobs = jobsDirectory(dbPath);
  const runner = new BuiltinRunner(db, jobs);
  // An admin's sqlite3 shell in a write transaction, on its own connection.
  const admin = new DatabaseSync(dbPath);
  admin.exec("BEGIN IMMEDIATE");
  db.exec("PRAGMA busy_timeout = 0");
  const launches = () => [...Deno.readDirSync(jobs)].filter((entry) => entry.name.endsWith(".launch")).length;
  try {
    await assert.rejects(runner.start("k", ["true"], { noWait: true }), /database is locked/);
    // Before: the start's .launch stayed, with no row ever to point to it (one per try of the start).
    assert.equal(launches(), 0);
  } finally {
    admin.exec("ROLLBACK");
    admin.close();
  }
  const started = await runner.start("k", ["true"], { sync: true });
  assert.equal(started.status, "SUCCEEDED");
  assert.equal(launches(), 1, "the stored job's .launch stays (a relaunch reads it)");
  db.close();
});

Deno.test("a reader that records unless locked answers what a job's files show under another process's write lock", async () => {
  using dir = tempDir();
  const dbPath = join(dir.path, "state.sqlite3");
  const db = openDatabase(dbPath);
  const jobs = jobsDirectory(dbPath);
  const runner = new BuiltinRunner(db, jobs, { recordUnlessLocked: true });
  // A job that ended while nobody read it: its result is in its files only.
  runner.table.insertJob(row("ended", { status: "RUNNING" }));
  Deno.writeTextFileSync(jobFiles(jobs, "ended").exit, "0\n");
  const admin = new DatabaseSync(dbPath);
  admin.exec("BEGIN IMMEDIATE");
  db.exec("PRAGMA busy_timeout = 0");
  try {
    assert.equal((await runner.status("ended"))?.status, "SUCCEEDED", "what the files show");
    assert.equal(runner.table.job("ended")?.status, "RUNNING", "not recorded under the lock");
  } finally {
    admin.exec("ROLLBACK");
  }
  // A failure that is not the lock is thrown, not taken for an unrecorded read.
  admin.exec("CREATE TRIGGER refuse BEFORE UPDATE ON jobs BEGIN SELECT RAISE(ABORT, 'refused'); END");
  assert.throws(() => runner.row({ runKey: "ended" }), /refused/);
  admin.exec("DROP TRIGGER refuse");
  admin.close();
  // The next read records it.
  assert.equal((await runner.status("ended"))?.status, "SUCCEEDED");
  assert.equal(runner.table.job("ended")?.status, "SUCCEEDED", "recorded once the lock went");
  db.close();
});

Deno.test("an abort file without its abort's record: a job whose command never started is ABORTED, one whose command started (or may have) is LOST", async () => {
  using dir = tempDir();
  const dbPath = join(dir.path, "state.sqlite3");
  const db = openDatabase(dbPath);
  const jobs = jobsDirectory(dbPath);
  const runner = new BuiltinRunner(db, jobs);
  const abortedAt = new Date(Date.now() - 60_000);
  // Aborts that wrote their deadline (and no record file: a disk full for it) and stopped before their record.
  for (
    const [jobId, fields] of [
      ["unstarted", { status: "STARTING" }],
      ["started", { target_pid: 999_999 }],
      ["forked", { status: "STARTING" }],
    ] as const
  ) {
    runner.table.insertJob(row(jobId, fields));
    const { abort, claim, abortRecord, unstarted } = jobFiles(jobs, jobId);
    Deno.writeTextFileSync(abort, `${nowSeconds() + 5}\n`);
    Deno.utimeSync(abort, abortedAt, abortedAt);
    // Its supervisor came, found the abort file (or not), and is gone: this test process's PID is no supervisor.
    Deno.writeTextFileSync(claim, `${Deno.pid}\n`);
    // The one that found it said so as it quit.
    if (jobId === "unstarted") Deno.writeTextFileSync(unstarted, "");
    assert.equal(pathExists(abortRecord), false);
  }
  const unstarted = await runner.status("unstarted");
  const at = Math.floor(abortedAt.getTime() / 1000);
  assert.deepEqual(
    [unstarted?.status, unstarted?.aborted_at, unstarted?.finished_at, unstarted?.abort_reason, unstarted?.exit_code],
    ["ABORTED", at, at, null, null],
    "the abort file's time, no reason",
  );
  // Its command started (a PID recorded): the abort did not keep it from running, and its result is unknown.
  assert.equal((await runner.status("started"))?.status, "LOST");
  // No command PID, and its supervisor did not say that it quit at the abort: it may have been killed
  // between forking the command and writing its PID, and that command ran.
  assert.equal((await runner.status("forked"))?.status, "LOST");
  db.close();
});

Deno.test("unlock (the Executor's): false for an unknown key; one for a finished key lets one strict start make a job", async () => {
  using dir = tempDir();
  const dbPath = join(dir.path, "state.sqlite3");
  const db = openDatabase(dbPath);
  const runner = new BuiltinRunner(db, jobsDirectory(dbPath));
  const options = { reason: "earlier run's key", ttlSec: 3600 };
  assert.equal(await runner.unlock("none", options), false);
  runner.table.insertJob(row("done", { status: "SUCCEEDED", exit_code: 0, finished_at: nowSeconds() }));
  const refused = await runner.start("done", ["true"], { strict: true, noWait: true });
  assert.deepEqual([refused.accepted, refused.job_id], [false, "done"], "strict, no unlock: the finished job");
  assert.equal(await runner.unlock("done", options), true);
  const made = await runner.start("done", ["true"], { strict: true, noWait: true });
  assert.deepEqual([made.accepted, made.strict_override_used, made.rerun_reason], [true, true, "earlier run's key"]);
  await eventually("the new job ends", async () => (await runner.status("done"))?.status === "SUCCEEDED");
  const again = await runner.start("done", ["true"], { strict: true, noWait: true });
  assert.deepEqual([again.accepted, again.job_id], [false, made.job_id], "the unlock is used up");
  db.close();
});
