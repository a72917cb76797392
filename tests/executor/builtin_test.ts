/** The built-in runner's reconciliation of what supervisors leave behind (or do not). */
import assert from "node:assert/strict";
import { join } from "node:path";
import { BuiltinRunner, jobsDirectory } from "../../src/executor/builtin/runner.ts";
import { nowSeconds } from "../../src/shared/time.ts";
import { openDatabase } from "../../src/store/db.ts";
import type { JobRow } from "../../src/store/jobs.ts";
import { tempDir } from "../helpers.ts";

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
  runner.store.insertJob(row("reused", { worker_pid: Deno.pid }));
  const job = await runner.status("reused");
  assert.equal(job?.status, "LOST");
  assert.equal(typeof job?.finished_at, "number");
  db.close();
});

Deno.test("a STARTING job whose supervisor never appeared is LOST only after a grace period", async () => {
  using dir = tempDir();
  const dbPath = join(dir.path, "state.sqlite3");
  const db = openDatabase(dbPath);
  const runner = new BuiltinRunner(db, jobsDirectory(dbPath));
  runner.store.insertJob(row("fresh", { status: "STARTING" }));
  runner.store.insertJob(row("stale", { status: "STARTING", started_at: nowSeconds() - 3600 }));
  assert.equal((await runner.status("fresh"))?.status, "STARTING", "its starter may still be launching it");
  assert.equal((await runner.status("stale"))?.status, "LOST");
  assert.deepEqual((await runner.running()).map((job) => job.job_id), ["fresh"]);
  db.close();
});

Deno.test("a result file written by the supervisor wins over a dead PID, and ABORTED is never overwritten", async () => {
  using dir = tempDir();
  const dbPath = join(dir.path, "state.sqlite3");
  const db = openDatabase(dbPath);
  const jobs = jobsDirectory(dbPath);
  const runner = new BuiltinRunner(db, jobs);
  runner.store.insertJob(row("done", { worker_pid: 999_999_999 }));
  Deno.writeTextFileSync(join(jobs, "done.exit"), "0\n");
  assert.equal((await runner.status("done"))?.status, "SUCCEEDED");
  runner.store.insertJob(row("aborted", { status: "ABORTED", worker_pid: 999_999_999 }));
  Deno.writeTextFileSync(join(jobs, "aborted.exit"), "-15\n");
  const aborted = await runner.status("aborted");
  assert.equal(aborted?.status, "ABORTED");
  assert.equal(aborted?.exit_code, null);
  db.close();
});
