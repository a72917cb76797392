/** What the run commands share: the state file, the run repository and locks, and each run's executor. */
import type { RunRecord, StepState } from "../domain/mod.ts";
import { Driver, type DriverOptions, loadRun, type RunRepository } from "../engine/mod.ts";
import { ExitCode, UserError } from "./errors.ts";
import {
  checkUsable,
  chooseExecutor,
  createExecutor,
  type Executor,
  ExecutorError,
  JOB_TABLES,
} from "../executor/mod.ts";
import { epochNow, resolve, sleep, sleepUnless, stopPoint } from "../shared/mod.ts";
import {
  busyTimeoutMs,
  changesMade,
  checkStateFile,
  type Database,
  driverHolder,
  type FileIdentity,
  FileLocks,
  isLockHeld,
  isReadOnly,
  jobsDirectory,
  limitLockWait,
  LOCK_HELD_REASON,
  openDatabase,
  openDatabaseReadOnly,
  openOlderReadOnly,
  openStandIn,
  probeWriteLock,
  refuseFileOnPath,
  resolveDbPath,
  type RunFilter,
  RunStore,
  type RunSummary,
  StateFileBehindError,
  stateFileIdentity,
  StateFileReadOnlyError,
  storeWaitReason,
} from "../store/mod.ts";
import { type OptionSpec, type ParsedArgs, suggestName } from "./args.ts";
import type { CommandContext } from "./command.ts";
import type { Interrupt } from "./interrupt.ts";
import { runKeyProblem } from "../flow/mod.ts";
import { printError, printWarning } from "./output.ts";
import { faultJson, resumeHint } from "./render/mod.ts";

export interface SessionOptions {
  /**
   * For commands that only read (status, watch, list, logs): a missing state file is not created
   * (nor its directory); an empty in-memory database stands in, so every run is unknown.
   */
  readOnly?: boolean;
  /**
   * For commands that never write (status, list): an existing state file is opened read-only, so they
   * work on a read-only home or a read-only copy of the file.
   */
  queryOnly?: boolean;
  /**
   * For commands that read and write only at need (wait, watch, logs): an existing state file this
   * process may not write is opened read-only instead of refused; what then needs to write says so
   * ({@link Session.requireWritable}, {@link Session.tryDriverLock}).
   */
  readIfReadOnly?: boolean;
  /**
   * For commands that follow a run and drive it only at need (wait, watch; implies `readIfReadOnly`):
   * an existing state file is opened read-only, as `status` opens it, so following a run needs no
   * write lock, which another process (an admin's sqlite3 shell) may hold for as long as it likes.
   * {@link Session.openForWriting} opens it for writing when the run must be driven.
   */
  follower?: boolean;
  /**
   * For commands that only read but may record what they find (job status, job logs): an existing
   * state file whose write lock another process holds is opened read-only rather than waited for, so
   * they answer at once (what a job's files show, not recorded), as for a file this process may not write.
   */
  readIfLocked?: boolean;
  /**
   * For a command that only reads but records what it reads on the way (logs: a built-in job's end):
   * once the file is open, a statement waits for another process's write lock one slice, not the busy
   * timeout, and the built-in runner skips a record that the lock stops, answering what the job's files
   * show (the next reader records it). In SQLite's wait for the busy timeout, a lock taken after the
   * file was opened held `logs` deaf to signals, then failed it.
   */
  recordUnlessLocked?: boolean;
  /**
   * For commands that act only on runs already stored (retry, cancel, resume, tick, clean): a missing
   * state file is not created, nor its directory, as for `readOnly`: it has no runs, so the run is
   * unknown (exit 3) and `clean` has nothing to delete. A mistyped `--db` or home left an empty state
   * file (and a `jobs/` directory) behind, for a command that then said "run not found".
   */
  storedRuns?: boolean;
}

/** An open state file, and why it is read-only if it was refused for writing. */
interface OpenedState {
  db: Database;
  refused: StateFileReadOnlyError | null;
  /** Opened read-only only to follow (see {@link SessionOptions.follower}), not because writing was refused. */
  following?: boolean;
}

