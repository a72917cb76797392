/**
 * The operator's side of the built-in runner, what `orchesjob-flow job` offers beyond the Executor
 * interface: a job by run key or id, a run key's history, abort of a chosen job, rerun, strict
 * unlocks, and cleaning finished jobs. Refusals are {@link JobError}s with orchesjob's reasons.
 */
import { type AbortResult, isActiveJob, type Job, type JobStatus, type StartResult } from "../../domain/mod.ts";
import { crashPoint, isoLocal, pathExists, stopPoint } from "../../shared/mod.ts";
import { type Database, transaction } from "../../store/mod.ts";
import { type AbortOptions, JobError, type JobRef } from "../executor.ts";
import { type JobRow, toJob } from "./job_table.ts";
import { BuiltinRunner, noSignals, type ReadOptions, type RunOptions, type UnlockResult } from "./runner.ts";
import { jobFiles } from "./supervisor.ts";

/** What `clean` chooses finished jobs by: plain columns, so a job whose command is damaged can be cleaned. */
export type CleanSelectable = Pick<Job, "job_id" | "started_at" | "finished_at">;

/**
 * Why `job clean` and `clean` keep an ABORTED job whose process group still lives: one wording for
 * both, said of the job (`clean`, whose reasons are a run's, names the job before it).
 */
export const ABORT_NOT_DONE = "its abort is not done: its process group still runs (SIGKILL at the abort's deadline)";

export class JobAdmin {
  readonly runner: BuiltinRunner;

  constructor(db: Database, jobsDir: string) {
    this.runner = new BuiltinRunner(db, jobsDir);
  }

  private get table() {
    return this.runner.table;
  }

  /** The job `ref` names, reconciled; a JobError (not found) when there is none. */
  job(ref: JobRef): Job {
    return toJob(this.row(ref));
  }

  private row(ref: JobRef, options: ReadOptions = {}): JobRow {
    const row = this.runner.row(ref, options);
    if (row) return row;
    throw new JobError("jobId" in ref ? `Job not found: ${ref.jobId}` : "run_key not found", "notFound");
  }

  /** Every job of the run key, newest attempt first. */
  history(runKey: string): Job[] {
    return this.table.jobsOfKey(runKey).map((row) => toJob(this.runner.reconcile(row)));
  }

  /**
   * Every job of the run key as id and status (reconciled), newest attempt first: what cleaning needs,
   * read without the stored command, so that a job whose command column is damaged can go too.
   */
  statuses(runKey: string): (Pick<Job, "job_id" | "run_key" | "status"> & { aborting: boolean })[] {
    // An ended job is as stored: reconcile would only resume its abort, which abortsUnderWay does.
    const rows = this.table.jobsOfKey(runKey).map((row) => isActiveJob(row.status) ? this.runner.reconcile(row) : row);
    const aborting = this.runner.abortsUnderWay(rows);
    return rows.map(({ job_id, run_key, status }) => ({
      job_id,
      run_key,
      status: status as JobStatus,
      aborting: aborting.has(job_id),
    }));
  }

  /** orchesjob `abort` of the named job, which must be active. */
  async abort(ref: JobRef, options: AbortOptions): Promise<AbortResult> {
    // Not relaunched: a job nobody launched is aborted as it is, its command never started.
    let row = this.row(ref, { relaunch: false });
    if (this.runner.recordedAborts.has(row.job_id)) {
      // This read recorded the abort that an earlier one began and never recorded (a `job abort`
      // interrupted in between, whose message says that this records it): the job never started its
      // command, its supervisor is gone, and there is nothing to signal.
      return { ...toJob(row), aborted: true, ...noSignals() };
    }
    // ABORTED by an abort whose sender died during its grace (a driver timing the job out, or its
    // `job abort` call): the job reads as ended while its process group may live on, and a driver
    // retrying the step asks this abort before it starts the next attempt. So the half-done abort is
    // finished first (the group ended, its SIGKILL at the earlier deadline), then answered as the
    // abort of a job that is not running (exit 4), as before: a driver that is answered has no
    // attempt left beside the next one.
    if (row.status === "ABORTED") row = await this.runner.settleAbort(row, options.graceSeconds);
    if (!isActiveJob(row.status)) {
      throw new JobError(`Job is not running: ${row.job_id} status=${row.status}`, "invalidState");
    }
    return this.runner.abortJob(row, options);
  }

  /** `rerun`: a new job with the source's command under the source's run key, strict ignored. */
  rerun(ref: JobRef, options: RunOptions & { reason?: string }): Promise<StartResult> {
    const source = this.row(ref);
    if (isActiveJob(source.status)) {
      throw new JobError(`Cannot rerun active job: status=${source.status}`, "invalidState");
    }
    return this.runner.run({ kind: "rerun", source, reason: options.reason ?? null }, { ...options, strict: false });
  }

  /** Lets the next strict start of a finished run key run once more (until `ttlSeconds`, if given). */
  unlock(runKey: string, reason: string | null, ttlSeconds: number | null): UnlockResult {
    stopPoint("admin:unlock-write");
    return this.runner.storeUnlock(runKey, reason, ttlSeconds);
  }

