/**
 * SQL for flow runs and their steps (the engine's RunRepository). Every write is guarded by the state
 * it expects (e.g. "only if the step is still RUNNING on attempt n"), so two writers racing (a loop
 * and a cancel) cannot undo each other; a write that lost the race changes nothing and reports false.
 * A run's definition is stored as the normalized JSON it is handed and returned as data, parsed on request.
 */
import {
  type ExecutorFault,
  type ExecutorSpec,
  type Job,
  LIVE_RUN_STATUSES,
  neverStartedStep,
  type NormalizedFlow,
  type RetryRecord,
  type RetryRound,
  type RunLaunch,
  type RunStatus,
  type StepState,
  type StepStatus,
  type StoredRun,
} from "../domain/mod.ts";
import { type Database, prepared, transaction } from "./db.ts";
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
  not_before: number | null;
  finished_at: number | null;
  error: string | null;
  launch: string | null;
}

interface StepRow {
  step_id: string;
  status: StepStatus;
  attempt_no: number;
  attempt_base: number;
  next_attempt_at: number | null;
  started_at: number | null;
  finished_at: number | null;
  error: string | null;
  orchesjob_status: string | null;
  retry_history: string | null;
  executor_error: string | null;
}

type Value = string | number | null;

/** Which runs `list` and `clean` select; every field narrows the selection. */
export interface RunFilter {
  statuses?: readonly RunStatus[];
  flowId?: string;
  /** Started at or after (epoch seconds). */
  startedSince?: number;
  /** Finished before (epoch seconds); unfinished runs never match. */
  finishedBefore?: number;
  /** At most this many, newest first. */
  limit?: number;
}

/** Step state fields and their columns; the ones holding JSON are listed in JSON_FIELDS. */
const STEP_COLUMNS = {
  status: "status",
  attemptNo: "attempt_no",
  attemptBase: "attempt_base",
  nextAttemptAt: "next_attempt_at",
  startedAt: "started_at",
  finishedAt: "finished_at",
  error: "error",
  job: "orchesjob_status",
  retryHistory: "retry_history",
  executorError: "executor_error",
} as const satisfies Record<keyof Omit<StepState, "id">, string>;

