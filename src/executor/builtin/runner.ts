/**
 * The built-in job runner: orchesjob's semantics with state in the flow's SQLite file and one
 * shell supervisor per job (see supervisor.ts). It is an {@link Executor} and nothing more; the
 * operator's verbs (rerun, unlock, clean) are in admin.ts.
 */
import { type AbortResult, isActiveJob, type Job, type StartResult } from "../../domain/mod.ts";
import {
  type Backoff,
  crashPoint,
  isNoSpace,
  isoLocal,
  isShortage,
  makeDirectory,
  nextPause,
  nowSeconds,
  pathExists,
  sleep,
  stopPoint,
} from "../../shared/mod.ts";
import { type Database, isReadOnly, LOCK_HELD_REASON, storeWaitReason, transaction } from "../../store/mod.ts";
import {
  type AbortOptions,
  type Executor,
  ExecutorError,
  JobError,
  type JobRef,
  type LogRange,
  type StartOptions,
  type UnlockOptions,
} from "../executor.ts";
import { type JobRow, JobTable, toJob } from "./job_table.ts";
import {
  type LiveGroup,
  liveGroups,
  processHolding,
  processStartTicks,
  processStartTime,
  signal,
} from "./processes.ts";
import { AbortWatch, aliveNow, lookSays, type Probe, type WatchedJob } from "./abort_watch.ts";
import {
  bashPath,
  endedDirectory,
  jobFiles,
  type JobLaunch,
  type Launch,
  launchSupervisors,
  readIntFile,
} from "./supervisor.ts";
import { LaunchServer } from "./launch_server.ts";
import { watchDirectory } from "../watch.ts";

/**
 * A supervisor that claimed its job but never wrote its PID this long after the claim (killed in
 * between) leaves the job LOST; its command never started.
 */
const ORPHAN_GRACE_SECONDS = 30;
/** Within this process, a job launched or relaunched this recently is not relaunched again. */
const RELAUNCH_PAUSE_SECONDS = 5;
/**
 * Jobs per supervisor spawn, and the bytes of their commands and variables: well inside the kernel's
 * limit on a command line (ARG_MAX, 256 KiB on macOS, more on Linux, shared with the environment).
 */
const BATCH_JOBS = 64;
const BATCH_BYTES = 96 * 1024;
/**
 * A job whose command, variables and environment take more than this goes the spawn's way, not the
 * launch server's: an exec too big for the kernel (E2BIG) then fails the spawn, reported as the start
 * failing, rather than the command's exec inside the server with a shell's garbled message.
 */
const SERVER_JOB_BYTES = 64 * 1024;
/** Waiting for a supervisor's files: they usually appear within milliseconds. */
const START_WAIT: Backoff = { first: 0.001, factor: 2, ceiling: 0.05 };

export interface RunOptions extends Partial<StartOptions> {
  sync?: boolean;
}

/** What to run: a new command under a run key, or a finished job's command again (rerun). */
export type RunRequest =
  | { kind: "start"; runKey: string; command: readonly string[] }
  | { kind: "rerun"; source: JobRow; reason: string | null };

/** Whether a start is taken, decided in one transaction: the row to report, and if it is new. */
interface Admission {
  row: JobRow;
  accepted: boolean;
  overrideUsed: boolean;
}

/**
 * How a read reconciles a job (see {@link BuiltinRunner.reconcile}): `relaunch` (default true) an unclaimed
 * job, and record `unlessLocked` (default: the constructor's `recordUnlessLocked`).
 */
export interface ReadOptions {
  relaunch?: boolean;
  unlessLocked?: boolean;
}

/** Why a supervisor spawn failed, and whether for want of descriptors, processes or memory. */
interface SpawnFailure {
  message: string;
  shortage: boolean;
}

/**
 * A job waiting for the next launch, and whom to tell how it went: null (launched), the reason it
 * could not be, or (`failed`) an error that kept it from being recorded (a store fault).
 */
interface PendingLaunch {
  row: JobRow;
  launch: Launch;
  launched: (failure: string | null) => void;
  failed: (error: unknown) => void;
}

/** What `unlock` prints (orchesjob's fields, in its order). */
export interface UnlockResult {
  unlocked: true;
  run_key: string;
  reason: string | null;
  allowed_at: number;
  allowed_at_iso: string | null;
  expires_at: number | null;
  expires_at_iso: string | null;
}

export class BuiltinRunner implements Executor {
  readonly kind = "builtin";
  /**
   * Starts cost a file and a transaction each, no process: a caller may have many in flight, and
   * those made in one turn share one supervisor spawn (see launch).
   */
  readonly startConcurrency = BATCH_JOBS;
  readonly table: JobTable;
  /** Jobs this process (re)launched, and when: its own polls must not relaunch them at once. */
  private readonly launched = new Map<string, number>();
  /** Aborted jobs this process already re-sent SIGTERM to (once is enough; SIGKILL follows the deadline). */
  private readonly reterminated = new Set<string>();
  /** Jobs to launch at the end of this turn, together. */
  private pending: PendingLaunch[] = [];
  /** The launch server, once one was needed (only with `launchServer`). */
  private server: LaunchServer | null = null;
  /** The graces of this process's aborts, looked at together (one pass over /proc per round). */
  private readonly graces = new AbortWatch();
  /**
   * The job this runner's last start or rerun stored (committed), from its commit on: what a command
   * interrupted after it (`job start` in a wait for the write lock) names as stored.
   */
  admitted: JobRow | null = null;
  /**
   * The job whose abort this runner began (its abort file is written) and has not recorded (ABORTED not
   * committed): what a `job abort` interrupted in a wait for the write lock names as begun, not recorded.
   */
  abortUnrecorded: JobRow | null = null;
  /** Jobs this runner recorded ABORTED from an abort file whose abort never recorded it (see reconcile). */
  readonly recordedAborts = new Set<string>();

  /**
   * A state file opened read-only (`status`-like commands on a read-only file): jobs are reported as
   * their supervisors' files show them, and nothing is written, launched or signalled.
   */
  readonly readOnly: boolean;