export class Session implements Disposable {
  readonly dbPath: string;
  /** The state file as opened (null: none, an in-memory stand-in): a driver stops if the path comes to name another file. */
  readonly identity: FileIdentity | null;
  readonly locks: FileLocks;
  /** The connection, replaced once by {@link Session.openForWriting} when opened only to follow. */
  private opened: OpenedState;
  private runStore: RunStore;
  private executors = new Map<string, Executor>();
  /** Aborted by {@link Session.stopCalls}: the executors' calls under way are killed. */
  private readonly calls = new AbortController();
  /** How many {@link laterWrite}s wait for another process's write lock. */
  private lockWaits = 0;
  /** The notice of the wait those {@link laterWrite}s share, begun by the first of them. */
  private lockWait: LockWaitNotice = noticeOfOneWait();

  /** See {@link SessionOptions.recordUnlessLocked}. */
  private readonly recordUnlessLocked: boolean;

  constructor(readonly context: CommandContext, options: SessionOptions = {}, opened?: OpenedState) {
    this.dbPath = sessionDbPath(context);
    this.opened = opened ?? openState(this.dbPath, options);
    this.recordUnlessLocked = options.recordUnlessLocked ?? false;
    // Its only writes are records it may skip: none need wait longer for the lock.
    if (this.recordUnlessLocked) limitLockWait(this.db, LOCK_WAIT_SLICE_MS);
    this.identity = stateFileIdentity(this.dbPath);
    this.runStore = new RunStore(this.db);
    this.locks = new FileLocks(this.dbPath);
  }

  /**
   * The state file as a hint to the operator must name it (`--db`): the absolute path of the one this
   * command was given with `--db`, else undefined (the same environment finds the same file again).
   */
  get givenDb(): string | undefined {
    return this.context.globals.db === undefined ? undefined : resolve(this.dbPath);
  }

  /** The command that resumes `runKey` in this state file, for an operator to copy. */
  resumeHint(runKey: string): string {
    return resumeHint(runKey, this.givenDb);
  }

  /**
   * A session opened in short waits for the state file's write lock, retried for as long as another
   * process holds it (an admin's sqlite3 shell): SQLite's own wait would block this process, and fail
   * after the busy timeout. From the start, a signal (`interrupt`) ends that wait with exit 130 and
   * stops the session's calls; nothing is stored before it is opened. Without `interrupt` (start -d)
   * a signal keeps its default action.
   */
  static async open(context: CommandContext, options: SessionOptions, interrupt: Interrupt | null): Promise<Session> {
    return (await Session.openUntil(context, options, interrupt, () => false))!;
  }

  /**
   * {@link Session.open}, given up (null) when `until` says so while the state file's write lock is
   * waited for: a deadline of the command's own (`wait --timeout`), which a follower opening a state
   * file of an older version (migrated under the write lock, which another process may hold) must keep
   * too. A file opened at the first try is kept, however long that took.
   */
  static async openUntil(
    context: CommandContext,
    options: SessionOptions,
    interrupt: Interrupt | null,
    until: () => boolean,
  ): Promise<Session | null> {
    const dbPath = sessionDbPath(context);
    const interrupted = () => interrupt?.requested() ?? false;
    const opened = await openWaiting(dbPath, options, interrupted, until);
    if (opened === null) {
      if (!interrupted()) return null;
      throw new UserError(
        `interrupted while opening state database ${dbPath}; nothing was stored`,
        ExitCode.interrupted,
      );
    }
    const session = new Session(context, options, opened);
    interrupt?.alsoOnSignal(() => session.stopCalls());
    stopPoint("session:opened");
    return session;
  }

  get db(): Database {
    return this.opened.db;
  }

  /** The SQLite side of `runs`, for what only the CLI needs (listing, deleting). */
  get store(): RunStore {
    return this.runStore;
  }

  /** The engine's ports, wired to SQLite and the file locks. */
  get runs(): RunRepository {
    return this.runStore;
  }

  /** Why the state file was opened read-only under `readIfReadOnly`, or null. */
  private get refused(): StateFileReadOnlyError | null {
    return this.opened.refused;
  }