const LIVE_RUNS = sqlList(LIVE_RUN_STATUSES);
const JSON_FIELDS: ReadonlySet<string> = new Set(["job", "retryHistory", "executorError"]);

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
      notBefore?: number | null;
      launch?: RunLaunch;
    },
    now: number,
  ): StoredRun {
    return transaction(this.db, () => {
      const existing = this.load(run.runKey);
      if (existing) return existing;
      const definition = JSON.stringify(run.definition);
      prepared(
        this.db,
        `INSERT INTO flow_runs
           (run_key, flow_id, status, definition, definition_hash, flow_file, executor, started_at, launch, not_before)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ).run(
        run.runKey,
        run.definition.flow_id,
        run.notBefore === undefined || run.notBefore === null ? "PENDING" : "SCHEDULED",
        definition,
        run.definitionHash,
        run.flowFile,
        JSON.stringify(run.executor),
        now,
        run.launch ? JSON.stringify(run.launch) : null,
        run.notBefore ?? null,
      );
      const insert = prepared(
        this.db,
        "INSERT INTO flow_steps (run_key, step_id, position, status) VALUES (?, ?, ?, 'PENDING')",
      );
      run.definition.steps.forEach((step, position) => insert.run(run.runKey, step.id, position));
      // What was just inserted, without reading a large run back (its peak memory counts for its driver).
      return {
        runKey: run.runKey,
        status: run.notBefore === undefined || run.notBefore === null ? "PENDING" : "SCHEDULED",
        notBefore: run.notBefore ?? null,
        definition: () => JSON.parse(definition) as NormalizedFlow,
        definitionHash: run.definitionHash,
        flowFile: run.flowFile,
        executor: run.executor,
        startedAt: now,
        finishedAt: null,
        error: null,
        steps: run.definition.steps.map((step) => neverStartedStep(step.id)),
        rounds: [],
        ...(run.launch ? { launch: run.launch } : {}),
      };
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
    const run = prepared(this.db, "SELECT * FROM flow_runs WHERE run_key = ?").get(runKey) as RunRow | undefined;
    if (!run) return undefined;
    const steps = prepared(this.db, "SELECT * FROM flow_steps WHERE run_key = ? ORDER BY position").all(
      runKey,
    ) as unknown as StepRow[];
    return {
      runKey: run.run_key,
      status: run.status,
      definition: () => JSON.parse(run.definition) as NormalizedFlow,
      definitionHash: run.definition_hash,
      flowFile: run.flow_file,
      executor: JSON.parse(run.executor) as ExecutorSpec,
      startedAt: run.started_at,
      notBefore: run.not_before,
      finishedAt: run.finished_at,
      error: run.error,
      steps: steps.map(toStepState),
      rounds: this.rounds(runKey),
      ...(run.launch ? { launch: JSON.parse(run.launch) as RunLaunch } : {}),
    };
  }

  private rounds(runKey: string): RetryRound[] {
    const rows = prepared(this.db, "SELECT round, at, steps, user FROM flow_rounds WHERE run_key = ? ORDER BY round")
      .all(runKey) as unknown as { round: number; at: number; steps: string; user: string | null }[];
    return rows.map((row) => ({ round: row.round, at: row.at, steps: JSON.parse(row.steps), user: row.user }));
  }

  /** The runs that match `filter`, newest first (by start time). */
  list(filter: RunFilter = {}): StoredRun[] {
    const conditions: string[] = [];
    const args: (string | number)[] = [];
    if (filter.statuses && filter.statuses.length > 0) {
      conditions.push(`status IN (${filter.statuses.map(() => "?").join(", ")})`);
      args.push(...filter.statuses);
    }
    if (filter.flowId !== undefined) {
      conditions.push("flow_id = ?");
      args.push(filter.flowId);
    }
    if (filter.startedSince !== undefined) {
      conditions.push("started_at >= ?");
      args.push(filter.startedSince);
    }
    if (filter.finishedBefore !== undefined) {
      conditions.push("finished_at IS NOT NULL AND finished_at < ?");
      args.push(filter.finishedBefore);
    }
    const where = conditions.length > 0 ? `WHERE ${conditions.join(" AND ")}` : "";
    const limit = filter.limit === undefined ? "" : `LIMIT ${Math.max(0, Math.floor(filter.limit))}`;
    const keys = prepared(
      this.db,
      `SELECT run_key FROM flow_runs ${where} ORDER BY started_at DESC, rowid DESC ${limit}`,
    )
      .all(...args) as { run_key: string }[];
    return keys.map((row) => this.load(row.run_key)).filter((run) => run !== undefined);
  }

  /** Records the run's executor anew (an operator replaced its orchesjob binary). */
  setExecutor(runKey: string, executor: ExecutorSpec): void {
    prepared(this.db, "UPDATE flow_runs SET executor = ? WHERE run_key = ?").run(JSON.stringify(executor), runKey);
  }

  runStatus(runKey: string): RunStatus | undefined {
    const row = prepared(this.db, "SELECT status FROM flow_runs WHERE run_key = ?").get(runKey) as
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
      prepared(
        this.db,
        `UPDATE flow_runs SET ${sets.join(", ")} WHERE run_key = ? AND status IN ${sqlList(guard.from)}`,
      )
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
      if (JSON_FIELDS.has(name)) return value === null ? null : JSON.stringify(value);
      return (value as Value | undefined) ?? null;
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
      prepared(this.db, `UPDATE flow_steps SET ${sets} WHERE ${conditions.join(" AND ")}`).run(...values, ...args),
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
        prepared(
          this.db,
          `UPDATE flow_runs SET status = ?, finished_at = COALESCE(finished_at, ?)
           WHERE run_key = ? AND status IN ${sqlList(run.from)}`,
        ).run(run.to, at, runKey),
      );
      if (!moved) return false;
      prepared(
        this.db,
        `UPDATE flow_steps SET status = ?, finished_at = ?, error = ? WHERE run_key = ? AND status IN ${
          sqlList(steps.from)
        }`,
      ).run(steps.to, at, reason, runKey);
      return true;
    });
  }

  /**
   * Deletes the run (its steps and rounds go with it) if it is in one of `from`. Returns whether it
   * was deleted.
   */
  delete(runKey: string, from: readonly RunStatus[]): boolean {
    return changed(
      prepared(this.db, `DELETE FROM flow_runs WHERE run_key = ? AND status IN ${sqlList(from)}`).run(runKey),
    );
  }

  /**
   * In one transaction: the run from `run.from` back to `run.to` (no end time, no error), each of
   * `stepIds` from `steps.from` to `steps.to` with a new round of attempts beginning after its last
   * one, and the round recorded. Returns the round, or null (nothing changed) when the run or one of
   * the steps was not where the transition starts.
   */
  reopen(
    runKey: string,
    transitions: {
      run: { from: readonly RunStatus[]; to: RunStatus };
      steps: { from: readonly StepStatus[]; to: StepStatus };
    },
    stepIds: readonly string[],
    at: number,
    user: string | null,
  ): RetryRound | null {
    const { run, steps } = transitions;
    /** Thrown inside the transaction to roll it back when a step was not where it should be. */
    const stale = new Error("a step moved meanwhile");
    try {
      return this.reopenIn(runKey, run, steps, stepIds, at, user, stale);
    } catch (error) {
      if (error === stale) return null;
      throw error;
    }
  }

  private reopenIn(
    runKey: string,
    run: { from: readonly RunStatus[]; to: RunStatus },
    steps: { from: readonly StepStatus[]; to: StepStatus },
    stepIds: readonly string[],
    at: number,
    user: string | null,
    stale: Error,
  ): RetryRound | null {
    return transaction(this.db, () => {
      const moved = changed(
        prepared(
          this.db,
          `UPDATE flow_runs SET status = ?, finished_at = NULL, error = NULL
           WHERE run_key = ? AND status IN ${sqlList(run.from)}`,
        ).run(run.to, runKey),
      );
      if (!moved) return null;
      const reopenStep = prepared(
        this.db,
        `UPDATE flow_steps SET status = ?, attempt_base = attempt_no, next_attempt_at = NULL, started_at = NULL,
           finished_at = NULL, error = NULL, orchesjob_status = NULL
         WHERE run_key = ? AND step_id = ? AND status IN ${sqlList(steps.from)}`,
      );
      for (const stepId of stepIds) {
        if (!changed(reopenStep.run(steps.to, runKey, stepId))) throw stale;
      }
      const last = prepared(this.db, "SELECT MAX(round) AS n FROM flow_rounds WHERE run_key = ?").get(runKey) as {
        n: number | null;
      };
      const round: RetryRound = { round: (last.n ?? 1) + 1, at, steps: [...stepIds], user };
      prepared(this.db, "INSERT INTO flow_rounds (run_key, round, at, steps, user) VALUES (?, ?, ?, ?, ?)")
        .run(runKey, round.round, at, JSON.stringify(round.steps), user);
      return round;
    });
  }
}

function toStepState(row: StepRow): StepState {
  return {
    id: row.step_id,
    status: row.status,
    attemptNo: row.attempt_no,
    attemptBase: row.attempt_base,
    nextAttemptAt: row.next_attempt_at,
    startedAt: row.started_at,
    finishedAt: row.finished_at,
    error: row.error,
    job: row.orchesjob_status === null ? null : JSON.parse(row.orchesjob_status) as Job,
    retryHistory: row.retry_history === null ? [] : JSON.parse(row.retry_history) as RetryRecord[],
    executorError: row.executor_error === null ? null : JSON.parse(row.executor_error) as ExecutorFault,
  };
}
