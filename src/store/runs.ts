/**
 * SQL for flow runs and their steps. Every write is guarded by the state it expects (e.g. "only if
 * the step is still RUNNING on attempt n"), so two writers racing (a loop and a cancel) cannot undo
 * each other; a write that lost the race changes nothing and reports false.
 */
import type { Job } from "../executor/job.ts";
import type { ExecutorSpec } from "../executor/select.ts";
import type { FlowDefinition } from "../flow/model.ts";
import { denormalizeFlow, type NormalizedFlow, normalizeFlow } from "../flow/normalize.ts";
import type { RunState, RunStatus, StepState, StepStatus } from "../engine/state.ts";
import { type Database, transaction } from "./db.ts";

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

/** A run as stored: its state, and what it is bound to. */
export interface RunRecord {
  state: RunState;
  definitionHash: string;
  flowFile: string | null;
  executor: ExecutorSpec;
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

export type StepFields = Partial<{
  status: StepStatus;
  attempt_no: number;
  next_attempt_at: number | null;
  started_at: number | null;
  finished_at: number | null;
  error: string | null;
  orchesjob_status: Job | null;
}>;

export class RunStore {
  /** A run's definition never changes, so each stored text is parsed once per process. */
  private definitions = new Map<string, FlowDefinition>();

  constructor(readonly db: Database) {}

  private definition(text: string): FlowDefinition {
    let flow = this.definitions.get(text);
    if (!flow) {
      flow = denormalizeFlow(JSON.parse(text) as NormalizedFlow);
      this.definitions.set(text, flow);
    }
    return flow;
  }

  /** Creates the run (PENDING, every step PENDING) unless it exists; returns the stored record either way. */
  createOrGet(
    runKey: string,
    flow: FlowDefinition,
    hash: string,
    flowFile: string,
    executor: ExecutorSpec,
    now: number,
  ): RunRecord {
    return transaction(this.db, () => {
      const existing = this.get(runKey);
      if (existing) return existing;
      this.db.prepare(
        `INSERT INTO flow_runs (run_key, flow_id, status, definition, definition_hash, flow_file, executor, started_at)
         VALUES (?, ?, 'PENDING', ?, ?, ?, ?, ?)`,
      ).run(runKey, flow.flowId, JSON.stringify(normalizeFlow(flow)), hash, flowFile, JSON.stringify(executor), now);
      const insert = this.db.prepare(
        "INSERT INTO flow_steps (run_key, step_id, position, status) VALUES (?, ?, ?, 'PENDING')",
      );
      flow.steps.forEach((step, position) => insert.run(runKey, step.id, position));
      return this.get(runKey)!;
    });
  }

  get(runKey: string): RunRecord | undefined {
    const run = this.db.prepare("SELECT * FROM flow_runs WHERE run_key = ?").get(runKey) as RunRow | undefined;
    if (!run) return undefined;
    const steps = this.db.prepare("SELECT * FROM flow_steps WHERE run_key = ? ORDER BY position").all(
      runKey,
    ) as unknown as StepRow[];
    return {
      state: {
        runKey: run.run_key,
        flow: this.definition(run.definition),
        status: run.status,
        startedAt: run.started_at,
        finishedAt: run.finished_at,
        error: run.error,
        steps: steps.map(toStepState),
      },
      definitionHash: run.definition_hash,
      flowFile: run.flow_file,
      executor: JSON.parse(run.executor) as ExecutorSpec,
    };
  }

  /** The runs that match `filter`, newest first (by start time). */
  list(filter: RunFilter = {}): RunRecord[] {
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
    const keys = this.db.prepare(`SELECT run_key FROM flow_runs ${where} ORDER BY started_at DESC, rowid DESC ${limit}`)
      .all(...args) as { run_key: string }[];
    return keys.map((row) => this.get(row.run_key)).filter((record) => record !== undefined);
  }

  runStatus(runKey: string): RunStatus | undefined {
    const row = this.db.prepare("SELECT status FROM flow_runs WHERE run_key = ?").get(runKey) as
      | { status: RunStatus }
      | undefined;
    return row?.status;
  }

  /** PENDING → RUNNING. */
  begin(runKey: string): boolean {
    return changed(
      this.db.prepare("UPDATE flow_runs SET status = 'RUNNING' WHERE run_key = ? AND status = 'PENDING'").run(runKey),
    );
  }

  /** Ends a live run (PENDING or RUNNING) with `status`. */
  finish(runKey: string, status: RunStatus, now: number, error: string | null = null): boolean {
    return changed(
      this.db.prepare(
        "UPDATE flow_runs SET status = ?, finished_at = ?, error = ? WHERE run_key = ? AND status IN ('PENDING', 'RUNNING')",
      ).run(status, now, error, runKey),
    );
  }

  /**
   * Updates a step only if it is in one of `from` (and, when given, on attempt `attemptNo`) and its
   * run is still live (or `evenIfRunEnded`). Returns whether it changed.
   */
  updateStep(
    runKey: string,
    stepId: string,
    from: readonly StepStatus[],
    fields: StepFields,
    options: { attemptNo?: number; evenIfRunEnded?: boolean } = {},
  ): boolean {
    const names = Object.keys(fields) as (keyof StepFields)[];
    const values = names.map((name) => {
      const value = fields[name];
      return name === "orchesjob_status" ? (value === null ? null : JSON.stringify(value)) : value ?? null;
    });
    const conditions = [`run_key = ?`, `step_id = ?`, `status IN (${from.map(() => "?").join(", ")})`];
    const args: (string | number | null)[] = [runKey, stepId, ...from];
    if (options.attemptNo !== undefined) {
      conditions.push("attempt_no = ?");
      args.push(options.attemptNo);
    }
    if (!options.evenIfRunEnded) {
      conditions.push(
        "(SELECT status FROM flow_runs r WHERE r.run_key = flow_steps.run_key) IN ('PENDING', 'RUNNING')",
      );
    }
    const sql = `UPDATE flow_steps SET ${names.map((n) => `${n} = ?`).join(", ")} WHERE ${conditions.join(" AND ")}`;
    return changed(this.db.prepare(sql).run(...(values as (string | number | null)[]), ...args));
  }

  /**
   * Cancels the run: the run and every PENDING or DELAYED step become CANCELLED in one transaction.
   * Returns false when the run had already ended otherwise (SUCCEEDED or FAILED).
   */
  cancel(runKey: string, now: number): boolean {
    return transaction(this.db, () => {
      const status = this.runStatus(runKey);
      if (status === "SUCCEEDED" || status === "FAILED") return false;
      this.db.prepare(
        "UPDATE flow_runs SET status = 'CANCELLED', finished_at = COALESCE(finished_at, ?) WHERE run_key = ?",
      )
        .run(now, runKey);
      this.db.prepare(
        `UPDATE flow_steps SET status = 'CANCELLED', finished_at = ?, error = 'flow cancelled'
         WHERE run_key = ? AND status IN ('PENDING', 'DELAYED')`,
      ).run(now, runKey);
      return true;
    });
  }
}

function changed(result: { changes: number | bigint }): boolean {
  return Number(result.changes) > 0;
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
