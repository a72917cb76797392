/**
 * `clean`: delete finished runs older than a given age, with what belongs to them: built-in jobs and
 * their output files, detached-driver logs and lock files. Never a run that is unfinished or that a
 * process holds.
 */
import { isActiveJob, isTerminalRun, type RunStatus, stepRunKey, TERMINAL_RUN_STATUSES } from "../../domain/mod.ts";
import { ExitCode, UserError } from "../errors.ts";
import { ABORT_NOT_DONE, JobAdmin } from "../../executor/mod.ts";
import { crashPoint, epochNow, join, pathExists, stopPoint } from "../../shared/mod.ts";
import {
  driverHolder,
  type HeldLock,
  isCancelHeld,
  LOCK_KINDS,
  lockFilePath,
  type RunFilter,
  StateFileUnavailableError,
  type StepAttempts,
  unlinkFreeLockFile,
} from "../../store/mod.ts";
import { jobsDirectory, safeFileName, stateHome } from "../../store/mod.ts";
import type { Command, CommandContext } from "../command.ts";
import { type Interrupt, listenForInterrupt } from "../interrupt.ts";
import { printJson } from "../output.ts";
import { Session } from "../session.ts";
import { parseDuration } from "../time_args.ts";
import { detachedLogs } from "./start.ts";

/**
 * How old a `.launch` file with no job row must be for `clean` to remove it. A start commits its row
 * within one transaction of writing the file, which waits for another process's write lock at most the
 * busy timeout (15 s) before it fails and removes the file: one an hour old is a dead start's.
 */
const ORPHAN_LAUNCH_AGE_SECONDS = 3600;

interface DeletedRun {
  run_key: string;
  flow_id: string;
  status: RunStatus;
  finished_at: number | null;
  jobs: string[];
  files: string[];
}

export const cleanCommand: Command = {
  spec: {
    name: "clean",
    summary: "Delete finished runs older than DURATION, with their jobs, output files, driver logs and lock files.",
    usage: "clean --older-than DURATION [--status S]... [--dry-run]",
    options: [
      {
        name: "older-than",
        value: "string",
        metavar: "DURATION",
        help:
          "Runs that finished longer ago than this: 90s, 15m, 6h, 7d or 2w (a unit is required; 0: every finished run) (required).",
      },
      {
        name: "status",
        value: "string",
        metavar: "S",
        multiple: true,
        choices: TERMINAL_RUN_STATUSES,
        help: "Only runs that ended so: SUCCEEDED, FAILED or CANCELLED (repeatable, or comma-separated).",
      },
      { name: "dry-run", help: "Print what would be deleted; delete nothing." },
    ],
    notes: [
      "A run that is PENDING or RUNNING, or whose driver lock a process holds, is never touched; nor is a run",
      "with a job still active or a step still RUNNING (a cancel killed half done), or an ABORTED job whose",
      "processes still run (an abort in its grace). Lock files are also removed,",
      "when nobody holds them, for runs that have finished and for runs that no longer exist, and so are the",
      "built-in runner's .launch files that no job points to (a start killed before it stored its job) once",
      "an hour old. Prints what it deleted (or would delete) as JSON. Exit 0; 1 if some file could not be",
      "removed (listed in errors).",
    ].join("\n"),
  },
  async run(context, args) {
    const olderThan = args.options["older-than"] as string | undefined;
    if (olderThan === undefined) throw new UserError("--older-than is required (for everything finished: 0)");
    const age = parseDuration(olderThan, "--older-than");
    const before = epochNow() - age;
    const statuses = (args.options.status as RunStatus[] | undefined) ?? TERMINAL_RUN_STATUSES;
    // `0` is every finished run, as documented, not only those whose end is behind this clock: after
    // the clock stepped back (NTP, a restored VM), a run's stored end may be ahead of now.
    const select: RunFilter = { statuses, finishedBefore: age === 0 ? undefined : before };
    const dryRun = args.options["dry-run"] === true;
    const roomErrors: string[] = [];
    // Another process's write lock (an admin's sqlite3 shell) is waited out, to open the state file and
    // for each run's deletion, in short tries, where clean failed with exit 70 after the busy timeout.
    // A signal stops it between runs, or in such a wait, with exit 130: each run is deleted files
    // first, row last, so one cut short is found and finished by the next clean.
    using interrupt = listenForInterrupt();
    const deleted: DeletedRun[] = [];
    const stopped = () =>
      new UserError(
        `interrupted after deleting ${deleted.length} run(s); the rest are left for the next clean`,
        ExitCode.interrupted,
      );
    using session = await cleaningSession(
      context,
      dryRun,
      select,
      roomErrors,
      interrupt,
    );
    const cleaner = new Cleaner(session, dryRun);
    cleaner.errors.push(...roomErrors);
    const skipped: { run_key: string; reason: string }[] = [];
    for (const candidate of session.list(select)) {
      if (interrupt.requested()) throw stopped();
      const outcome = await session.writing(
        () => cleaner.deleteRun(candidate.runKey),
        { stop: interrupt.requested, interrupted: stopped().message, rerunnable: true },
      );
      if (typeof outcome === "string") skipped.push({ run_key: candidate.runKey, reason: outcome });
      else deleted.push(outcome);
    }
    const lockFilesRemoved = cleanLockFiles(session, new Set(deleted.map((run) => run.run_key)), cleaner);
    const launchFiles = cleaner.orphanLaunchFiles();
    printJson({
      dry_run: cleaner.dryRun,
      finished_before: before,
      runs: deleted,
      lock_files: lockFilesRemoved,
      launch_files: launchFiles,
      skipped,
      errors: cleaner.errors,
    });
    return cleaner.errors.length > 0 ? ExitCode.flowFailed : ExitCode.ok;
  },
};