  /**
   * Deletes the selected finished jobs with their files (a dry run only reports them), except those
   * `keep` gives a reason to keep (a job of a flow run that has not finished: deleting it would make
   * its step look never started), unless `force`. `keep` is asked only after the jobs are chosen, so
   * what it reads is no older than the choice (see the `job clean` command). An aborted job whose
   * process group still lives (an abort in its grace, or one whose aborting process died in it) is
   * kept even with `force`: deleted, its files took the SIGKILL's deadline and the group's identity
   * with them, and a command that ignores SIGTERM ran on for ever, the abort itself taking the group
   * for gone. A later clean, once the abort is done, deletes it.
   */
  clean(
    select: (job: CleanSelectable) => boolean,
    runKey: string | undefined,
    dryRun: boolean,
    keep: (runKey: string) => string | null = () => null,
    force = false,
  ) {
    stopPoint("job-clean:select");
    const selected = this.table.terminalJobs(runKey).filter((row) => select(row));
    const aborting = this.runner.abortsUnderWay(selected);
    const skipped = selected.flatMap((row) => {
      const reason = aborting.has(row.job_id) ? ABORT_NOT_DONE : force ? null : keep(row.run_key);
      return reason === null ? [] : [{ job_id: row.job_id, run_key: row.run_key, reason }];
    });
    const skippedIds = new Set(skipped.map((item) => item.job_id));
    const rows = selected.filter((row) => !skippedIds.has(row.job_id));
    const kept = skipped.length > 0 ? { skipped } : {};
    if (rows.length === 0) return { deleted: 0, errors: 0, ...kept };
    let errors = 0;
    if (!dryRun) {
      // Files first, rows last: a clean interrupted between them leaves finished jobs with no output,
      // which the next clean deletes, never files no row points to; and on a full disk the files'
      // room is what lets SQLite write the deletion at all.
      for (const row of rows) errors += this.removeFiles(row.job_id);
      crashPoint("job-clean:files-removed");
      transaction(this.runner.db, () => rows.forEach((row) => this.table.deleteJob(row)));
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
      ...kept,
    };
  }

  /**
   * Removes the files of the run key's finished jobs, and not their rows: what `clean` does first,
   * from a read-only look at a state file on a disk too full to write it, to make room for writing
   * its deletions (files before rows, as always). Returns how many could not be removed.
   */
  removeFinishedFiles(runKey: string): number {
    let errors = 0;
    for (const row of this.table.jobsOfKey(runKey)) {
      if (!isActiveJob(row.status)) errors += this.removeFiles(row.job_id);
    }
    return errors;
  }

  /**
   * The `.launch` files that no job row points to and that were written at least `minAgeSeconds` ago.
   * A start writes its job's `.launch` before the transaction that stores the row; a process killed in
   * between leaves the file (it holds the start's environment) with nothing to ever remove it. A file
   * younger than `minAgeSeconds` may be a start's whose transaction is still waiting for the write
   * lock, and is not listed. Nor is one whose job was claimed: that start stored its row, if not in
   * this state file then in another one beside it (state files in one directory share `jobs/`), whose
   * job it is.
   */
  orphanLaunchFiles(minAgeSeconds: number): string[] {
    let names: string[];
    try {
      names = Array.from(Deno.readDirSync(this.runner.dir), (entry) => entry.name);
    } catch {
      return []; // no jobs directory: no job ever started
    }
    const before = Date.now() - minAgeSeconds * 1000;
    const orphans: string[] = [];
    for (const name of names) {
      if (!name.endsWith(".launch")) continue;
      const jobId = name.slice(0, -".launch".length);
      const files = jobFiles(this.runner.dir, jobId);
      try {
        const written = Deno.statSync(files.launch).mtime;
        if (written === null || written.getTime() > before) continue;
      } catch {
        continue; // gone meanwhile
      }
      if (pathExists(files.claim)) continue;
      // Read after the age: the row of a start that wrote the file this long ago is committed by now.
      if (this.table.job(jobId) === undefined) orphans.push(files.launch);
    }
    return orphans;
  }

  /**
   * Removes a job's files; returns how many could not be removed (a missing file is fine). The launch
   * file goes first, before the abort file and the claim: a supervisor that comes late (its starter
   * stopped between committing the row and spawning it, or a second launch of the job) looks for the
   * abort file, then for the launch file, before it starts the command: it finds one or the other,
   * and quits (see supervisor.ts), where it found neither claim nor abort file and ran the command.
   */
  private removeFiles(jobId: string): number {
    let errors = 0;
    const { launch, ...others } = jobFiles(this.runner.dir, jobId);
    for (const path of [launch, ...Object.values(others)]) {
      try {
        Deno.removeSync(path);
      } catch (error) {
        if (!(error instanceof Deno.errors.NotFound)) errors++;
      }
    }
    return errors;
  }
}