  /**
   * Opens for writing a state file opened read-only to follow a run (see {@link SessionOptions.follower}),
   * waiting out another process's write lock: false when `until` said stop first (a signal, a deadline).
   * A file this process may not write stays read-only, refused as {@link Session.requireWritable} says.
   */
  async openForWriting(until: () => boolean): Promise<boolean> {
    if (!this.opened.following) return true;
    const opened = await openWaiting(this.dbPath, { readIfReadOnly: true }, until);
    if (opened === null) return false;
    this.opened.db.close();
    this.opened = opened;
    this.runStore = new RunStore(opened.db);
    // Made on the read-only connection: they would not write.
    this.executors.clear();
    return true;
  }

  /**
   * Runs `work`, the command's writes, waiting out another process's write lock that its first write
   * meets (see {@link writeWaiting}); when `stop` says so during that wait, exit 130 with the message
   * `interrupted`. With `stop`, `work` must write once (one transaction) unless it is `rerunnable`:
   * its writes wait for the lock in slices, and a try that the lock stopped is run again only if it
   * stored nothing; its later writes, if any, go through {@link laterWrite}. Without `stop`, only the
   * lock ends the wait, and `work` may write several times.
   */
  async writing<T>(
    work: () => Promise<T> | T,
    { stop, interrupted = "", rerunnable = false }: {
      stop?: () => boolean;
      interrupted?: string;
      rerunnable?: boolean;
    } = {},
  ): Promise<T> {
    const done = await writeWaiting(this.db, this.dbPath, work, stop ?? (() => false), rerunnable, stop !== undefined);
    if (done === null) throw new UserError(interrupted, ExitCode.interrupted);
    return done.value;
  }

  /**
   * Runs `write`, one of a command's writes after its first, inside {@link writing} with a stop (so its
   * statements wait for another process's write lock one slice): a try the lock stopped is run again
   * after a pause, for as long as the lock is held, until `stop` says so after such a try: then exit
   * 130 with `interrupted`, which says what the command stored and what finishes it. SQLite's own wait
   * held a command that writes several times (`cancel`) deaf to signals for the busy timeout when a
   * lock was taken between two of its writes. `write` must store nothing when the lock stops it (one
   * transaction), or be whole again when run again; {@link waitingForLock} is true while a try waits.
   */
  async laterWrite<T>(
    write: () => Promise<T> | T,
    { stop, interrupted }: { stop: () => boolean; interrupted: string },
  ): Promise<T> {
    let waiting = false;
    const locked = (error: unknown) => {
      const held = stateFileFault(error) === LOCK_HELD_REASON;
      // The first of the writes waiting together begins the wait that they share.
      if (held && !waiting && this.lockWaits++ === 0) this.lockWait = noticeOfOneWait();
      waiting ||= held;
      return held;
    };
    try {
      // Not stopped before a first try: only a write that the lock holds up is stopped (cancel's
      // `stop` says only whether a signal came in such a wait, not a first Ctrl-C, which lets the
      // aborts finish). Said once for all the writes that wait together (cancel's aborts of several
      // steps, made at once): each of them used to say it.
      const done = await retryWhileLocked(
        this.dbPath,
        async () => await write(),
        locked,
        () => waiting && stop(),
        undefined,
        (since) => this.lockWait(since),
      );
      if (done === null) throw new UserError(interrupted, ExitCode.interrupted);
      return done.value;
    } finally {
      if (waiting) this.lockWaits--;
    }
  }

  /** Whether a {@link laterWrite} is waiting for another process's write lock (a try of it met the lock). */
  get waitingForLock(): boolean {
    return this.lockWaits > 0;
  }

  /** Refuses (exit 2, {@link StateFileReadOnlyError}) what `needs` to write a state file opened read-only. */
  requireWritable(needs: string): void {
    if (this.refused) throw new StateFileReadOnlyError(this.dbPath, this.refused.reason, needs);
  }

