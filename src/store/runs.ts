/**
 * SQL for flow runs and their steps (the engine's RunRepository). Every write is guarded by the state
 * it expects (e.g. "only if the step is still RUNNING on attempt n"), so two writers racing (a loop
 * and a cancel) cannot undo each other; a write that lost the race changes nothing and reports false.
 * A run's definition is stored as the normalized JSON it is handed and returned as data, parsed on request.
 */
import {
  DamagedRunError,
  type ExecutorFault,
  type ExecutorSpec,
  type Job,
  LIVE_RUN_STATUSES,
  neverStartedStep,
  NO_RETRIES,
  type NormalizedFlow,
  type RetryRecord,
  type RetryRound,
  RUN_STATUSES,
  type RunLaunch,
  type RunStatus,
  STEP_STATUSES,
  type StepState,
  type StepStatus,
  type StoredRun,
} from "../domain/mod.ts";
import { type Database, prepared, readTransaction, transaction } from "./db.ts";
import { changed, sqlList } from "./sql.ts";
import { definitionParts } from "./definition_text.ts";
import { stopPoint } from "../shared/mod.ts";

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

/** The columns load() reads: every column of RunRow but the definition, and those of StepRow. */
const RUN_COLUMNS =
  "run_key, flow_id, status, definition_hash, flow_file, executor, started_at, not_before, finished_at, error, launch";
const STEP_READ_COLUMNS =
  "step_id, status, attempt_no, attempt_base, next_attempt_at, started_at, finished_at, error, " +
  "orchesjob_status, retry_history, executor_error";

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

/**
 * A run as `list` selects it: the columns that hold no JSON. `status` is the stored text, which a
 * damaged row may hold in a form this program does not know.
 */
export interface RunSummary {
  runKey: string;
  flowId: string;
  status: string;
  startedAt: number;
  finishedAt: number | null;
}

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