/**
 * The session `clean` works in. A dry run only reads: it opens the state file read-only, as `status`
 * does (it works on a state file this process may not write, and answers at once while another
 * process holds the write lock). A clean waits out another process's write lock to open the file;
 * on a disk too full to open it for writing (SQLite cannot make its WAL files) it first makes room
 * ({@link makeRoom}), then opens the file again.
 */
async function cleaningSession(
  context: CommandContext,
  dryRun: boolean,
  select: RunFilter,
  errors: string[],
  interrupt: Interrupt,
): Promise<Session> {
  try {
    return await Session.open(context, dryRun ? { follower: true } : { storedRuns: true }, interrupt);
  } catch (error) {
    if (!(error instanceof StateFileUnavailableError) || (error.why !== "full" && !dryRun)) throw error;
    if (dryRun) return new Session(context, { queryOnly: true });
  }
  await makeRoom(context, select, errors);
  return await Session.open(context, {}, interrupt);
}

/**
 * From a read-only look at the state file, removes the files of the finished jobs of the runs `clean`
 * selects, holding each run's driver lock (so no retry starts meanwhile) and passing over a run with
 * a job still active; the rows go on the pass that follows, as always after the files.
 */
async function makeRoom(context: CommandContext, select: RunFilter, errors: string[]): Promise<void> {
  using reader = new Session(context, { queryOnly: true });
  const jobs = new JobAdmin(reader.db, jobsDirectory(reader.dbPath));
  for (const run of reader.list(select)) {
    if (!isTerminalRun(run.status)) continue;
    let lock: Disposable | null;
    try {
      lock = await reader.locks.tryDriverLock(run.runKey);
    } catch {
      continue; // no room even for its lock file: left for the pass that follows
    }
    using _held = lock;
    if (!lock || isCancelHeld(reader.dbPath, run.runKey)) continue;
    const steps = reader.store.stepAttempts(run.runKey);
    if (runningStep(steps)) continue;
    const { keys, jobs: found } = jobsOfRun(jobs, run.runKey, steps);
    if (found.some((job) => isActiveJob(job.status) || job.aborting)) continue;
    for (const key of keys) {
      const failed = jobs.removeFinishedFiles(key);
      if (failed > 0) errors.push(unremoved(key, failed));
    }
  }
}

/** Deletes runs one at a time, collecting the files it could not remove. A dry run removes nothing. */
class Cleaner {
  readonly errors: string[] = [];
  private readonly jobs: JobAdmin;
  /**
   * What earlier tries at deleting a run removed: a try that another process's write lock cut short
   * (at the row, in a slice of the wait) is run again, and finds gone what the first one removed.
   */
  private readonly removedBefore = new Map<string, Pick<DeletedRun, "jobs" | "files">>();