  /**
   * The run's driver lock when no process holds it, else null. From a state file opened read-only a
   * run is never driven: null while another process drives it, else the refusal saying `needs`. A
   * state file opened to follow is opened for writing first, unless another process drives the run;
   * null too when `until` stops that wait for the write lock.
   */
  async tryDriverLock(runKey: string, needs: string, until: () => boolean): Promise<Disposable | null> {
    if (this.opened.following && (await driverHolder(this.dbPath, runKey)) !== null) return null;
    if (!(await this.openForWriting(until))) return null;
    if (this.refused === null) return await this.locks.tryDriverLock(runKey);
    if ((await driverHolder(this.dbPath, runKey)) !== null) return null;
    this.requireWritable(needs);
    return null;
  }

  /** The run, or undefined when the state file has no such run. */
  load(runKey: string): RunRecord | undefined {
    return loadRun(this.runs, runKey);
  }

  /**
   * The run a command has been following, read again: exit code 3 too when it is gone, saying that it
   * went meanwhile (a `clean` deletes a run once it has ended, so its outcome can no longer be read).
   */
  runAgain(runKey: string): RunRecord {
    const record = this.load(runKey);
    if (record) return record;
    throw new UserError(
      `run ${runKey} was deleted while this command followed it (a clean after it ended?); ` +
        `its outcome can no longer be read (state file ${this.dbPath})`,
      ExitCode.notFound,
    );
  }

  /** The stored run, or exit code 3 naming the state file searched when there is none. */
  run(runKey: string): RunRecord {
    const record = this.load(runKey);
    if (!record) throw new UserError(`run not found: ${runKey} (state file ${this.dbPath})`, ExitCode.notFound);
    return record;
  }

  /**
   * The run with its orchesjob binary replaced when `--orchesjob-bin` names another one (the kind
   * stays, the old path is kept in `executor.replaced`). Refused (exit 2) for a run on the built-in
   * runner and for a binary that cannot be run.
   */
  rebind(record: RunRecord): RunRecord {
    const bin = this.context.globals.orchesjobBin;
    if (!bin) return record;
    const runKey = record.state.runKey;
    if (record.executor.kind !== "orchesjob") {
      throw new UserError(`run ${runKey} uses the built-in runner; --orchesjob-bin does not apply to it`);
    }
    const executor = chooseExecutor("orchesjob", bin, () => undefined);
    if (executor.bin === record.executor.bin) return record;
    checkUsable(executor, (name) => Deno.env.get(name));
    this.requireWritable(`--orchesjob-bin would change run ${runKey}'s executor`);
    const replaced = [...(record.executor.replaced ?? []), { bin: record.executor.bin!, until: epochNow() }];
    this.store.setExecutor(runKey, { ...executor, replaced });
    return this.run(runKey);
  }

  /**
   * {@link rebind} for a command that a signal stops: the new executor's write (one statement) waits
   * for another process's write lock in short tries, where `stop` is heard (exit 130, saying the run
   * is unchanged), as the command's other first writes do. In SQLite's own wait a write lock taken
   * since the file was opened held `retry`, `resume` or `watch` for the busy timeout, signals unheard.
   */
  async rebindWaiting(record: RunRecord, stop: () => boolean): Promise<RunRecord> {
    if (!this.context.globals.orchesjobBin) return this.rebind(record);
    return await this.writing(() => this.rebind(record), {
      stop,
      interrupted: this.interruptedInLockWait(`run ${record.state.runKey} is unchanged`),
    });
  }

  /** What {@link writing} says when `stop` ended its wait for the write lock; `outcome`: what became of the run. */
  interruptedInLockWait(outcome: string): string {
    return `interrupted while waiting for state database ${this.dbPath}'s write lock; ${outcome}`;
  }

  /** The runs `filter` selects, newest first, from their plain columns (load each with `run`). */
  list(filter: RunFilter): RunSummary[] {
    return this.store.list(filter);
  }

  /** The executor the run was started with (a resumed run keeps it, whatever today's flags say). */
  executorFor(record: RunRecord): Executor {
    // An external orchesjob is called with the run's own environment, so runs differ by it too.
    const runEnv = record.executor.kind === "orchesjob" ? record.state.launch?.env : undefined;
    const id = JSON.stringify([record.executor, runEnv ?? null]);
    let executor = this.executors.get(id);
    if (!executor) {
      executor = createExecutor(
        record.executor,
        this.db,
        jobsDirectory(this.dbPath),
        callTimeoutSec(),
        runEnv,
        this.calls.signal,
        this.recordUnlessLocked,
      );
      this.executors.set(id, executor);
    }
    return executor;
  }

