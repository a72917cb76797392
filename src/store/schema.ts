/** Schema migrations, applied in order; `schema_meta.schema_version` counts how many ran. Never edit one that shipped. */
export const MIGRATIONS: readonly string[] = [
  // 1: was the built-in job runner's tables; they now migrate with the runner
  // (src/executor/builtin/job_table.ts), which creates them if this file does not have them yet.
  "SELECT 1",
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
  // 4: failing executor calls about a step's current attempt (JSON), null while the executor answers.
  "ALTER TABLE flow_steps ADD COLUMN executor_error TEXT",
  // 5: the working directory and environment of a run's first start (JSON), which its steps run with.
  "ALTER TABLE flow_runs ADD COLUMN launch TEXT",
  // 6: deferred starts (start --not-before) and the retry delays drawn for each failed attempt.
  `
  ALTER TABLE flow_runs ADD COLUMN not_before REAL;
  ALTER TABLE flow_steps ADD COLUMN retry_history TEXT;
  `,
  // 7: a long definition's text past its first part (flow_runs.definition), in order (definition_text.ts).
  `
  CREATE TABLE flow_definition_parts (
    run_key TEXT NOT NULL REFERENCES flow_runs (run_key) ON DELETE CASCADE,
    part INTEGER NOT NULL,
    text TEXT NOT NULL,
    PRIMARY KEY (run_key, part)
  );
  `,
];

/**
 * The oldest schema version that a read-only connection reads as it is, unmigrated: every migration
 * after it only adds what the readers do without when it is missing (7: a table of definition parts,
 * which a file of version 6 never needed, see RunStore). Why readers must not migrate: after an
 * upgrade, runs of the previous release are still in flight; `status`, `list` and the other readers
 * must show them, and must not write the file, which the previous release then refuses as newer (a
 * rollback). A migration that readers cannot do without raises this to its own version.
 */
export const READABLE_FROM = 6;
