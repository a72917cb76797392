/**
 * SQL for flow runs and their steps (the engine's RunRepository). Every write is guarded by the state
 * it expects (e.g. "only if the step is still RUNNING on attempt n"), so two writers racing (a loop
 * and a cancel) cannot undo each other; a write that lost the race changes nothing and reports false.
 * A run's definition is stored as the normalized JSON it is handed and returned as data, unparsed.
 */
import {
  type ExecutorSpec,
  type Job,
  LIVE_RUN_STATUSES,
  type NormalizedFlow,
  type RunStatus,
  type StepState,
  type StepStatus,
  type StoredRun,
} from "../domain/mod.ts";
import { type Database, transaction } from "./db.ts";
import { changed, sqlList } from "./sql.ts";

interface RunRow {
  run_key: string;
  flow_id: string;
  status: RunStatus;
  definition: string;
  definition_hash: string;
  flow_file: string | null;
  executor: string;
  started_at: number;
  finished_at: number | null;
  error: string | null;
}

interface StepRow {
  step_id: string;
  status: StepStatus;
  attempt_no: number;
  next_attempt_at: number | null;
  started_at: number | null;
  finished_at: number | null;
  error: string | null;
  orchesjob_status: string | null;
}

type Value = string | number | null;

/** Step state fields and their columns. */
const STEP_COLUMNS = {
  status: "status",
  attemptNo: "attempt_no",
  nextAttemptAt: "next_attempt_at",
  startedAt: "started_at",
  finishedAt: "finished_at",
  error: "error",
  job: "orchesjob_status",
} as const satisfies Record<keyof Omit<StepState, "id">, string>;

const LIVE_RUNS = sqlList(LIVE_RUN_STATUSES);

export class RunStore {
  constructor(readonly db: Database) {}

  /** Creates the run (PENDING, every step PENDING) unless it exists; returns the stored run either way. */
  create(
    run: {
      runKey: string;
      definition: NormalizedFlow;
      definitionHash: string;
      flowFile: string | null;
      executor: ExecutorSpec;
    },
    now: number,
  ): StoredRun {
    return transaction(this.db, () => {
      const existing = this.load(run.runKey);
      if (existing) return existing;
      this.db.prepare(
        `INSERT INTO flow_runs (run_key, flow_id, status, definition, definition_hash, flow_file, executor, started_at)
         VALUES (?, ?, 'PENDING', ?, ?, ?, ?, ?)`,
      ).run(
        run.runKey,
        run.definition.flow_id,
        JSON.stringify(run.definition),
        run.definitionHash,
        run.flowFile,
        JSON.stringify(run.executor),
        now,
      );
      const insert = this.db.prepare(
        "INSERT INTO flow_steps (run_key, step_id, position, status) VALUES (?, ?, ?, 'PENDING')",
      );
      run.definition.steps.forEach((step, position) => insert.run(run.runKey, step.id, position));
      return this.load(run.runKey)!;
    });
  }

  /**
   * The step run-key prefixes ("run:step:") of flow runs that have not finished: the jobs under them
   * are still the runs' record of what started, which `job clean` must not delete.
   */
  unfinishedStepKeyPrefixes(): string[] {
    const rows = this.db.prepare(
      `SELECT s.run_key || ':' || s.step_id || ':' AS prefix FROM flow_steps s JOIN flow_runs r USING (run_key)
       WHERE r.status IN ${sqlList(LIVE_RUN_STATUSES)}`,
    ).all() as { prefix: string }[];
    return rows.map((row) => row.prefix);
  }

  load(runKey: string): StoredRun | undefined {
    const run = this.db.prepare("SELECT * FROM flow_runs WHERE run_key = ?").get(runKey) as RunRow | undefined;
    if (!run) return undefined;
    const steps = this.db.prepare("SELECT * FROM flow_steps WHERE run_key = ? ORDER BY position").all(
      runKey,
    ) as unknown as StepRow[];
    return {
      runKey: run.run_key,
      status: run.status,
      definition: JSON.parse(run.definition) as NormalizedFlow,
      definitionHash: run.definition_hash,
      flowFile: run.flow_file,
      executor: JSON.parse(run.executor) as ExecutorSpec,
      startedAt: run.started_at,
      finishedAt: run.finished_at,
      error: run.error,
      steps: steps.map(toStepState),
    };
  }