  /**
   * Kills every call to an external orchesjob under way, and refuses later ones: for a command that
   * was interrupted, or ran out of its own time, while a call hangs (up to the call limit, a minute by
   * default). What a killed call did is unknown, as after a crash, and the next driver finds out.
   */
  stopCalls(): void {
    this.calls.abort();
  }

  /**
   * A driver of the run, stopping when `interrupted` says so. With a `deadline` (a `performance.now()`
   * time: wait --timeout's), no statement waits past it for another process's write lock, where the
   * busy timeout would block this process up to 15 s beyond it; the driver takes the lock it did not
   * get as it takes a lock held past the busy timeout (it waits, then stops at `interrupted`).
   */
  driver(record: RunRecord, interrupted?: () => boolean, deadline = Infinity): Driver {
    // A driver that a signal stops waits for another process's write lock in slices, each lost round
    // retried by the driver: SQLite's wait blocks the process, so a signal was heard only once a write
    // had waited the whole busy timeout (or the lock was let go), and the next write waited again.
    const slice = interrupted ? LOCK_WAIT_SLICE_MS : Infinity;
    const limit = () => {
      const ms = Math.min(deadline - performance.now(), slice);
      if (ms !== Infinity) limitLockWait(this.db, ms);
    };
    limit();
    // In slices, a held lock loses a round every slice: said once it has been waited for the busy
    // timeout, then once per busy timeout, as when each write waited the whole busy timeout.
    let lockWait: { since: number; saidAt: number } | null = null;
    const sayNow = (reason: string, since: number): boolean => {
      if (slice === Infinity || reason !== LOCK_HELD_REASON) return true;
      const now = performance.now();
      if (lockWait?.since !== since) lockWait = { since, saidAt: now - slice };
      if (now - lockWait.saidAt < busyTimeoutMs()) return false;
      lockWait.saidAt = now;
      return true;
    };
    return new Driver({
      runs: this.runs,
      gate: this.locks,
      executor: this.executorFor(record),
      pollIntervalSec: this.context.globals.pollInterval,
      interrupted,
      checkStore: () => {
        limit();
        if (this.identity) checkStateFile(this.dbPath, this.identity);
      },
      storeWaitReason: stateFileFault,
      onStoreWait: ({ runKey, reason, since, retryInSec }) => {
        // The driver's note of the wait in the run is the next statement: it must not wait either.
        limit();
        if (!sayNow(reason, since)) return;
        printError(`state database unusable, retrying: ${reason}`, {
          run_key: runKey,
          since,
          retry_in_sec: retryInSec,
        });
      },
      ...executorReports,
      onClockStep: ({ runKey, stepSec, running, delayed }) =>
        printWarning(
          stepSec === null
            ? "times stored ahead of the wall clock (it stepped back since): running timeouts count from now, " +
              "delayed retries wait their delay from now"
            : `the wall clock stepped by ${stepSec > 0 ? "+" : ""}${Math.round(stepSec)} s; ` +
              "running timeouts and delayed retries keep the time they had left",
          { run_key: runKey, step_sec: stepSec === null ? null : Math.round(stepSec * 1000) / 1000, running, delayed },
        ),
    }, record.state.runKey);
  }

  [Symbol.dispose](): void {
    // A call still under way is one nobody waits for any more (a stderr line given up on): it must
    // not outlive the command, orphaned with whatever it started.
    this.stopCalls();
    this.db.close();
  }
}

/**
 * How a driver's executor troubles are told, on its stderr (the terminal of a foreground start, the
 * stderr log of a detached one): each failed call about a step, and each failed `status --running`
 * (once per pause of the list, not once per round).
 */
