/**
 * The built-in job runner's tables (jobs, job_keys, job_unlocks): their migrations and their SQL.
 * They live in the flow's SQLite file but belong to the runner; no process control here.
 */
import { ACTIVE_JOB_STATUSES, type Job, type JobStatus } from "../../domain/mod.ts";
import { isoLocal } from "../../shared/mod.ts";
import {
  changed,
  checkMigrated,
  type Database,
  isReadOnly,
  migrate,
  prepared,
  type SchemaPart,
  sqlList,
} from "../../store/mod.ts";
import { JobError } from "../executor.ts";

/**
 * Applied in order, counted by `builtin_jobs_schema_version`. Never edit one that shipped. The first
 * was the state file's own migration 1 before the tables moved here, hence IF NOT EXISTS.
 */
const JOB_MIGRATIONS: readonly string[] = [
  // 1: orchesjob's model: jobs, the current job of each run key, strict unlocks.
  `
  CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY,
    run_key TEXT NOT NULL,
    command TEXT NOT NULL,
    worker_pid INTEGER,
    target_pid INTEGER,
    status TEXT NOT NULL,
    exit_code INTEGER,
    stdout_file TEXT NOT NULL,
    stderr_file TEXT NOT NULL,
    attempt_no INTEGER NOT NULL,
    rerun_of_job_id TEXT,
    rerun_reason TEXT,
    abort_reason TEXT,
    started_at INTEGER NOT NULL,
    finished_at INTEGER,
    updated_at INTEGER,
    aborted_at INTEGER
  );
  CREATE INDEX IF NOT EXISTS jobs_by_run_key ON jobs (run_key, attempt_no);
  -- The active job statuses (ACTIVE_JOB_STATUSES) as they were when this shipped.
  CREATE INDEX IF NOT EXISTS jobs_active ON jobs (status) WHERE status IN ('STARTING', 'RUNNING');
  CREATE TABLE IF NOT EXISTS job_keys (run_key TEXT PRIMARY KEY, job_id TEXT NOT NULL, created_at INTEGER NOT NULL);
  CREATE TABLE IF NOT EXISTS job_unlocks (
    run_key TEXT PRIMARY KEY,
    allowed_at INTEGER NOT NULL,
    used_at INTEGER,
    reason TEXT,
    expires_at INTEGER
  );
  `,
];

export interface JobRow {
  job_id: string;
  run_key: string;
  command: string;
  worker_pid: number | null;
  target_pid: number | null;
  status: string;
  exit_code: number | null;
  stdout_file: string;
  stderr_file: string;
  attempt_no: number;
  rerun_of_job_id: string | null;
  rerun_reason: string | null;
  abort_reason: string | null;
  started_at: number;
  finished_at: number | null;
  updated_at: number | null;
  aborted_at: number | null;
}

export interface UnlockRow {
  run_key: string;
  allowed_at: number;
  used_at: number | null;
  reason: string | null;
  expires_at: number | null;
}

/**
 * The runner's tables as a part of the state file's schema, for whoever opens the file for writing to
 * migrate with its own (see Session): a {@link JobTable} then only reads that they are up to date.
 */
export const JOB_TABLES: SchemaPart = { key: "builtin_jobs_schema_version", migrations: JOB_MIGRATIONS };

const ACTIVE = sqlList(ACTIVE_JOB_STATUSES);

export class JobTable {
  constructor(readonly db: Database) {
    // A state file opened read-only is read as it is, never migrated.
    if (isReadOnly(db)) checkMigrated(db, JOB_TABLES.key, JOB_TABLES.migrations);
    else migrate(db, JOB_TABLES.key, JOB_TABLES.migrations);
  }

  currentJob(runKey: string): JobRow | undefined {
    return prepared(this.db, "SELECT jobs.* FROM job_keys JOIN jobs USING (job_id) WHERE job_keys.run_key = ?")
      .get(runKey) as JobRow | undefined;
  }

  job(jobId: string): JobRow | undefined {
    return prepared(this.db, "SELECT * FROM jobs WHERE job_id = ?").get(jobId) as JobRow | undefined;
  }

  jobsOfKey(runKey: string): JobRow[] {
    return prepared(this.db, "SELECT * FROM jobs WHERE run_key = ? ORDER BY attempt_no DESC, started_at DESC")
      .all(runKey) as unknown as JobRow[];
  }

  activeJobs(): JobRow[] {
    return prepared(this.db, `SELECT * FROM jobs WHERE status IN ${ACTIVE} ORDER BY started_at, rowid`)
      .all() as unknown as JobRow[];
  }

  maxAttempt(runKey: string): number {
    const row = prepared(this.db, "SELECT MAX(attempt_no) AS n FROM jobs WHERE run_key = ?").get(runKey) as {
      n: number | null;
    };
    return row.n ?? 0;
  }

