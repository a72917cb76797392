/** Schema migrations, applied in order; `schema_meta.schema_version` counts how many ran. Never edit one that shipped. */
export const MIGRATIONS: readonly string[] = [
  // 1: the built-in job runner (orchesjob's model: jobs, the current job of each run key, strict unlocks).
  `
  CREATE TABLE jobs (
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
  CREATE INDEX jobs_by_run_key ON jobs (run_key, attempt_no);
  -- The active job statuses (ACTIVE_JOB_STATUSES) as they were when this shipped.
  CREATE INDEX jobs_active ON jobs (status) WHERE status IN ('STARTING', 'RUNNING');
  CREATE TABLE job_keys (run_key TEXT PRIMARY KEY, job_id TEXT NOT NULL, created_at INTEGER NOT NULL);
  CREATE TABLE job_unlocks (
    run_key TEXT PRIMARY KEY,
    allowed_at INTEGER NOT NULL,
    used_at INTEGER,
    reason TEXT,
    expires_at INTEGER
  );
  `,
  // 2: flow runs, bound to their normalized definition and executor, and the state of each step.
  `
  CREATE TABLE flow_runs (
    run_key TEXT PRIMARY KEY,
    flow_id TEXT NOT NULL,
    status TEXT NOT NULL,
    definition TEXT NOT NULL,
    definition_hash TEXT NOT NULL,
    flow_file TEXT,
    executor TEXT NOT NULL,
    started_at REAL NOT NULL,
    finished_at REAL,
    error TEXT
  );
  CREATE TABLE flow_steps (
    run_key TEXT NOT NULL REFERENCES flow_runs (run_key) ON DELETE CASCADE,
    step_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    status TEXT NOT NULL,
    attempt_no INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL,
    started_at REAL,
    finished_at REAL,
    error TEXT,
    orchesjob_status TEXT,
    PRIMARY KEY (run_key, step_id)
  );
  `,
  // 3: retry rounds: where each step's current round of attempts began, and who retried what when.
  `
  ALTER TABLE flow_steps ADD COLUMN attempt_base INTEGER NOT NULL DEFAULT 0;
  CREATE TABLE flow_rounds (
    run_key TEXT NOT NULL REFERENCES flow_runs (run_key) ON DELETE CASCADE,
    round INTEGER NOT NULL,
    at REAL NOT NULL,
    steps TEXT NOT NULL,
    user TEXT,
    PRIMARY KEY (run_key, round)
  );
  `,
];