const executorReports: Pick<DriverOptions, "onExecutorError" | "onListFault"> = {
  onExecutorError: ({ runKey, stepId, attemptNo, fault }) =>
    printError(`executor call failed: ${fault.message}`, {
      run_key: runKey,
      step: stepId,
      attempt_no: attemptNo,
      executor_error: faultJson(fault),
    }),
  onListFault: ({ runKey, fault, pauseSec }) =>
    printWarning(`status --running failed; running steps are asked by run key for ${pauseSec} s: ${fault.message}`, {
      run_key: runKey,
      list_again_in_sec: pauseSec,
      executor_error: faultJson(fault),
    }),
};

function sessionDbPath(context: CommandContext): string {
  return resolveDbPath(context.globals.db, (name) => Deno.env.get(name));
}

/**
 * The state file's connection as `options` ask (see {@link SessionOptions}), and why it is read-only
 * if it is. `lockWaitMs`: how long opening for writing waits for another process's write lock.
 */
function openState(path: string, options: SessionOptions, lockWaitMs?: number): OpenedState {
  if ((options.readOnly || options.queryOnly || options.follower || options.storedRuns) && stateFileMissing(path)) {
    return { db: openStandIn(path, [JOB_TABLES]), refused: null };
  }
  if (options.queryOnly) return { db: openDatabaseReadOnly(path), refused: null };
  if (options.follower) {
    try {
      return { db: openDatabaseReadOnly(path), refused: null, following: true };
    } catch (error) {
      // A schema to migrate first (a file of an older version): that needs the write lock.
      if (!(error instanceof StateFileBehindError)) throw error;
    }
  }
  // A file of the previous release (its runs maybe still driven by it) is read, not migrated, by a
  // command that would only record what it reads: a migration the previous release then refuses.
  const older = options.readIfLocked || options.recordUnlessLocked ? openOlderReadOnly(path) : null;
  if (older !== null) return { db: older, refused: null };
  try {
    // The built-in runner's tables are migrated with the file's own, in the same short, retried waits
    // for the write lock. Left to the runner, a first driver of a state file (start -d's first run, a
    // tick) migrated them once the file was open, under a lock taken meanwhile: blocked in SQLite's
    // wait for the busy timeout, signals unheard, then exit 70.
    return { db: openDatabase(path, lockWaitMs, [JOB_TABLES]), refused: null };
  } catch (error) {
    if (options.readIfLocked && isLockHeld(error)) return { db: readOnlyUnlessBehind(path, error), refused: null };
    if (!(options.readIfReadOnly || options.follower) || !(error instanceof StateFileReadOnlyError)) throw error;
    return { db: openDatabaseReadOnly(path), refused: error };
  }
}

/**
 * Whether no state file is at `path`, so a reader has no runs to show. Only a path that is not there:
 * one this process may not look at (a directory it cannot search) or cannot resolve (a symbolic link
 * loop) is an error to say, not a file with no runs (`list` printed [], `status` "run not found"), and
 * so is one that runs through a file (see refuseFileOnPath).
 */
export function stateFileMissing(path: string): boolean {
  try {
    Deno.statSync(path);
    return false;
  } catch (error) {
    if (error instanceof Deno.errors.NotADirectory) refuseFileOnPath(path);
    return error instanceof Deno.errors.NotFound || error instanceof Deno.errors.NotADirectory;
  }
}

/** The state file opened read-only, or `lockError` again when its schema must first be migrated (under the lock). */
function readOnlyUnlessBehind(path: string, lockError: unknown): Database {
  try {
    return openDatabaseReadOnly(path);
  } catch (error) {
    throw error instanceof StateFileBehindError ? lockError : error;
  }
}

/**
 * How long one try at opening, or one write of a driver that a signal stops, waits for another
 * process's write lock, at most (then it is retried).
 */
const LOCK_WAIT_SLICE_MS = 250;

/**
 * {@link openState}, retried while another process holds the write lock, until `stop` (a signal) says
 * so, or `giveUp` (a deadline, which never discards a file opened at the first try) says so before a
 * retry: then null. Said once on stderr when the wait has lasted the busy timeout, where opening used to fail.
 */