  insertJob(row: JobRow): void {
    prepared(
      this.db,
      `INSERT INTO jobs (job_id, run_key, command, worker_pid, target_pid, status, exit_code, stdout_file, stderr_file,
        attempt_no, rerun_of_job_id, rerun_reason, abort_reason, started_at, finished_at, updated_at, aborted_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ).run(
      row.job_id,
      row.run_key,
      row.command,
      row.worker_pid,
      row.target_pid,
      row.status,
      row.exit_code,
      row.stdout_file,
      row.stderr_file,
      row.attempt_no,
      row.rerun_of_job_id,
      row.rerun_reason,
      row.abort_reason,
      row.started_at,
      row.finished_at,
      row.updated_at,
      row.aborted_at,
    );
    prepared(
      this.db,
      "INSERT INTO job_keys (run_key, job_id, created_at) VALUES (?, ?, ?) ON CONFLICT (run_key) DO UPDATE SET job_id = excluded.job_id",
    ).run(row.run_key, row.job_id, row.started_at);
  }

  /**
   * Updates a job only while it is still active, so a late writer never overwrites ABORTED, LOST or a
   * result. Returns whether the row changed.
   */
  updateActive(jobId: string, fields: Partial<Omit<JobRow, "job_id">>): boolean {
    const names = Object.keys(fields);
    if (names.length === 0) return false;
    const sets = names.map((name) => `${name} = ?`).join(", ");
    const values = names.map((name) => (fields as Record<string, string | number | null>)[name]);
    return changed(
      prepared(this.db, `UPDATE jobs SET ${sets} WHERE job_id = ? AND status IN ${ACTIVE}`).run(...values, jobId),
    );
  }

  unlock(runKey: string): UnlockRow | undefined {
    return prepared(this.db, "SELECT * FROM job_unlocks WHERE run_key = ?").get(runKey) as UnlockRow | undefined;
  }

  putUnlock(row: UnlockRow): void {
    prepared(
      this.db,
      `INSERT INTO job_unlocks (run_key, allowed_at, used_at, reason, expires_at) VALUES (?, ?, NULL, ?, ?)
       ON CONFLICT (run_key) DO UPDATE SET allowed_at = excluded.allowed_at, used_at = NULL,
         reason = excluded.reason, expires_at = excluded.expires_at`,
    ).run(row.run_key, row.allowed_at, row.reason, row.expires_at);
  }

  markUnlockUsed(runKey: string, at: number): void {
    prepared(this.db, "UPDATE job_unlocks SET used_at = ? WHERE run_key = ?").run(at, runKey);
  }

  /** Terminal jobs, oldest first, for `clean`. The selection time is finished_at, else started_at. */
  terminalJobs(runKey: string | undefined): JobRow[] {
    const where = runKey === undefined ? "" : "AND run_key = ?";
    const args = runKey === undefined ? [] : [runKey];
    return prepared(this.db, `SELECT * FROM jobs WHERE status NOT IN ${ACTIVE} ${where} ORDER BY started_at, rowid`)
      .all(...args) as unknown as JobRow[];
  }

  /** Deletes a job row, and its run key's pointer when it was the key's current job. */
  deleteJob(job: JobRow): void {
    prepared(this.db, "DELETE FROM job_keys WHERE run_key = ? AND job_id = ?").run(job.run_key, job.job_id);
    prepared(this.db, "DELETE FROM jobs WHERE job_id = ?").run(job.job_id);
  }
}

/** A stored row as orchesjob's 25-field job object. */
export function toJob(row: JobRow): Job {
  const pidKind = row.target_pid !== null ? "target" : row.worker_pid !== null ? "worker" : null;
  return {
    job_id: row.job_id,
    run_key: row.run_key,
    command: commandOf(row),
    pid: row.target_pid ?? row.worker_pid,
    pid_kind: pidKind,
    worker_pid: row.worker_pid,
    target_pid: row.target_pid,
    status: row.status as JobStatus,
    exit_code: row.exit_code,
    stdout_file: row.stdout_file,
    stderr_file: row.stderr_file,
    attempt_no: row.attempt_no,
    rerun_of_job_id: row.rerun_of_job_id,
    rerun_reason: row.rerun_reason,
    abort_reason: row.abort_reason,
    started_at: row.started_at,
    started_at_iso: isoLocal(row.started_at)!,
    finished_at: row.finished_at,
    finished_at_iso: isoLocal(row.finished_at),
    updated_at: row.updated_at,
    updated_at_iso: isoLocal(row.updated_at),
    aborted_at: row.aborted_at,
    aborted_at_iso: isoLocal(row.aborted_at),
  };
}

/** The job's stored command (a JSON array of strings); a JobError (damaged) naming the job when it is not. */
function commandOf(row: JobRow): string[] {
  let command: unknown;
  try {
    command = JSON.parse(row.command);
  } catch (error) {
    throw damagedJob(row, `is not JSON (${(error as Error).message})`);
  }
  if (!Array.isArray(command) || !command.every((part) => typeof part === "string")) {
    throw damagedJob(row, "is not a list of strings");
  }
  return command;
}

function damagedJob(row: JobRow, reason: string): JobError {
  return new JobError(
    `job ${row.job_id} (run key ${JSON.stringify(row.run_key)}) is damaged in the state file: jobs.command ${reason}`,
    "damaged",
  );
}