  /**
   * `launchServer`: launch through one long-lived server (see launch_server.ts) rather than a spawn per
   * batch; for a process that launches many jobs over its life (a driver), not for one-off commands.
   * `recordUnlessLocked`: a reader's record of what a job's files show (its end, its PIDs, a launch that
   * failed) that another process's write lock stops (its statement waits as long as the connection's
   * busy timeout says: one slice for `logs`) is skipped, and the read answers what the files show,
   * unrecorded: the files stay, and the next reader records it. For a command that only reads and
   * records on the way (`logs`), which SQLite's wait for the busy timeout held deaf to signals.
   */
  constructor(
    readonly db: Database,
    readonly dir: string,
    readonly options: { launchServer?: boolean; recordUnlessLocked?: boolean } = {},
  ) {
    this.table = new JobTable(db);
    this.readOnly = isReadOnly(db);
    if (!this.readOnly) makeDirectory(dir);
  }

  // ---- reading, with reconciliation of what supervisors wrote ----

  /**
   * Folds the supervisor's files into an active job's row: RUNNING, a result, ABORTED or LOST. A job is
   * decided LOST only once nothing of it can still run: its supervisor is dead and its process group
   * (the command and whatever it spawned) is empty. A dead supervisor whose command lives on keeps the
   * job active, so a retry never runs beside it. A job never claimed by a supervisor (its launcher died
   * after committing the row) is launched again here (the claim makes that idempotent), unless the
   * reader is an abort (`relaunch` false): launched then, the command could start before the abort's
   * file is there to stop it, and be run only to be killed. A job with an abort file whose command never
   * started (see {@link neverStarted}: no command PID is not enough) and whose supervisor is gone (or
   * never came) ends ABORTED, not LOST: an abort stopped it, one that wrote its file but never its record
   * (see {@link abortJob}), and the record is made here.
   * `unlessLocked`: what another process's write lock keeps from being recorded is answered as the files
   * show it (see the constructor's `recordUnlessLocked`).
   */
  reconcile(
    row: JobRow,
    { relaunch = true, unlessLocked = this.options.recordUnlessLocked ?? false }: ReadOptions = {},
  ): JobRow {
    if (!isActiveJob(row.status)) {
      if (row.status === "ABORTED" && !this.readOnly) this.resumeAbort(row);
      return row;
    }
    const files = jobFiles(this.dir, row.job_id);
    // Looked at before the claim (read by workerOf, then in jobLives): a supervisor that claims the job
    // after that look looks for the abort file after claiming, so it finds it and never starts the command.
    const abortBegun = pathExists(files.abort);
    const now = nowSeconds();
    const changes: Partial<JobRow> = {};
    const worker = workerOf(row, files);
    if (worker !== null && row.worker_pid === null) changes.worker_pid = worker;
    const target = row.target_pid ?? readIntFile(files.target);
    if (target !== null && row.target_pid === null) changes.target_pid = target;
    let exit = readExit(files);
    let lives = exit === null ? jobLives(row, files, worker, now) : true;
    if (lives === null) {
      // Nobody claimed it yet: launched again when `relaunch` says so; unless its abort began (its file
      // was there before the claim was looked for): whatever supervisor claims it now finds that file and
      // quits before the command, so the job is taken as ended, and not launched.
      if (!abortBegun && relaunch && !this.readOnly) this.relaunch(row, unlessLocked);
      lives = !abortBegun;
    }
    if (!lives) {
      // The supervisor writes its result before it exits, so read the result again after seeing it
      // dead: only "dead and still no result" is LOST, or ABORTED when an abort kept the command from starting.
      exit = readExit(files);
      if (exit === null) {
        const end = abortBegun && target === null && neverStarted(files, worker)
          ? abortRecordOf(files, now)
          : { status: "LOST" as const, finished_at: now, updated_at: now };
        Object.assign(changes, end);
      }
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
    if (this.readOnly) return { ...row, ...changes };
    // Conditional on the row still being active: an abort committed meanwhile wins.
    const recorded = this.recordUnlessLocked(() => this.table.updateActive(row.job_id, changes), unlessLocked);
    if (recorded === true && changes.status === "ABORTED") this.abortedByFile(row);
    // Not recorded for a held lock (undefined): what the files show, which the next reader records.
    if (recorded !== false) return { ...row, ...changes };
    return this.table.job(row.job_id) ?? row;
  }

  /** Notes that this runner recorded the abort of `row` that an abort file showed (see {@link reconcile}). */
  private abortedByFile(row: JobRow): void {
    this.recordedAborts.add(row.job_id);
    if (this.abortUnrecorded?.job_id === row.job_id) this.abortUnrecorded = null;
  }

  /** Spawns a supervisor for a committed job nobody claimed, unless this process did so just now. */
  private relaunch(row: JobRow, unlessLocked: boolean): void {
    const last = this.launched.get(row.job_id);
    if (last !== undefined && performance.now() - last < RELAUNCH_PAUSE_SECONDS * 1000) return;
    // Sent to this process's launch server, which is working through what it was sent: not yet.
    if (this.server?.holds(row.job_id, RELAUNCH_PAUSE_SECONDS)) return;
    this.launched.set(row.job_id, performance.now());
    const files = jobFiles(this.dir, row.job_id);
    const launch = readLaunchFile(files.launch);
    // A supervisor starts no command without the launch file (its absence is a cleaned job's, see
    // supervisor.ts): a job stored without one (by an earlier version) gets one, as it is launched here.
    ensureLaunchFile(files.launch);
    // At once, not at the end of the turn: the reader may be a CLI command about to exit.
    const failure = this.spawn([{ row, launch }]);
    // A relaunch is a second launch: the job's own may be on its way still (a driver's launch server
    // working through a backlog, see LaunchServer.holds). One that failed for want of descriptors or
    // processes says nothing of the job, only of this reader (a `job status --running` relaunching a
    // fan-out of hundreds runs out of descriptors partway): the job stays STARTING, unclaimed, for
    // that launch or the next read. Only a spawn that failed for the job's own sake fails it.
    if (failure === null || failure.shortage) return;
    // Unrecorded under a lock (see recordUnlessLocked), the job stays STARTING with nobody claiming it:
    // the next reader launches it again (after this process's pause), or records that it cannot.
    this.recordUnlessLocked(() => this.failLaunch(row, failure.message), unlessLocked);
  }

  /**
   * What `write` gave, or undefined when another process's write lock stopped it and the caller records
   * only `unlessLocked` (see the constructor): `write` is one statement, which stored nothing then. Any
   * other failure (a full disk, a damaged file) is thrown, as without that mode: it is not retried here.
   */
  private recordUnlessLocked<T>(write: () => T, unlessLocked: boolean): T | undefined {
    if (!unlessLocked) return write();
    return recordedUnlessLocked(write);
  }

  /**
   * Spawns the job's supervisor, together with every other job launched in this turn (a driver's
   * round starts its ready steps in one turn: a fan-out is one spawn). Resolves once it is spawned,
   * with null, or with the reason a spawn failed (argument list too long, out of processes): that
   * fails the job (exit code -1, the reason in its stderr file).
   */
  private launch(row: JobRow, launch: Launch): Promise<string | null> {
    return new Promise((launched, failed) => {
      if (this.pending.length === 0) queueMicrotask(() => void this.launchPending());
      this.pending.push({ row, launch, launched, failed });
    });
  }

  /**
   * One launch per batch of pending jobs that share an environment: sent to the launch server, or a
   * spawn; a batch whose spawn fails, job by job.
   */
  private async launchPending(): Promise<void> {
    const pending = this.pending;
    this.pending = [];
    // Without bash, one supervisor per job: sh cannot give a batch's jobs process groups of their own.
    const limit = bashPath() === null ? 1 : BATCH_JOBS;
    const batches: { key: string; jobs: PendingLaunch[]; bytes: number }[] = [];
    const open = new Map<string, (typeof batches)[number]>();
    for (const job of pending) {
      const key = environmentKey(job.launch.baseEnv);
      const bytes = launchBytes(job);
      const current = open.get(key);
      if (current && current.jobs.length < limit && current.bytes + bytes <= BATCH_BYTES) {
        current.jobs.push(job);
        current.bytes += bytes;
      } else {
        const batch = { key, jobs: [job], bytes };
        batches.push(batch);
        open.set(key, batch);
      }
    }
    for (const { key, jobs } of batches) {
      const failure = await this.sendToServer(jobs, key) ? null : this.spawn(jobs);
      for (const job of jobs) {
        // Recording a failed launch writes to the store: its fault (a busy or full database) goes to
        // the job's starter, as it would from a start made alone, rather than nowhere.
        try {
          // A batch that failed is tried job by job: only a job that cannot be launched fails.
          const alone = failure === null || jobs.length === 1 ? failure : this.spawn([job]);
          job.launched(alone === null ? null : this.failLaunch(job.row, alone.message));
        } catch (error) {
          job.failed(error);
        }
      }
    }
  }

  /**
   * Sends a batch to the launch server (started for the first batch, in that batch's environment);
   * false when there is none for it (not wanted, no bash, another environment, or it is gone).
   */
  private async sendToServer(batch: readonly PendingLaunch[], key: string): Promise<boolean> {
    if (!this.options.launchServer || bashPath() === null) return false;
    if (batch.some((job) => key.length + launchBytes(job) > SERVER_JOB_BYTES)) return false;
    if (this.server && !this.server.alive) this.server = null;
    try {
      this.server ??= new LaunchServer(this.dir, key, batch[0].launch.baseEnv);
    } catch {
      return false;
    }
    if (this.server.environmentKey !== key || !await this.server.send(batch.map(jobLaunch))) return false;
    stopPoint("runner:sent-to-server");
    return true;
  }

  /**
   * Spawns one supervisor for `batch` (one environment); null, or why it could not be spawned, and
   * whether that was for want of a resource (see isShortage) rather than the jobs' own sake.
   */
  private spawn(batch: readonly Pick<PendingLaunch, "row" | "launch">[]): SpawnFailure | null {
    try {
      launchSupervisors(this.dir, batch.map(jobLaunch), batch[0].launch.baseEnv);
      return null;
    } catch (error) {
      stopPoint("runner:launch-failed");
      return { message: error instanceof Error ? error.message : String(error), shortage: isShortage(error) };
    }
  }

  /**
   * Records a job that could not be launched as FAILED (exit code -1, the reason in its stderr file),
   * once it is sure no supervisor runs it: a failed spawn says only that this spawn failed. The job may
   * have reached a launch server all the same (a send given up as late, whose server then read it), or
   * another reader may have relaunched it meanwhile; a supervisor may claim it later still. So the job
   * is claimed here first, as a supervisor claims it (O_EXCL): claimed, no supervisor can ever start its
   * command; already claimed, a supervisor owns it and it is no failure (null). A claim that cannot be
   * made (out of descriptors like the spawn) leaves the job unclaimed, STARTING, for a later read to
   * launch (null too). The exit file is written before the row, as a supervisor's would be, so a
   * reader finds the failure even when the row's write is skipped (see recordUnlessLocked).
   */
  private failLaunch(row: JobRow, message: string): string | null {
    const files = jobFiles(this.dir, row.job_id);
    try {
      Deno.writeTextFileSync(files.claim, "", { createNew: true });
    } catch {
      return null;
    }
    const now = nowSeconds();
    Deno.writeTextFileSync(row.stderr_file, `orchesjob-flow: cannot start the job: ${message}\n`);
    Deno.writeTextFileSync(files.exit, "-1\n");
    this.table.updateActive(row.job_id, { status: "FAILED", exit_code: -1, finished_at: now, updated_at: now });
    return message;
  }

  /**
   * An abort is resumable: if the aborting process died during the grace (or before signalling), any
   * later read of the ABORTED job signals its still-living process group again: SIGTERM once, then
   * SIGKILL when the abort's deadline has passed.
   */
  private resumeAbort(row: JobRow): void {
    const files = jobFiles(this.dir, row.job_id);
    const deadline = abortDeadline(row, files);
    const worker = workerOf(row, files);
    if (deadline === null || worker === null || !isJobGroupAlive(worker, row, files)) return;
    if (abortTimeLeft(row, deadline) <= 0) {
      signal(-worker, "SIGKILL");
    } else if (!this.reterminated.has(row.job_id)) {
      this.reterminated.add(row.job_id);
      signal(-worker, "SIGTERM");
    }
  }

  /**
   * The ids of those of `rows` that are aborted jobs whose abort is not done: their process group (the
   * supervisor, or a command that ignores SIGTERM) may still live, and the job's files (the deadline in
   * `.abort`, the supervisor in `.claim`) are what lets a later reader send its SIGKILL, and what the
   * aborting process itself knows the group by. A caller about to delete jobs (`clean`) keeps these.
   * Such an abort is resumed first (see {@link resumeAbort}: a deadline that has passed gets its
   * SIGKILL), then looked at again. Each look is one pass over /proc for all the jobs (see AbortWatch),
   * not one per job: a clean of a thousand aborted jobs made two thousand.
   */
  abortsUnderWay(rows: readonly JobRow[]): Set<string> {
    let living = this.groupsLiving(rows.filter((row) => row.status === "ABORTED"));
    if (!this.readOnly && living.length > 0) {
      for (const row of living) this.resumeAbort(row);
      living = this.groupsLiving(living);
    }
    return new Set(living.map((row) => row.job_id));
  }

  /** Those of `rows` whose process group still lives, by one look each and one pass over /proc for all. */
  private groupsLiving(rows: readonly JobRow[]): JobRow[] {
    const looks = rows.flatMap((row) => {
      const files = jobFiles(this.dir, row.job_id);
      const worker = workerOf(row, files);
      if (worker === null) return [];
      const job = jobGroup(worker, row, files);
      return [{ row, job, probe: job.probe() }];
    });
    const asked = looks.filter(({ probe }) => probe === "group").map(({ job }) => job.group);
    const seen = asked.length > 0 ? liveGroups(asked) : new Map<number, LiveGroup>();
    return looks.filter(({ job, probe }) => lookSays(job, probe, seen.get(job.group))).map(({ row }) => row);
  }

  /**
   * Until an aborted job's process group is gone (SIGKILL at its deadline, or after `graceSeconds` if
   * that comes first): a new attempt must not start beside a previous one that is still dying.
   * Returns the row read again.
   */
  async settleAbort(row: JobRow, graceSeconds = Infinity): Promise<JobRow> {
    if (row.status !== "ABORTED" || this.readOnly) return row;
    const files = jobFiles(this.dir, row.job_id);
    const deadline = abortDeadline(row, files);
    const worker = workerOf(row, files);
    if (deadline === null || worker === null || !isJobGroupAlive(worker, row, files)) return row;
    const grace = Math.min(graceSeconds, abortTimeLeft(row, deadline));
    await terminate(jobGroup(worker, row, files), this.graces, row.target_pid, grace);
    return this.table.job(row.job_id) ?? row;
  }

  /** The run key's current job, or a job by id, reconciled (see {@link reconcile} for `relaunch`, `unlessLocked`). */
  row(ref: JobRef, options: ReadOptions = {}): JobRow | undefined {
    const row = "jobId" in ref ? this.table.job(ref.jobId) : this.table.currentJob(ref.runKey);
    return row && this.reconcile(row, options);
  }

  async status(runKey: string): Promise<Job | null> {
    const row = this.row({ runKey });
    return row ? toJob(await this.settleAbort(row)) : null;
  }

  running(): Promise<Job[]> {
    const rows = this.table.activeJobs().map((row) => this.reconcile(row));
    return Promise.resolve(rows.filter((row) => isActiveJob(row.status)).map(toJob));
  }

  /** Null for no such job or no such file; a file that is there but cannot be read is an ExecutorError. */
  logs(ref: JobRef, stream: "stdout" | "stderr", range?: LogRange): Promise<Uint8Array | null> {
    const row = this.row(ref);
    if (!row) return Promise.resolve(null);
    const path = stream === "stdout" ? row.stdout_file : row.stderr_file;
    try {
      return Promise.resolve(readRange(path, range));
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return Promise.resolve(null);
      // A reader without access to jobs/ (mode 0700) cannot tell whether the file is there: not "gone".
      const why = error instanceof Deno.errors.PermissionDenied ? "permission denied" : (error as Error).message;
      return Promise.reject(new ExecutorError(`cannot read ${path}: ${why}`, "unreadable"));
    }
  }

  /**
   * A supervisor makes `ended/<job>.exit` as the job's last act, once `<job>.exit` is complete, so an
   * event there means that job just ended (maybe another run's: the caller ignores run keys not its
   * own). Only that directory is watched: the jobs directory has an event for each write() to any
   * job's output, and watching it made every driver of the state file wake for each (an idle driver
   * spent 65% of a core while another run's step printed 100k lines). Supervisors of earlier versions
   * make no such file: polling finds their ends. Removals (`clean`) are no news. A job id the table
   * does not know (yet) is reported as "something changed".
   */
  watch(onChange: (runKeys?: readonly string[]) => void): Disposable | null {
    // Any kind but reads and removals: FSEvents (macOS) may report a creation as "any" or "other".
    const ended = (kind: Deno.FsEvent["kind"], path: string) =>
      kind !== "access" && kind !== "remove" && path.endsWith(".exit");
    const dir = endedDirectory(this.dir);
    try {
      makeDirectory(dir);
    } catch {
      return null; // a read-only home, a full disk: polling alone
    }
    return watchDirectory(dir, ended, (paths) => {
      const runKeys: string[] = [];
      try {
        for (const path of paths) {
          const jobId = path.slice(path.lastIndexOf("/") + 1, -".exit".length);
          const runKey = this.table.job(jobId)?.run_key;
          if (runKey === undefined) return onChange();
          runKeys.push(runKey);
        }
      } catch {
        return onChange();
      }
      onChange(runKeys);
    });
  }

  // ---- starting ----

  start(runKey: string, command: readonly string[], options: RunOptions): Promise<StartResult> {
    return this.run({ kind: "start", runKey, command }, options);
  }

  /** Starts (or, when the run key's job is active or strict forbids it, reports) a job. */
  async run(request: RunRequest, options: RunOptions): Promise<StartResult> {
    const strict = options.strict ?? false;
    const jobId = crypto.randomUUID();
    const files = jobFiles(this.dir, jobId);
    // How to launch goes to a file before the row exists, so whoever relaunches the job (any later
    // reader, from its own directory and environment) starts it as this process would have: in this
    // directory, with this environment, unless the caller named others.
    const launch: Launch = {
      env: options.env,
      baseEnv: options.baseEnv ?? Deno.env.toObject(),
      cwd: options.cwd ?? Deno.cwd(),
    };
    writeLaunchFile(files.launch, launch);
    this.launched.set(jobId, performance.now());
    crashPoint("runner:launch-written");
    stopPoint("runner:launch-written");
    let admission: Admission;
    try {
      admission = transaction(this.db, () => this.admit(request, strict, jobId));
    } catch (error) {
      // Nothing was committed (another process's write lock, a full disk): no row will point to the
      // file, and the caller's next try (a wait for the write lock, a driver's next round) writes its
      // own under a new id. A crash before the commit leaves it: `clean` removes it once it is old.
      removeQuietly(files.launch);
      throw error;
    }
    let row = admission.row;
    if (!admission.accepted) removeQuietly(files.launch);
    if (admission.accepted) {
      this.admitted = row;
      // Intent before action: the STARTING row is committed before the supervisor exists. A crash
      // from here until the supervisor claims the job leaves a row with no claim, and the next read
      // launches it (the claim makes launching idempotent): never a lost start, never a process
      // nobody knows about. The supervisor's PID is recorded from the file it writes once it owns
      // the job, not from the spawn: a relaunched supervisor that lost the claim owns nothing.
      crashPoint("runner:after-job-row");
      stopPoint("runner:after-job-row");
      const failure = await this.launch(row, launch);
      if (failure !== null) throw new ExecutorError(`cannot launch the job: ${failure}`, "exit");
      crashPoint("runner:after-supervisor-spawn");
      stopPoint("runner:after-supervisor-spawn");
    }
    if (options.sync) row = await this.waitFor(row, (r) => !isActiveJob(r.status), Infinity);
    else if (!options.noWait) {
      row = await this.waitFor(row, (r) => r.status !== "STARTING", options.startTimeoutSec ?? 10);
    }
    return {
      ...toJob(row),
      accepted: admission.accepted,
      existing: !admission.accepted,
      mode: options.sync ? "sync" : "async",
      strict,
      strict_override_used: admission.overrideUsed,
      ...(request.kind === "rerun" ? { rerun: true as const } : {}),
    };
  }

  /**
   * Inside the start's transaction: an active job is reported, not doubled; a strict start of a
   * finished key needs an unused, unexpired unlock (which it uses up); otherwise a STARTING row. A
   * rerun is refused when its key's job is active: the caller found it finished before this
   * transaction, but a start or another rerun may have made one since, which must not run twice.
   */
  private admit(request: RunRequest, strict: boolean, jobId: string): Admission {
    const runKey = request.kind === "start" ? request.runKey : request.source.run_key;
    const current = this.row({ runKey });
    if (request.kind === "rerun" && current && isActiveJob(current.status)) {
      throw new JobError(`Cannot rerun active job: status=${current.status}`, "invalidState");
    }
    let overrideUsed = false;
    let rerunReason = request.kind === "rerun" ? request.reason : null;
    if (request.kind === "start" && current) {
      if (isActiveJob(current.status)) return { row: current, accepted: false, overrideUsed };
      if (strict) {
        const unlock = this.table.unlock(runKey);
        const valid = unlock && unlock.used_at === null &&
          (unlock.expires_at === null || unlock.expires_at > nowSeconds());
        if (!valid) return { row: current, accepted: false, overrideUsed };
        overrideUsed = true;
        rerunReason = unlock.reason;
        this.table.markUnlockUsed(runKey, nowSeconds());
      }
    }
    const files = jobFiles(this.dir, jobId);
    const row: JobRow = {
      job_id: jobId,
      run_key: runKey,
      command: request.kind === "start" ? JSON.stringify(request.command) : request.source.command,
      worker_pid: null,
      target_pid: null,
      status: "STARTING",
      exit_code: null,
      stdout_file: files.stdout,
      stderr_file: files.stderr,
      attempt_no: this.table.maxAttempt(runKey) + 1,
      rerun_of_job_id: request.kind === "rerun" ? request.source.job_id : current?.job_id ?? null,
      rerun_reason: rerunReason,
      abort_reason: null,
      started_at: nowSeconds(),
      finished_at: null,
      updated_at: null,
      aborted_at: null,
    };
    this.table.insertJob(row);
    return { row, accepted: true, overrideUsed };
  }

  /**
   * Polls the supervisor's files (cheap) until `done` holds for the reconciled row or time runs out.
   * A poll whose recording another process's write lock stops (its statement waits as long as the
   * connection's busy timeout says: one slice for `job start`) is not recorded, and the next poll
   * tries again: between polls a signal is heard, where SQLite's wait for the busy timeout held `job
   * start` deaf once its job was stored. Such a poll answers what the files show, as a reader does
   * (`job status` under the lock): taken for the row as last recorded, a start under a lock held past
   * its --start-timeout reported STARTING a job whose command ran (and a `--sync` start waited for the
   * lock to go, its job ended).
   */
  private async waitFor(row: JobRow, done: (row: JobRow) => boolean, timeoutSec: number): Promise<JobRow> {
    const deadline = performance.now() + timeoutSec * 1000;
    const files = jobFiles(this.dir, row.job_id);
    let current = recordedUnlessLocked(() => this.reconcile(row, { unlessLocked: true })) ?? row;
    for (let pause = nextPause(START_WAIT); !done(current) && performance.now() < deadline;) {
      await sleep(Math.min(pause, (deadline - performance.now()) / 1000));
      // Stat the supervisor's files each time (cheap); reconcile through SQLite once they say something.
      if (pathExists(files.target) || pathExists(files.exit) || pause >= START_WAIT.ceiling) {
        current = recordedUnlessLocked(() => this.row({ jobId: row.job_id }, { unlessLocked: true })) ?? current;
      }
      pause = nextPause(START_WAIT, pause);
    }
    return current;
  }

  // ---- unlocking ----

  /** The Executor's unlock: false, not an error, when the key is unknown or its job active. */
  unlock(runKey: string, options: UnlockOptions): Promise<boolean> {
    try {
      this.storeUnlock(runKey, options.reason, options.ttlSec);
      return Promise.resolve(true);
    } catch (error) {
      if (error instanceof JobError && (error.reason === "notFound" || error.reason === "invalidState")) {
        return Promise.resolve(false);
      }
      throw error;
    }
  }

  /**
   * orchesjob `unlock`: lets the next strict start of the finished run key make a job (until
   * `ttlSeconds`, if given). A JobError when the key is unknown or its job active.
   */
  storeUnlock(runKey: string, reason: string | null, ttlSeconds: number | null): UnlockResult {
    const now = nowSeconds();
    const expires = ttlSeconds === null ? null : now + ttlSeconds;
    // The key's job is looked at in the transaction that stores the unlock: looked at before it, a
    // start (or rerun) committed in between left an unlock stored beside a running job, which
    // orchesjob refuses (exit 4), and a clean in between one for a key it had just removed (exit 3).
    transaction(this.db, () => {
      const current = this.row({ runKey });
      if (current === undefined) throw new JobError("run_key not found", "notFound");
      if (isActiveJob(current.status)) {
        throw new JobError(`Cannot unlock active job: status=${current.status}`, "invalidState");
      }
      this.table.putUnlock({ run_key: runKey, allowed_at: now, used_at: null, reason, expires_at: expires });
    });
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

  // ---- stopping ----

  async abort(runKey: string, options: AbortOptions): Promise<Job | null> {
    // Not relaunched: a job nobody launched is aborted as it is, its command never started.
    const row = this.row({ runKey }, { relaunch: false });
    if (!row) return null;
    // Aborted already, by a process that died during the grace (a driver timing the job out): this
    // abort finishes that one, its SIGKILL due at the earlier of the two deadlines. Nothing else would
    // send it, and a retry must not start beside the living group.
    if (row.status === "ABORTED") return toJob(await this.settleAbort(row, options.graceSeconds));
    if (!isActiveJob(row.status)) return toJob(row);
    try {
      return await this.abortJob(row, options);
    } catch (error) {
      // It finished between our read and the abort: report how it ended.
      if (error instanceof JobError && error.reason === "invalidState") return toJob(this.row({ jobId: row.job_id })!);
      throw error;
    }
  }

  /** orchesjob `abort`: record ABORTED, then SIGTERM the job's process group, then SIGKILL after the grace. */
  async abortJob(row: JobRow, options: AbortOptions): Promise<AbortResult> {
    const now = nowSeconds();
    const files = jobFiles(this.dir, row.job_id);
    const record: AbortRecord = { aborted_at: now, reason: options.reason ?? null };
    const deadline = now + Math.ceil(options.graceSeconds);
    // The record-to-be first (its time and reason), then the deadline, then the record: whoever finds
    // the abort file with the job still active (this process stopped before its record) has the
    // abort's own time and reason to record the job ABORTED with, once the abort kept its command
    // from starting (see reconcile).
    writeAbortRecord(files.abortRecord, record);
    // The deadline is written before the record: with it, any later read can finish this abort if we die
    // during the grace (see resumeAbort), and a supervisor not yet going never starts the command.
    try {
      Deno.writeTextFileSync(files.abort, `${deadline}\n`);
      // Begun, not recorded: until the commit below, a signal that stops this process says so.
      this.abortUnrecorded = row;
    } catch (error) {
      // No room for the file (a disk out of inodes). A job whose supervisor is going is aborted all
      // the same: this process signals it, and a reader after its death takes the deadline from the
      // abort's time (see abortDeadline). A job not yet claimed is not: its supervisor, still to come,
      // would look for that file. The error stands then, and the abort can be asked again.
      if (!isNoSpace(error) || workerOf(row, files) === null) throw error;
    }
    stopPoint("runner:abort-file-written");
    // The ABORTED record is committed before any signal: the supervisor's late result can then never
    // replace it, and a strict start already sees the run key as used. Only while the command has not
    // ended on its own, looked at under the write lock: a reader that a lock kept from recording that end
    // answered it from the files all the same (a `job start --sync`, `job status`), and ABORTED recorded
    // after the wait for that lock contradicted it. Ended, the job is recorded as it ended (below).
    const recorded = transaction(this.db, () =>
      !pathExists(files.exit) && this.table.updateActive(row.job_id, {
        status: "ABORTED",
        finished_at: now,
        aborted_at: now,
        updated_at: now,
        abort_reason: record.reason,
      }));
    if (!recorded) {
      const latest = this.row({ jobId: row.job_id }) ?? row;
      // Recorded by a reader that found this abort's file (the supervisor quit at it): this abort's own.
      const ours = latest.status === "ABORTED" && latest.abort_reason === record.reason &&
        readIntFile(files.abort) === deadline;
      if (!ours) throw new JobError(`Job is not running: ${row.job_id} status=${latest.status}`, "invalidState");
    }
    this.abortUnrecorded = null;
    const worker = workerOf(row, files);
    const target = row.target_pid ?? readIntFile(files.target);
    const job = worker === null ? null : jobGroup(worker, row, files);
    const flags = await terminate(job, this.graces, target, options.graceSeconds);
    const after = this.table.job(row.job_id) ?? row;
    return { ...toJob(after), aborted: true, ...flags };
  }
}

/**
 * Whether the command of a job whose supervisor is gone (or never came) and that left no command PID
 * certainly never started: its supervisor never wrote its PID (it writes it before its first look for an
 * abort, and forks the command only after its last), or it said that it quit at an abort before the
 * command (`unstarted`). No PID alone says nothing: a supervisor killed between forking the command and
 * writing its PID leaves none, and that command ran (or runs on, out of the job's group).
 */
function neverStarted(files: ReturnType<typeof jobFiles>, worker: number | null): boolean {
  return worker === null || pathExists(files.unstarted);
}

/**
 * Whether an active job without a result may still run: its supervisor or its process group lives, or
 * it was claimed so recently that its supervisor may not have written its PID yet; null when nobody
 * claimed it yet (see {@link BuiltinRunner.reconcile}, which launches it again or takes it as ended).
 */
function jobLives(
  row: JobRow,
  files: ReturnType<typeof jobFiles>,
  worker: number | null,
  now: number,
): boolean | null {
  if (worker !== null) return isJobGroupAlive(worker, row, files);
  if (pathExists(files.claim)) return now - (statMtime(files.claim) ?? now) < ORPHAN_GRACE_SECONDS;
  return null;
}

/** What an abort records (see {@link BuiltinRunner.abortJob}): when, and why. */
interface AbortRecord {
  aborted_at: number;
  reason: string | null;
}

/**
 * Writes an abort's record-to-be, one line of JSON. Best effort: it serves only a reader that finds the
 * abort unrecorded, which without it records the abort file's time and no reason.
 */
function writeAbortRecord(path: string, record: AbortRecord): void {
  try {
    Deno.writeTextFileSync(path, `${JSON.stringify(record)}\n`);
  } catch {
    removeQuietly(path);
  }
}

/**
 * The ABORTED record of an abort that wrote its file but not its record (see reconcile): its time and
 * reason from its record file, or, without a whole one, the abort file's time and no reason.
 */
function abortRecordOf(files: ReturnType<typeof jobFiles>, now: number): Partial<JobRow> {
  let record: Partial<AbortRecord> = {};
  try {
    const text = Deno.readTextFileSync(files.abortRecord);
    if (text.endsWith("\n")) record = JSON.parse(text);
  } catch {
    // none, or half written: the abort file's time
  }
  const at = typeof record.aborted_at === "number" ? record.aborted_at : Math.floor(statMtime(files.abort) ?? now);
  const reason = typeof record.reason === "string" ? record.reason : null;
  return { status: "ABORTED", finished_at: at, aborted_at: at, updated_at: now, abort_reason: reason };
}

/** Writes a job's launch file (mode 0600: it holds the job's environment). */
function writeLaunchFile(path: string, launch: Launch): void {
  try {
    Deno.writeTextFileSync(path, JSON.stringify(launch), { mode: 0o600 });
  } catch (error) {
    // A full disk can leave the file made and empty: no row will ever point to it.
    removeQuietly(path);
    throw error;
  }
}

/** An abort's signal flags (orchesjob's), none sent yet. */
export function noSignals() {
  return { sent_term_target: false, sent_term_worker: false, sent_kill_target: false, sent_kill_worker: false };
}

/**
 * SIGTERM to the supervisor's process group, then SIGKILL after `graceSeconds`. The supervisor leads
 * its own session and process group; the command and everything it spawned are in that group.
 * Signals go out only while a look says the group is still the job's: checked again before the
 * SIGKILL and at every look during the grace, as a group that emptied may have its id taken by an
 * unrelated process (a reused PID) meanwhile, which must not be killed. The grace's looks are taken
 * with those of every other abort of this process (`graces`).
 */
async function terminate(job: WatchedJob | null, graces: AbortWatch, target: number | null, graceSeconds: number) {
  const flags = noSignals();
  // The group, not only the supervisor: a command outliving a killed supervisor is still the job's.
  // This look is the abort's own, in the turn of the SIGTERM it allows.
  if (job === null || !aliveNow(job)) return flags;
  const worker = job.group;
  // The whole group is signalled even when no command PID is known: the supervisor may have started
  // the command without having written its PID yet, and a command signalled through its supervisor
  // alone would live on. (The flags keep orchesjob's meaning: a target known and signalled.)
  const termed = signal(-worker, "SIGTERM");
  flags.sent_term_target = target !== null && termed;
  flags.sent_term_worker = signal(worker, "SIGTERM");
  crashPoint("runner:abort-grace");
  stopPoint("runner:abort-grace");
  let killed = false;
  // The SIGKILL is sent by the look that found the group still the job's at the grace's end, in its turn.
  const kill = () => {
    killed = signal(-worker, "SIGKILL");
    flags.sent_kill_worker = signal(worker, "SIGKILL");
  };
  if (await graces.until(job, performance.now() + graceSeconds * 1000, 0.05, kill)) return flags;
  flags.sent_kill_target = target !== null && killed;
  await graces.until(job, performance.now() + 2000, 0.02);
  return flags;
}

/**
 * What `read` gives, or undefined when another process's write lock stopped what it records: a SQLite
 * statement of this runner's own that says so (an executor's failure never comes through here).
 */
function recordedUnlessLocked<T>(read: () => T): T | undefined {
  try {
    return read();
  } catch (error) {
    if (storeWaitReason(error) === LOCK_HELD_REASON) return undefined;
    throw error;
  }
}

function statMtime(path: string): number | null {
  try {
    return (Deno.statSync(path).mtime?.getTime() ?? 0) / 1000;
  } catch {
    return null;
  }
}

/** A file's bytes, or only the part `range` selects, reading no more of the file than that. */
function readRange(path: string, range?: LogRange): Uint8Array {
  if (!range) return Deno.readFileSync(path);
  using file = Deno.openSync(path, { read: true });
  const size = file.statSync().size;
  const start = "from" in range ? Math.min(range.from, size) : Math.max(0, size - range.last);
  const end = "from" in range && range.max !== undefined ? Math.min(size, start + range.max) : size;
  file.seekSync(start, Deno.SeekMode.Start);
  const bytes = new Uint8Array(end - start);
  let read = 0;
  while (read < bytes.length) {
    const n = file.readSync(bytes.subarray(read));
    if (n === null) break;
    read += n;
  }
  return bytes.subarray(0, read);
}

/** The exit status, from `.exit`, or from a complete `.exit.tmp` an earlier version's supervisor never renamed. */
function readExit(files: ReturnType<typeof jobFiles>): number | null {
  return readIntFile(files.exit) ?? readIntFile(`${files.exit}.tmp`);
}

function removeQuietly(path: string): void {
  try {
    Deno.removeSync(path);
  } catch {
    // never written
  }
}

/** Makes an empty launch file (`{}`: launched as the reader is) where there is none; best effort. */
function ensureLaunchFile(path: string): void {
  try {
    Deno.writeTextFileSync(path, "{}", { createNew: true, mode: 0o600 });
  } catch {
    // there already (the usual case), or no room: a supervisor then starts no command, and the job ends LOST
  }
}

function readLaunchFile(path: string): Launch {
  try {
    return JSON.parse(Deno.readTextFileSync(path));
  } catch {
    return {};
  }
}

/** About how many bytes a job's command and variables take on the supervisor's command line. */
function launchBytes({ row, launch }: Pick<PendingLaunch, "row" | "launch">): number {
  let bytes = row.command.length + row.job_id.length + (launch.cwd?.length ?? 0) + 16;
  for (const [name, value] of Object.entries(launch.env ?? {})) bytes += name.length + value.length + 2;
  return bytes;
}

/**
 * The claim file's "PID", "PID MARK", and either with " @START" (the supervisor's start in clock ticks
 * after boot, where there is /proc); null before the PID is written (or for an earlier version's claim
 * directory).
 */
function readClaim(
  files: ReturnType<typeof jobFiles>,
): { pid: number; mark: string | null; startTicks: number | null } | null {
  try {
    const claim = /^(\d+)(?: ([^@\s]\S*))?(?: @(\d+))?\n$/.exec(Deno.readTextFileSync(files.claim));
    return claim && { pid: Number(claim[1]), mark: claim[2] ?? null, startTicks: claim[3] ? Number(claim[3]) : null };
  } catch {
    return null;
  }
}

/**
 * When an aborted job's process group is to be SIGKILLed: its abort file's deadline, or, when the
 * abort found no room for that file, {@link FALLBACK_GRACE_SECONDS} after the abort while its
 * supervisor (known by its command line, not a reused PID) is still there. Null: nothing to finish.
 */
function abortDeadline(row: JobRow, files: ReturnType<typeof jobFiles>): number | null {
  const deadline = readIntFile(files.abort);
  if (deadline !== null || row.aborted_at === null || pathExists(files.abort)) return deadline;
  const worker = workerOf(row, files);
  if (worker === null || !isJobGroupAlive(worker, row, files)) return null;
  return Math.ceil(row.aborted_at) + FALLBACK_GRACE_SECONDS;
}

/**
 * What is left of an aborted job's grace (seconds, 0 when none) by its deadline, which is on the wall
 * clock of the abort's time. A deadline further ahead than the grace itself (its distance from the
 * abort's time, whole seconds) can only mean the clock stepped back since: it counts as passed, or a
 * command that ignores SIGTERM would get its SIGKILL that much later (an hour, after an hour's step).
 */
function abortTimeLeft(row: JobRow, deadline: number): number {
  const left = deadline - nowSeconds();
  const grace = row.aborted_at === null ? left : deadline - row.aborted_at;
  return left > grace + 1 ? 0 : Math.max(0, left);
}

/**
 * Whether the job's supervisor, or anything left in its process group, still runs (see jobGroup).
 */
function isJobGroupAlive(worker: number, row: JobRow, files: ReturnType<typeof jobFiles>): boolean {
  return aliveNow(jobGroup(worker, row, files));
}

/**
 * The job's process group, as an abort looks at it. The supervisor's PID may have been reused since
 * it died (an aborted job is read again days later, by `clean` or a resume) by a process that leads a
 * group of its own, maybe another job's supervisor launched by the same server, whose command line
 * shows the same mark: no late signal may reach that one. A PID is not reused while it still names a
 * living group, so only a living leader is in doubt, and it is the job's only if it started before the
 * job was claimed (Linux; elsewhere, as before, the command line or a living group decides).
 */
function jobGroup(worker: number, row: JobRow, files: ReturnType<typeof jobFiles>): WatchedJob {
  const claimedAt = () => statMtime(files.claim) ?? statMtime(files.worker);
  // The boot time behind a start is whole seconds: a leader that started up to 2 s after the claim
  // (which the job's own supervisor wrote after it started) is given the benefit of the doubt.
  const startedAfterClaim = (started: number | null) => {
    const claimed = claimedAt();
    return claimed !== null && started !== null && started > claimed + 2;
  };
  // Where the claim holds the supervisor's start in ticks, a leader with another start is another
  // process, exactly: within those 2 s, another job of the same launch server (the same mark) may
  // have taken the PID, and was signalled as the job's.
  const ticks = readClaim(files)?.startTicks ?? null;
  const notTheSupervisor = (leaderTicks: number | null, started: () => number | null) =>
    ticks !== null ? leaderTicks !== null && leaderTicks !== ticks : startedAfterClaim(started());
  return {
    group: worker,
    probe(): Probe {
      if (notTheSupervisor(processStartTicks(worker), () => processStartTime(worker))) return "gone";
      const holder = processHolding(worker, markerOf(row, files));
      if (holder === "ours") return "alive";
      // The supervisor's PID came round to another program: the job's group ended before (see
      // processHolding), and a group of that id now is not the job's.
      return holder === "other" ? "gone" : "group";
    },
    // A leader seen in /proc after the probe found none (or none it could read) is a process that took
    // the PID since, unless it started before the claim.
    owns: (seen: LiveGroup) => !notTheSupervisor(seen.leaderTicks, () => seen.leaderStarted),
  };
}

/** The grace of an abort that could not record its own: the default of `abort --grace-seconds`. */
const FALLBACK_GRACE_SECONDS = 5;

/** The job's supervisor PID: recorded, or from the claim file (read only until recorded), or an earlier version's own file. */
function workerOf(row: JobRow, files: ReturnType<typeof jobFiles>): number | null {
  return row.worker_pid ?? readClaim(files)?.pid ?? readIntFile(files.worker);
}

/** What the supervisor's command line shows: a launch server's mark (from the claim), or the job id. */
function markerOf(row: JobRow, files: ReturnType<typeof jobFiles>): string {
  return readClaim(files)?.mark ?? row.job_id;
}

const environmentKeys = new WeakMap<Record<string, string>, string>();

/** The same text for the same variables, whatever their order (Deno.env.toObject's varies). */
function environmentKey(env: Record<string, string> | undefined): string {
  if (env === undefined) return "";
  let key = environmentKeys.get(env);
  if (key === undefined) {
    key = JSON.stringify(Object.entries(env).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    environmentKeys.set(env, key);
  }
  return key;
}

function jobLaunch({ row, launch }: Pick<PendingLaunch, "row" | "launch">): JobLaunch {
  return { jobId: row.job_id, command: JSON.parse(row.command), env: launch.env, cwd: launch.cwd };
}