async function openWaiting(
  path: string,
  options: SessionOptions,
  stop: () => boolean,
  giveUp: () => boolean = () => false,
): Promise<OpenedState | null> {
  const got = await retryWhileLocked(
    path,
    async () => {
      const opened = openState(path, options, LOCK_WAIT_SLICE_MS);
      // A signal that came while SQLite waited (which blocks this process) is heard at this turn of the
      // event loop, before the caller stores anything; after it, the caller's writes are whole (each a
      // transaction) and its loop sees the signal at its next look.
      await sleep(0);
      if (!stop()) return opened;
      opened.db.close();
      return null;
    },
    isLockHeld,
    stop,
    giveUp,
  );
  return got?.value ?? null;
}

/**
 * When a wait for another process's write lock is said: given when the wait began, asked at each try
 * the lock stopped, true (once) when it is time to say it.
 */
type LockWaitNotice = (since: number) => boolean;

/** The notice of one wait alone: said once it has lasted the busy timeout. */
function noticeOfOneWait(): LockWaitNotice {
  let said = false;
  return (since) => !said && performance.now() - since >= busyTimeoutMs() && (said = true);
}

/**
 * The one wait for another process's write lock: `attempt` is tried, and tried again after a pause
 * (10 ms doubling to {@link LOCK_WAIT_SLICE_MS}) for as long as it fails with an error that `locked`
 * says is that lock, until `stop` says so, or `giveUp` before a retry: then null; else what it gave.
 * Said once on stderr when the wait has lasted the busy timeout (`notice`: once for all the waits
 * that share it, see {@link Session.laterWrite}).
 */
async function retryWhileLocked<T>(
  path: string,
  attempt: () => Promise<T>,
  locked: (error: unknown) => boolean,
  stop: () => boolean,
  giveUp: () => boolean = () => false,
  notice: LockWaitNotice = noticeOfOneWait(),
): Promise<{ value: T } | null> {
  const started = performance.now();
  for (let pause = 0.01, tried = false;; pause = Math.min(pause * 2, LOCK_WAIT_SLICE_MS / 1000), tried = true) {
    if (stop() || (tried && giveUp())) return null;
    // Said before a try that goes on waiting, not after the one that met the lock: a reader that stops
    // at its second look (and answers from a read-only look) never waits, and a slow first try on a
    // loaded machine made it say that it did.
    if (tried && notice(started)) {
      printWarning(`state database ${path} is locked by another process; waiting until it lets go`);
    }
    try {
      return { value: await attempt() };
    } catch (error) {
      if (!locked(error)) throw error;
    }
    await sleepUnless(pause, () => stop() || giveUp());
  }
}

/**
 * Why `error` is a passing fault of the state file (its write lock held, a full disk), or null. An
 * executor's failure is never one, whatever its text: an external orchesjob saying "database is
 * locked" speaks of its own database, and taken for the state file's lock, a cancel retried that
 * failed abort for ever (as long as orchesjob kept failing), instead of reporting it (exit 5).
 */
export function stateFileFault(error: unknown): string | null {
  return error instanceof ExecutorError ? null : storeWaitReason(error);
}

/**
 * Runs `work`, a command's writes to `db` (the state file at `path`), first waiting out another
 * process's write lock taken since the file was opened: its first write used to meet it, and SQLite's
 * wait blocked this process (signals unheard) for the busy timeout, then failed with exit 70. The lock
 * is looked for in short tries, in which `stop` (a signal) is heard: then null. A try of `work` that a
 * lock stopped before it changed anything is run again from the start (nothing was stored), and so is
 * one that had changed something when `rerunnable` says the work may be run again (an abort resumes,
 * a clean finds what is left; asked after the try, for work that may be run again up to a point: a
 * `job rerun` until its job is stored, whose reading of its source may record that job's end first).
 * Returns what `work` gave, or null when stopped.
 *
 * `sliced`: `work`'s own statements wait for the lock one slice too, not the busy timeout. A lock taken
 * between the probe and `work`'s write (or between two of its writes) otherwise held this process in
 * SQLite's wait for up to 15 s, signals unheard (a Ctrl-C of `start` heard only once the lock went).
 * Only for work whose lost try is run again: one that writes once (it stored nothing), or rerunnable,
 * or one whose writes after its first wait out the lock themselves ({@link Session.laterWrite}).
 */