/** A step's id, last attempt number and stored status text (see {@link RunStore.stepAttempts}). */
export interface StepAttempts {
  stepId: string;
  attemptNo: number;
  status: string;
}

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
      // The definition of another hash is read here, in this snapshot (the caller compares the hashes).
      const existing = this.load(run.runKey, (hash) => hash === run.definitionHash);
      if (existing) return existing;
      const definition = JSON.stringify(run.definition);
      const [firstPart, ...laterParts] = definitionParts(definition);
      prepared(
        this.db,
        `INSERT INTO flow_runs
           (run_key, flow_id, status, definition, definition_hash, flow_file, executor, started_at, launch, not_before)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ).run(
        run.runKey,
        run.definition.flow_id,
        run.notBefore === undefined || run.notBefore === null ? "PENDING" : "SCHEDULED",
        firstPart,
        run.definitionHash,
        run.flowFile,
        JSON.stringify(run.executor),
        now,
        run.launch ? JSON.stringify(run.launch) : null,
        run.notBefore ?? null,
      );
      this.insertLaterParts(run.runKey, laterParts);
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

  /** A definition's parts after its first (definition_text.ts), numbered from 1. */
  private insertLaterParts(runKey: string, parts: readonly string[]): void {
    // Parts a run of this key left behind when it was deleted without foreign keys (an admin's
    // `sqlite3` shell) would otherwise be read as the end of this definition.
    prepared(this.db, "DELETE FROM flow_definition_parts WHERE run_key = ?").run(runKey);
    const insert = prepared(this.db, "INSERT INTO flow_definition_parts (run_key, part, text) VALUES (?, ?, ?)");
    parts.forEach((text, i) => insert.run(runKey, i + 1, text));
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

  /**
   * The run as one commit left it: its row, steps and rounds are read in one read transaction. Each
   * statement outside a transaction reads its own snapshot, so a driver's commit between two of them
   * showed the run row from before it with the step rows from after it.
   */
  load(runKey: string, known: (definitionHash: string) => boolean = () => true): StoredRun | undefined {
    return readTransaction(this.db, () => this.read(runKey, known));
  }

  /**
   * `known` says whether the caller has the definition of that hash already; if not, its text is read
   * here, in the same snapshot as the rest of the run.
   */
  private read(runKey: string, known: (definitionHash: string) => boolean): StoredRun | undefined {
    // Not the definition, unless the caller lacks it: a process parses each definition once (by its
    // hash). A 10k-step run's text is megabytes, read again on every load.
    const run = prepared(this.db, `SELECT ${RUN_COLUMNS} FROM flow_runs WHERE run_key = ?`).get(runKey) as
      | Omit<RunRow, "definition">
      | undefined;
    if (!run) return undefined;
    stopPoint("store:load-run-read");
    const column = new ColumnReader(runKey);
    // One row at a time, each turned into its step before the next is read: all rows at once, each
    // with every column, was the largest part of a 10k-step driver's peak memory.
    const steps: StepState[] = [];
    const rows = prepared(this.db, `SELECT ${STEP_READ_COLUMNS} FROM flow_steps WHERE run_key = ? ORDER BY position`);
    for (const row of rows.iterate(runKey)) steps.push(toStepState(row as unknown as StepRow, column));
    const definitionHash = run.definition_hash;
    const rounds = this.rounds(runKey, column);
    // Read later, in a snapshot of its own, the definition of a run deleted meanwhile (a `clean`), or
    // of its key started again with another flow, was missing: a status or start at that moment
    // called a healthy run damaged (exit 65).
    const definition = known(definitionHash) ? null : this.definition(runKey, definitionHash, column);
    return {
      runKey: run.run_key,
      status: column.status(run.status, RUN_STATUSES, "flow_runs.status"),
      definition: () => definition ?? this.definition(runKey, definitionHash, column),
      definitionHash: run.definition_hash,
      flowFile: run.flow_file,
      executor: column.json(run.executor, "flow_runs.executor") as ExecutorSpec,
      startedAt: run.started_at,
      notBefore: run.not_before,
      finishedAt: run.finished_at,
      error: run.error,
      steps,
      rounds,
      ...(run.launch ? { launch: column.json(run.launch, "flow_runs.launch") as RunLaunch } : {}),
    };
  }

  /**
   * The run's definition, read when first needed. A run key removed and started again in the meantime
   * has another hash: that is the same damage as a definition that went missing.
   */
  private definition(runKey: string, definitionHash: string, column: ColumnReader): NormalizedFlow {
    // Its row and its parts in one snapshot: a run deleted and started again between them would mix two texts.
    const text = readTransaction(this.db, () => {
      const row = prepared(this.db, "SELECT definition FROM flow_runs WHERE run_key = ? AND definition_hash = ?")
        .get(runKey, definitionHash) as { definition: string } | undefined;
      if (!row) return undefined;
      const texts = [row.definition];
      // A file of schema 6, read unmigrated (READABLE_FROM), has no parts table: the previous release
      // kept every definition whole in its row.
      if (!hasDefinitionParts(this.db)) return row.definition;
      const parts = prepared(this.db, "SELECT text FROM flow_definition_parts WHERE run_key = ? ORDER BY part");
      for (const part of parts.iterate(runKey)) texts.push((part as { text: string }).text);
      return texts.join("");
    });
    if (text === undefined) {
      throw new DamagedRunError(runKey, "flow_runs.definition", "was removed or replaced while it was read");
    }
    return column.json(text, "flow_runs.definition") as NormalizedFlow;
  }

  private rounds(runKey: string, column: ColumnReader): RetryRound[] {
    const rows = prepared(this.db, "SELECT round, at, steps, user FROM flow_rounds WHERE run_key = ? ORDER BY round")
      .all(runKey) as unknown as { round: number; at: number; steps: string; user: string | null }[];
    return rows.map((row) => ({
      round: row.round,
      at: row.at,
      steps: column.json(row.steps, `flow_rounds.steps of round ${row.round}`) as string[],
      user: row.user,
    }));
  }

  /**
   * The runs that match `filter`, newest first (by start time), from their plain columns only: a
   * damaged run is listed too, and loading it (`load`) is what names the damage.
   */
  list(filter: RunFilter = {}): RunSummary[] {
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
    const rows = prepared(this.db, `${SUMMARY_SQL} ${where} ORDER BY started_at DESC, rowid DESC ${limit}`)
      .all(...args) as unknown as SummaryRow[];
    return rows.map(toSummary);
  }

  /** One run's plain columns (see `list`), or undefined when there is no such run. */
  summary(runKey: string): RunSummary | undefined {
    const row = prepared(this.db, `${SUMMARY_SQL} WHERE run_key = ?`).get(runKey) as SummaryRow | undefined;
    return row && toSummary(row);
  }

  /**
   * Each step's id, last attempt number and status (the stored text), from plain columns (what `clean`
   * needs, even of a damaged run).
   */
  stepAttempts(runKey: string): StepAttempts[] {
    const rows = prepared(
      this.db,
      "SELECT step_id, attempt_no, status FROM flow_steps WHERE run_key = ? ORDER BY position",
    ).all(runKey) as { step_id: string; attempt_no: number; status: string }[];
    return rows.map((row) => ({ stepId: row.step_id, attemptNo: row.attempt_no, status: row.status }));
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
    guard: { from: readonly RunStatus[]; round?: number },
    change: { status: RunStatus; finishedAt?: number; error?: string | null },
  ): boolean {
    const sets: string[] = ["status = ?"];
    const values: Value[] = [change.status];
    if (change.finishedAt !== undefined) sets.push("finished_at = ?"), values.push(change.finishedAt);
    if (change.error !== undefined) sets.push("error = ?"), values.push(change.error);
    const conditions = ["run_key = ?", `status IN ${sqlList(guard.from)}`];
    const args: Value[] = [runKey];
    if (guard.round !== undefined) {
      // In the statement itself: a reopening commits its status and its round row together, so this
      // one statement sees both or neither (round 1 has no row: see currentRound).
      conditions.push("COALESCE((SELECT MAX(round) FROM flow_rounds WHERE run_key = flow_runs.run_key), 1) = ?");
      args.push(guard.round);
    }
    return changed(
      prepared(this.db, `UPDATE flow_runs SET ${sets.join(", ")} WHERE ${conditions.join(" AND ")}`)
        .run(...values, ...args),
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
          // A live run's error is only ever its driver's note of a passing trouble (a store wait, a
          // failing list call), which ends with the driving: left, it read as the cancelled run's error.
          `UPDATE flow_runs SET status = ?, finished_at = COALESCE(finished_at, ?),
             error = CASE WHEN status IN ${LIVE_RUNS} THEN NULL ELSE error END
           WHERE run_key = ? AND status IN ${sqlList(run.from)}`,
        ).run(run.to, at, runKey),
      );
      if (!moved) return false;
      prepared(
        this.db,
        // A cancelled step has no retry to come: its next attempt time goes with it.
        `UPDATE flow_steps SET status = ?, finished_at = ?, error = ?, next_attempt_at = NULL
         WHERE run_key = ? AND status IN ${sqlList(steps.from)}`,
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

const SUMMARY_SQL = "SELECT run_key, flow_id, status, started_at, finished_at FROM flow_runs";

interface SummaryRow {
  run_key: string;
  flow_id: string;
  status: string;
  started_at: number;
  finished_at: number | null;
}

function toSummary(row: SummaryRow): RunSummary {
  return {
    runKey: row.run_key,
    flowId: row.flow_id,
    status: row.status,
    startedAt: row.started_at,
    finishedAt: row.finished_at,
  };
}

function toStepState(row: StepRow, column: ColumnReader): StepState {
  // Where, for an error only: made for every row of a 10k-step run, it was garbage of megabytes.
  const of = () => ` of step ${JSON.stringify(row.step_id)}`;
  return {
    id: row.step_id,
    status: column.status(row.status, STEP_STATUSES, () => `flow_steps.status${of()}`),
    attemptNo: row.attempt_no,
    attemptBase: row.attempt_base,
    nextAttemptAt: row.next_attempt_at,
    startedAt: row.started_at,
    finishedAt: row.finished_at,
    error: row.error,
    job: row.orchesjob_status === null
      ? null
      : column.json(row.orchesjob_status, `flow_steps.orchesjob_status${of()}`) as Job,
    retryHistory: row.retry_history === null
      ? NO_RETRIES
      : column.json(row.retry_history, `flow_steps.retry_history${of()}`) as RetryRecord[],
    executorError: row.executor_error === null
      ? null
      : column.json(row.executor_error, `flow_steps.executor_error${of()}`) as ExecutorFault,
  };
}

/**
 * Reads one run's columns back, naming the run and the column when one cannot be: a damaged row
 * makes that run unreadable (DamagedRunError), not the state file.
 */
class ColumnReader {
  constructor(readonly runKey: string) {}

  json(text: string, where: string): unknown {
    try {
      return JSON.parse(text);
    } catch (error) {
      throw new DamagedRunError(this.runKey, where, `is not JSON (${(error as Error).message})`);
    }
  }

  /** The known status `value` names: the constant itself, not the row's copy (10k copies of "PENDING" were 0.24 MiB). */
  status<S extends string>(value: string, known: readonly S[], where: string | (() => string)): S {
    const found = known.indexOf(value as S);
    if (found !== -1) return known[found];
    const place = typeof where === "string" ? where : where();
    throw new DamagedRunError(this.runKey, place, `is ${JSON.stringify(value)}, not one of ${known.join(", ")}`);
  }
}

/**
 * Whether the file has the table of definition parts (migration 7). Looked up at each read, not once
 * per connection: another process may migrate the file while a reader keeps it open.
 */
function hasDefinitionParts(db: Database): boolean {
  return prepared(db, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'flow_definition_parts'")
    .get() !== undefined;
}