  runStatus(runKey: string): RunStatus | undefined {
    const row = this.db.prepare("SELECT status FROM flow_runs WHERE run_key = ?").get(runKey) as
      | { status: RunStatus }
      | undefined;
    return row?.status;
  }

  updateRun(
    runKey: string,
    guard: { from: readonly RunStatus[] },
    change: { status: RunStatus; finishedAt?: number; error?: string | null },
  ): boolean {
    const sets: string[] = ["status = ?"];
    const values: Value[] = [change.status];
    if (change.finishedAt !== undefined) sets.push("finished_at = ?"), values.push(change.finishedAt);
    if (change.error !== undefined) sets.push("error = ?"), values.push(change.error);
    return changed(
      this.db.prepare(`UPDATE flow_runs SET ${sets.join(", ")} WHERE run_key = ? AND status IN ${sqlList(guard.from)}`)
        .run(...values, runKey),
    );
  }

  updateStep(
    runKey: string,
    stepId: string,
    guard: { from: readonly StepStatus[]; attemptNo?: number; evenIfRunEnded?: boolean },
    change: Partial<Omit<StepState, "id">>,
  ): boolean {
    const names = Object.keys(change) as (keyof typeof STEP_COLUMNS)[];
    if (names.length === 0) return false;
    const values = names.map((name): Value => {
      const value = change[name];
      return name === "job" ? (value === null ? null : JSON.stringify(value)) : (value as Value | undefined) ?? null;
    });
    const conditions = ["run_key = ?", "step_id = ?", `status IN ${sqlList(guard.from)}`];
    const args: Value[] = [runKey, stepId];
    if (guard.attemptNo !== undefined) {
      conditions.push("attempt_no = ?");
      args.push(guard.attemptNo);
    }
    if (!guard.evenIfRunEnded) {
      conditions.push(`(SELECT status FROM flow_runs r WHERE r.run_key = flow_steps.run_key) IN ${LIVE_RUNS}`);
    }
    const sets = names.map((name) => `${STEP_COLUMNS[name]} = ?`).join(", ");
    return changed(
      this.db.prepare(`UPDATE flow_steps SET ${sets} WHERE ${conditions.join(" AND ")}`).run(...values, ...args),
    );
  }

  /**
   * In one transaction: the run from `run.from` to `run.to` (keeping an earlier end time), and its
   * steps in `steps.from` to `steps.to` with `reason`. Returns whether the run was in `run.from`.
   */
  cancel(
    runKey: string,
    transitions: {
      run: { from: readonly RunStatus[]; to: RunStatus };
      steps: { from: readonly StepStatus[]; to: StepStatus };
    },
    at: number,
    reason: string,
  ): boolean {
    const { run, steps } = transitions;
    return transaction(this.db, () => {
      const moved = changed(
        this.db.prepare(
          `UPDATE flow_runs SET status = ?, finished_at = COALESCE(finished_at, ?)
           WHERE run_key = ? AND status IN ${sqlList(run.from)}`,
        ).run(run.to, at, runKey),
      );
      if (!moved) return false;
      this.db.prepare(
        `UPDATE flow_steps SET status = ?, finished_at = ?, error = ? WHERE run_key = ? AND status IN ${
          sqlList(steps.from)
        }`,
      ).run(steps.to, at, reason, runKey);
      return true;
    });
  }
}

function toStepState(row: StepRow): StepState {
  return {
    id: row.step_id,
    status: row.status,
    attemptNo: row.attempt_no,
    nextAttemptAt: row.next_attempt_at,
    startedAt: row.started_at,
    finishedAt: row.finished_at,
    error: row.error,
    job: row.orchesjob_status === null ? null : JSON.parse(row.orchesjob_status) as Job,
  };
}