  constructor(readonly session: Session, readonly dryRun: boolean) {
    this.jobs = new JobAdmin(session.db, jobsDirectory(session.dbPath));
  }

  /** Removes the file at `path` (a dry run: nothing); false when it could not (listed in errors). */
  remove(path: string): boolean {
    if (this.dryRun) return true;
    try {
      Deno.removeSync(path);
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return true;
      this.errors.push(`${path}: ${(error as Error).message}`);
      return false;
    }
    return true;
  }

  /** Removes the built-in runner's `.launch` files that no job points to (see JobAdmin.orphanLaunchFiles). */
  orphanLaunchFiles(): string[] {
    return this.jobs.orphanLaunchFiles(ORPHAN_LAUNCH_AGE_SECONDS).filter((path) => this.remove(path));
  }

  /** Deletes the finished run and what belongs to it; returns what went, or why it was left alone. */
  async deleteRun(runKey: string): Promise<DeletedRun | string> {
    const { session, dryRun } = this;
    // Holding the driver lock keeps every driver, `retry` and `tick` away while the run is deleted.
    // A dry run only probes it, so that it creates no lock file.
    using lock = dryRun ? null : await session.locks.tryDriverLock(runKey);
    const held = dryRun ? await driverHolder(session.dbPath, runKey) : lock ? null : { pid: null };
    // A reader that may not look at locks/ cannot tell: the run is passed over, saying so.
    if (held) return held.unknown ?? "a process holds its driver lock";
    // A cancel still aborting its steps (a command in its grace) is not done with the run.
    if (isCancelHeld(session.dbPath, runKey)) return "a cancel of it is under way";
    // Plain columns only, so that a run whose record is damaged can be deleted like any other.
    const run = session.store.summary(runKey);
    if (!run) return "it was deleted meanwhile";
    if (!isTerminalRun(run.status)) return `it is ${run.status} again`;
    const steps = session.store.stepAttempts(runKey);
    const running = runningStep(steps);
    if (running) return `step ${running} is still RUNNING (a cancel that did not finish?): cancel the run again first`;
    const { keys, jobs } = jobsOfRun(this.jobs, runKey, steps);
    const active = jobs.find((job) => isActiveJob(job.status));
    if (active) return `job ${active.run_key} is still ${active.status}`;
    // An abort in its grace (or one whose aborting process died in it) still has a living process
    // group, which only the job's files let a later reader SIGKILL at the deadline (see JobAdmin.clean).
    const aborting = jobs.find((job) => job.aborting);
    // Worded as `job clean` words it, naming the job.
    if (aborting) return `job ${aborting.run_key} is ABORTED, but ${ABORT_NOT_DONE}`;
    const logs = detachedLogs(session.dbPath, runKey);
    const locks = lockFiles(session.dbPath, runKey);
    const entry: DeletedRun = {
      run_key: runKey,
      flow_id: run.flowId,
      status: run.status,
      finished_at: run.finishedAt,
      jobs: jobs.map((job) => job.job_id),
      files: [logs.stdout, logs.stderr, ...locks].filter(pathExists),
    };
    if (dryRun) return entry;
    this.addEarlierTries(entry);
    // What belongs to the run goes first and the run's row last: a clean interrupted half-way leaves
    // a finished run with fewer files, which the next clean finds and finishes, never files that
    // nothing points to any more.
    for (const key of keys) {
      const result = this.jobs.clean(() => true, key, false);
      if (result.errors > 0) this.errors.push(unremoved(key, result.errors));
    }
    this.remove(logs.stdout);
    this.remove(logs.stderr);
    crashPoint("clean:files-removed");
    stopPoint("clean:files-removed");
    session.store.delete(runKey, TERMINAL_RUN_STATUSES);
    const kept = this.unlinkLockFiles(runKey, lock!);
    // A lock file left for a later clean (its holder) is not among what was deleted.
    entry.files = entry.files.filter((path) => !kept.includes(path));
    this.removedBefore.set(runKey, { jobs: entry.jobs, files: entry.files });
    return entry;
  }

