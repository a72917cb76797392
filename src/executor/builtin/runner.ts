/**
 * The built-in job runner: orchesjob's semantics with state in the flow's SQLite file and one
 * shell supervisor per job (see supervisor.ts). Used when no external orchesjob is configured, by
 * `orchesjob-flow job …`, and by the flow engine directly (no subprocess per call).
 */
import { mkdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { sleep } from "../../sleep.ts";
import { transaction } from "../../store/db.ts";
import type { Database } from "../../store/db.ts";
import { type JobRow, JobStore } from "../../store/jobs.ts";
import { stateHome } from "../../store/paths.ts";
import { UserError } from "../../errors.ts";
import type { AbortOptions, Executor, StartOptions } from "../executor.ts";
import {
  type AbortResult,
  isActiveJob,
  type Job,
  JobExit,
  type JobStatus,
  type StartResult,
} from "../../domain/mod.ts";
import { isoLocal, nowSeconds } from "../../shared/time.ts";
import { isGroupAlive, isOurProcessAlive, signal } from "./processes.ts";
import { jobFiles, launchSupervisor, readIntFile } from "./supervisor.ts";

/** A job that has neither a supervisor PID nor a result this long after its start is LOST. */
const ORPHAN_GRACE_SECONDS = 30;

export function jobsDirectory(dbPath: string): string {
  return join(stateHome(dbPath), "jobs");
}

export interface RunOptions extends Partial<StartOptions> {
  sync?: boolean;
}

export class BuiltinRunner implements Executor {
  readonly kind = "builtin";
  readonly store: JobStore;

  constructor(readonly db: Database, readonly dir: string) {
    this.store = new JobStore(db);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  }

  /** The database belongs to whoever opened it; nothing of the runner's own needs closing. */
  close(): void {}

  // ---- reading, with reconciliation of what supervisors wrote ----

  /** Folds the supervisor's files into an active job's row: RUNNING, a result, or LOST. */
  reconcile(row: JobRow): JobRow {
    if (!isActiveJob(row.status)) return row;
    const files = jobFiles(this.dir, row.job_id);
    const now = nowSeconds();
    const changes: Partial<JobRow> = {};
    const worker = row.worker_pid ?? readIntFile(files.worker);
    if (worker !== null && row.worker_pid === null) changes.worker_pid = worker;
    const target = row.target_pid ?? readIntFile(files.target);
    if (target !== null && row.target_pid === null) changes.target_pid = target;
    let exit = readIntFile(files.exit);
    if (exit === null) {
      const alive = worker === null
        ? now - row.started_at < ORPHAN_GRACE_SECONDS
        : isOurProcessAlive(worker, row.job_id);
      // The supervisor writes its result before it exits, so read the result again after seeing it
      // dead: only "dead and still no result" is LOST.
      if (!alive) exit = readIntFile(files.exit);
      if (!alive && exit === null) Object.assign(changes, { status: "LOST", finished_at: now, updated_at: now });
    }
    if (exit !== null) {
      const finished = Math.floor(statMtime(files.exit) ?? now);
      Object.assign(changes, {
        status: exit === 0 ? "SUCCEEDED" : "FAILED",
        exit_code: exit,
        finished_at: finished,
        updated_at: finished,
      });
    } else if (target !== null && row.status === "STARTING" && changes.status === undefined) {
      Object.assign(changes, { status: "RUNNING", updated_at: now });
    }
    if (Object.keys(changes).length === 0) return row;
    // Conditional on the row still being active: an abort committed meanwhile wins.
    if (this.store.updateActive(row.job_id, changes)) return { ...row, ...changes };
    return this.store.job(row.job_id) ?? row;
  }

  currentRow(runKey: string): JobRow | undefined {
    const row = this.store.currentJob(runKey);
    return row && this.reconcile(row);
  }

  jobRow(jobId: string): JobRow | undefined {
    const row = this.store.job(jobId);
    return row && this.reconcile(row);
  }

  history(runKey: string): Job[] {
    return this.store.jobsOfKey(runKey).map((row) => toJob(this.reconcile(row)));
  }

  status(runKey: string): Promise<Job | null> {
    const row = this.currentRow(runKey);
    return Promise.resolve(row ? toJob(row) : null);
  }

  running(): Promise<Job[]> {
    return Promise.resolve(this.runningNow());
  }

  logs(runKey: string, stream: "stdout" | "stderr"): Promise<Uint8Array | null> {
    const row = this.currentRow(runKey);
    if (!row) return Promise.resolve(null);
    try {
      return Promise.resolve(Deno.readFileSync(stream === "stdout" ? row.stdout_file : row.stderr_file));
    } catch {
      return Promise.resolve(null);
    }
  }

  runningNow(): Job[] {
    return this.store.activeJobs().map((row) => this.reconcile(row)).filter((row) => isActiveJob(row.status))
      .map(toJob);
  }

  // ---- starting ----

  start(runKey: string, command: readonly string[], options: RunOptions): Promise<StartResult> {
    return this.run(runKey, { kind: "start", command }, options);
  }

  /** `rerun`: a new job with the source's command under the source's run key, strict ignored. */
  rerun(source: JobRow, options: RunOptions & { reason?: string }): Promise<StartResult> {
    if (isActiveJob(source.status)) {
      throw new UserError(`Cannot rerun active job: status=${source.status}`, JobExit.invalidState);
    }
    return this.run(source.run_key, { kind: "rerun", source, reason: options.reason ?? null }, {
      ...options,
      strict: false,
    });
  }

  private async run(
    runKey: string,
    what: { kind: "start"; command: readonly string[] } | { kind: "rerun"; source: JobRow; reason: string | null },
    options: RunOptions,
  ): Promise<StartResult> {
    const strict = options.strict ?? false;
    const decision = transaction(this.db, () => {
      const current = this.currentRow(runKey);
      let overrideUsed = false;
      let rerunReason: string | null = what.kind === "rerun" ? what.reason : null;
      if (what.kind === "start" && current) {
        if (isActiveJob(current.status)) return { row: current, accepted: false, overrideUsed };
        if (strict) {
          const unlock = this.store.unlock(runKey);
          const valid = unlock && unlock.used_at === null &&
            (unlock.expires_at === null || unlock.expires_at > nowSeconds());
          if (!valid) return { row: current, accepted: false, overrideUsed };
          overrideUsed = true;
          rerunReason = unlock.reason;
          this.store.markUnlockUsed(runKey, nowSeconds());
        }
      }
      const jobId = crypto.randomUUID();
      const files = jobFiles(this.dir, jobId);
      const row: JobRow = {
        job_id: jobId,
        run_key: runKey,
        command: JSON.stringify(what.kind === "start" ? what.command : JSON.parse(what.source.command)),
        worker_pid: null,
        target_pid: null,
        status: "STARTING",
        exit_code: null,
        stdout_file: files.stdout,
        stderr_file: files.stderr,
        attempt_no: this.store.maxAttempt(runKey) + 1,
        rerun_of_job_id: what.kind === "rerun" ? what.source.job_id : current?.job_id ?? null,
        rerun_reason: rerunReason,
        abort_reason: null,
        started_at: nowSeconds(),
        finished_at: null,
        updated_at: null,
        aborted_at: null,
      };
      this.store.insertJob(row);
      return { row, accepted: true, overrideUsed };
    });

    let row = decision.row;
    if (decision.accepted) {
      // Intent before action: the STARTING row is committed before the supervisor exists, so a crash
      // here leaves a job that readers turn LOST, never a process nobody knows about.
      const pid = launchSupervisor(this.dir, row.job_id, JSON.parse(row.command), options.env);
      this.store.updateActive(row.job_id, { worker_pid: pid, updated_at: nowSeconds() });
      row = { ...row, worker_pid: pid };
    }
    row = options.sync
      ? await this.waitFor(row, (r) => !isActiveJob(r.status), Infinity)
      : await this.waitFor(row, (r) => r.status !== "STARTING", options.startTimeoutSec ?? 10);
    return {
      ...toJob(row),
      accepted: decision.accepted,
      existing: !decision.accepted,
      mode: options.sync ? "sync" : "async",
      strict,
      strict_override_used: decision.overrideUsed,
      ...(what.kind === "rerun" ? { rerun: true as const } : {}),
    };
  }

  /** Polls the supervisor's files (cheap) until `done` holds for the reconciled row or time runs out. */
  private async waitFor(row: JobRow, done: (row: JobRow) => boolean, timeoutSec: number): Promise<JobRow> {
    const deadline = performance.now() + timeoutSec * 1000;
    const files = jobFiles(this.dir, row.job_id);
    let current = this.reconcile(row);
    for (let pause = 1; !done(current) && performance.now() < deadline; pause = Math.min(pause * 2, 50)) {
      await sleep(Math.min(pause, deadline - performance.now()) / 1000);
      // Stat the supervisor's files each time (cheap); reconcile through SQLite once they say something.
      if (fileExists(files.target) || fileExists(files.exit) || pause >= 50) {
        current = this.jobRow(row.job_id) ?? current;
      }
    }
    return current;
  }

  // ---- stopping ----

  async abort(runKey: string, options: AbortOptions): Promise<Job | null> {
    const row = this.currentRow(runKey);
    if (!row) return null;
    if (!isActiveJob(row.status)) return toJob(row);
    try {
      return await this.abortJob(row, options);
    } catch (error) {
      // It finished between our read and the abort: report how it ended.
      if (error instanceof UserError && error.exitCode === JobExit.invalidState) return toJob(this.jobRow(row.job_id)!);
      throw error;
    }
  }

  /** orchesjob `abort`: record ABORTED, then SIGTERM the job's process group, then SIGKILL after the grace. */
  async abortJob(row: JobRow, options: AbortOptions): Promise<AbortResult> {
    const now = nowSeconds();
    // The ABORTED record is committed before any signal: the supervisor's late result can then never
    // replace it, and a strict start already sees the run key as used.
    const recorded = this.store.updateActive(row.job_id, {
      status: "ABORTED",
      finished_at: now,
      aborted_at: now,
      updated_at: now,
      abort_reason: options.reason ?? null,
    });
    if (!recorded) {
      const latest = this.jobRow(row.job_id) ?? row;
      throw new UserError(`Job is not running: ${row.job_id} status=${latest.status}`, JobExit.invalidState);
    }
    const files = jobFiles(this.dir, row.job_id);
    const worker = row.worker_pid ?? readIntFile(files.worker);
    const target = row.target_pid ?? readIntFile(files.target);
    const flags = {
      sent_term_target: false,
      sent_term_worker: false,
      sent_kill_target: false,
      sent_kill_worker: false,
    };
    // The supervisor leads its own session and process group; the command and everything it spawned
    // are in that group. Signal only while the supervisor is provably ours (its PID may be reused).
    if (worker !== null && isOurProcessAlive(worker, row.job_id)) {
      flags.sent_term_target = target !== null && signal(-worker, "SIGTERM");
      flags.sent_term_worker = signal(worker, "SIGTERM");
      const deadline = performance.now() + options.graceSeconds * 1000;
      while (isGroupAlive(worker) && performance.now() < deadline) await sleep(0.05);
      if (isGroupAlive(worker)) {
        flags.sent_kill_target = target !== null && signal(-worker, "SIGKILL");
        flags.sent_kill_worker = signal(worker, "SIGKILL");
        const killDeadline = performance.now() + 2000;
        while (isGroupAlive(worker) && performance.now() < killDeadline) await sleep(0.02);
      }
    }
    const after = this.store.job(row.job_id) ?? row;
    return { ...toJob(after), aborted: true, ...flags };
  }

  // ---- strict unlocks and cleaning ----

  unlock(runKey: string, reason: string | null, ttlSeconds: number | null) {
    const current = this.currentRow(runKey);
    if (!current) throw new UserError("run_key not found", JobExit.notFound);
    if (isActiveJob(current.status)) {
      throw new UserError(`Cannot unlock active job: status=${current.status}`, JobExit.invalidState);
    }
    const now = nowSeconds();
    const expires = ttlSeconds === null ? null : now + ttlSeconds;
    this.store.putUnlock({ run_key: runKey, allowed_at: now, used_at: null, reason, expires_at: expires });
    return {
      unlocked: true,
      run_key: runKey,
      reason,
      allowed_at: now,
      allowed_at_iso: isoLocal(now),
      expires_at: expires,
      expires_at_iso: isoLocal(expires),
    };
  }

  /** Deletes terminal jobs matching `select` with their files; a dry run only reports them. */
  clean(select: (row: JobRow) => boolean, runKey: string | undefined, dryRun: boolean) {
    const rows = this.store.terminalJobs(runKey).filter(select);
    if (rows.length === 0) return { deleted: 0, errors: 0 };
    let errors = 0;
    if (!dryRun) {
      transaction(this.db, () => rows.forEach((row) => this.store.deleteJob(row)));
      for (const row of rows) {
        for (const path of Object.values(jobFiles(this.dir, row.job_id))) {
          try {
            Deno.removeSync(path);
          } catch (error) {
            if (!(error instanceof Deno.errors.NotFound)) errors++;
          }
        }
      }
    }
    return {
      deleted: rows.length,
      errors,
      dry_run: dryRun,
      items: rows.map((row) => ({
        job_id: row.job_id,
        run_key: row.run_key,
        selected_at: row.finished_at ?? row.started_at,
        selected_at_iso: isoLocal(row.finished_at ?? row.started_at),
      })),
    };
  }
}

function statMtime(path: string): number | null {
  try {
    return (statSync(path).mtimeMs ?? 0) / 1000;
  } catch {
    return null;
  }
}

function fileExists(path: string): boolean {
  try {
    statSync(path);
    return true;
  } catch {
    return false;
  }
}

/** A stored row as orchesjob's 25-field job object. */
export function toJob(row: JobRow): Job {
  const pidKind = row.target_pid !== null ? "target" : row.worker_pid !== null ? "worker" : null;
  return {
    job_id: row.job_id,
    run_key: row.run_key,
    command: JSON.parse(row.command),
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