export async function writeWaiting<T>(
  db: Database,
  path: string,
  work: () => Promise<T> | T,
  stop: () => boolean,
  rerunnable: boolean | (() => boolean) = false,
  sliced = false,
): Promise<{ value: T } | null> {
  let changesBefore = 0;
  const again = typeof rerunnable === "function" ? rerunnable : () => rerunnable;
  const locked = (error: unknown) =>
    stateFileFault(error) === LOCK_HELD_REASON && (again() || changesMade(db) === changesBefore);
  return await retryWhileLocked(
    path,
    async () => {
      if (!isReadOnly(db)) probeWriteLock(db, LOCK_WAIT_SLICE_MS);
      stopPoint("session:lock-probed");
      changesBefore = changesMade(db);
      if (!sliced) return await work();
      limitLockWait(db, LOCK_WAIT_SLICE_MS);
      try {
        return await work();
      } finally {
        limitLockWait(db, busyTimeoutMs());
      }
    },
    locked,
    stop,
  );
}

/** The run's step called `stepId`, or a usage error that suggests the nearest id. */
export function stepOf(record: RunRecord, stepId: string): StepState {
  const step = record.state.steps.find((s) => s.id === stepId);
  if (step) return step;
  const near = suggestName(stepId, record.state.steps.map((s) => s.id));
  throw new UserError(
    `run ${record.state.runKey} has no step ${JSON.stringify(stepId)}` +
      (near ? `; did you mean ${JSON.stringify(near)}?` : ""),
  );
}

/** `-d`: start, resume and retry drive the run in a background process. */
export const DETACH_OPTION: OptionSpec = {
  name: "detach",
  short: "d",
  help: "Drive the run in a background process and return at once.",
};

/** `-q`: no live table while a run is driven in the foreground. */
export const QUIET_OPTION: OptionSpec = {
  name: "quiet",
  short: "q",
  help: "No live table on stderr (shown only when stderr is a terminal).",
};

/** The `--run-key` option of every run command. */
export const RUN_KEY_OPTION: OptionSpec = {
  name: "run-key",
  value: "string",
  metavar: "KEY",
  help: "The flow run's key (required).",
  // runKeyOf refuses an empty key with the run-key rule.
  allowEmpty: true,
};

/**
 * The `--run-key` of a run command, checked by the run-key rule (README "Run keys"). A key the rule
 * refuses is taken only when the state file already holds a run of that key (one stored before the
 * rule refused it): a stored run stays readable, and no new run gets such a key.
 */
export function runKeyOf(context: CommandContext, args: ParsedArgs): string {
  const runKey = args.options["run-key"] as string | undefined;
  if (runKey === undefined) throw new UserError("--run-key is required");
  const problem = runKeyProblem(runKey);
  if (problem === null || isStoredRun(context, runKey)) return runKey;
  throw new UserError(problem);
}

/** True when the state file exists and holds a run of `runKey` (read only: nothing is created). */
function isStoredRun(context: CommandContext, runKey: string): boolean {
  try {
    using session = new Session(context, { queryOnly: true });
    return session.runs.runStatus(runKey) !== undefined;
  } catch {
    // A state file that cannot be read holds no run to keep readable: the key's own error is the one to see.
    return false;
  }
}

/**
 * The time limit of one call to an external orchesjob: 60 s, or `ORCHESJOB_FLOW_CALL_TIMEOUT` seconds
 * (for tests of a hanging orchesjob, and hosts where orchesjob is known to be slow).
 */
function callTimeoutSec(): number {
  const raw = Deno.env.get("ORCHESJOB_FLOW_CALL_TIMEOUT");
  if (!raw) return 60;
  const seconds = Number(raw);
  if (!Number.isFinite(seconds) || seconds <= 0) {
    throw new UserError(`ORCHESJOB_FLOW_CALL_TIMEOUT must be a number of seconds > 0, got ${JSON.stringify(raw)}`);
  }
  return seconds;
}