  /** Adds to `entry` what earlier tries at deleting its run removed, and keeps the sum for a later try. */
  private addEarlierTries(entry: DeletedRun): void {
    const before = this.removedBefore.get(entry.run_key);
    if (before) {
      entry.jobs = [...new Set([...before.jobs, ...entry.jobs])];
      entry.files = [...new Set([...before.files, ...entry.files])];
    }
    this.removedBefore.set(entry.run_key, { jobs: entry.jobs, files: entry.files });
  }

  /**
   * Unlinks the deleted run's lock files, each only while held, and only if it is still the file at its
   * path: a process that opens the path afterwards creates a fresh one. The driver lock (`driverLock`)
   * is held since the deletion began; the others are taken now, and one that a process holds (a start
   * or cancel of a new run of the same key, made since the row went) stays for a later clean. Returns
   * the paths left so.
   */
  private unlinkLockFiles(runKey: string, driverLock: HeldLock): string[] {
    const remove = (path: string) => this.remove(path);
    const kept: string[] = [];
    if (!driverLock.unlink(remove)) kept.push(driverLock.path);
    for (const kind of LOCK_KINDS) {
      const path = lockFilePath(this.session.dbPath, runKey, kind);
      if (kind !== "driver" && unlinkFreeLockFile(path, remove) === "held") kept.push(path);
    }
    return kept;
  }
}

/**
 * A step of the ended run that is still RUNNING, or null. A cancel killed half done leaves its aborted
 * steps so: their jobs are ABORTED (recorded before the SIGTERM), but a command that ignores SIGTERM
 * lives on until the SIGKILL that a file of its job holds the time of. Deleting the job with that file
 * left the command running for ever, out of any command's reach; a second cancel finishes the aborts.
 */
function runningStep(steps: readonly StepAttempts[]): string | null {
  return steps.find((step) => step.status === "RUNNING")?.stepId ?? null;
}

/** The run's orchesjob run keys and their jobs, from its steps' plain columns (so a damaged run's too). */
function jobsOfRun(admin: JobAdmin, runKey: string, steps: readonly StepAttempts[]) {
  const keys = jobKeys(runKey, steps);
  return { keys, jobs: keys.flatMap((key) => admin.statuses(key)) };
}

function unremoved(key: string, count: number): string {
  return `${key}: ${count} job file(s) could not be removed`;
}

/** Every orchesjob run key the run's attempts used: `<run>:<step>:1` up to the step's last attempt. */
function jobKeys(runKey: string, steps: readonly { stepId: string; attemptNo: number }[]): string[] {
  return steps.flatMap((step) =>
    Array.from({ length: step.attemptNo }, (_, i) => stepRunKey(runKey, step.stepId, i + 1))
  );
}

function lockFiles(dbPath: string, runKey: string): string[] {
  return LOCK_KINDS.map((kind) => lockFilePath(dbPath, runKey, kind));
}

/**
 * Lock files left by runs that have finished or no longer exist, removed when nobody holds them
 * (those of the runs deleted above are already gone). A live run's lock files are kept.
 */
function cleanLockFiles(session: Session, deletedNow: ReadonlySet<string>, cleaner: Cleaner): string[] {
  const { dryRun } = cleaner;
  const dir = join(stateHome(session.dbPath), "locks");
  let names: string[];
  try {
    names = Array.from(Deno.readDirSync(dir), (entry) => entry.name);
  } catch {
    return [];
  }
  const runs = new Map(session.list({}).map((run) => [safeFileName(run.runKey), run.status]));
  const removed: string[] = [];
  for (const name of names) {
    const match = /^(.*)\.(driver|gate|launch|cancel)\.lock$/.exec(name);
    if (!match) continue;
    const status = runs.get(match[1]);
    if (status !== undefined && !isTerminalRun(status)) continue;
    if ([...deletedNow].some((key) => safeFileName(key) === match[1]) && dryRun) continue; // listed with its run
    const path = join(dir, name);
    // Left when held (a driver, a retry, a cancel is at work) or gone meanwhile (another clean).
    if (unlinkFreeLockFile(path, (path) => cleaner.remove(path)) === "removed") removed.push(path);
  }
  return removed;
}
