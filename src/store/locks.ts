/**
 * Per-run file locks (flock), which the OS releases when the holder dies, however it dies; the
 * engine's DriverLock and StartGate.
 * - The driver lock: held by the one process driving a run (foreground start, detached child,
 *   watch --advance, tick) for as long as it drives.
 * - The start gate: held briefly around "check the run is live, then start a job" and around
 *   "commit the cancel", so no job can start after a cancel is committed.
 * - The launch gate: held by a `start -d`, `resume -d` or `retry -d` while it launches the run's
 *   background driver and sees it hold the run, so concurrent ones take turns.
 * - The cancel lock: held by a `cancel` from before it commits CANCELLED until it has recorded how the
 *   aborted steps ended, so readers can tell a cancel under way from one that died half done.
 * `clean` unlinks a lock file only while it holds it and it is still the file at its path; whoever
 * locks or probes one checks the same, so nobody acts on an unlinked file (see {@link lockAtPath}).
 */
import { type Backoff, join, makeDirectory, nextPause, sleepUnless, stopPoint } from "../shared/mod.ts";
import { type FileIdentity, stateFileIdentity } from "./db.ts";
import { safeFileName, stateHome } from "./paths.ts";

/** Retrying a held driver lock: soon at first (a passing `tick` lets go quickly), then every 0.1 s. */
const LOCK_RETRY: Backoff = { first: 0.02, factor: 2, ceiling: 0.1 };

export class FileLocks {
  /**
   * The state file's real directory, resolved once: resolving it walks every part of its path with a
   * readlink, twice for each lock taken (a driver takes the start gate for every step).
   */
  private home: string | undefined;

  constructor(readonly dbPath: string) {}

  private path(runKey: string, kind: LockKind): string {
    this.home ??= stateHome(this.dbPath);
    makeDirectory(join(this.home, "locks"));
    return lockFileIn(this.home, runKey, kind);
  }

  /** Takes the driver lock if nobody holds it; null when another process (or handle) drives the run. */
  async tryDriverLock(runKey: string): Promise<HeldLock | null> {
    const path = this.path(runKey, "driver");
    const file = await lockAtPath(path, false);
    if (file === null) return null;
    noteHolder(file, stateFileIdentity(this.dbPath));
    return new HeldLock(file, path);
  }

  /**
   * Tries for the driver lock a few times: a holder may be only a passing `tick` or another `start -d`
   * checking whether the run is driven. Gives up (null) at once when `stop` says so (a signal).
   */
  async waitForDriverLock(runKey: string, seconds: number, stop = () => false): Promise<HeldLock | null> {
    const deadline = performance.now() + seconds * 1000;
    for (let pause = nextPause(LOCK_RETRY);; pause = nextPause(LOCK_RETRY, pause)) {
      if (stop()) return null;
      const lock = await this.tryDriverLock(runKey);
      if (lock || performance.now() >= deadline) return lock;
      await sleepUnless(pause, stop);
    }
  }

  /** Runs `fn` holding the run's start gate (waiting for it if needed). */
  withStartGate<T>(runKey: string, fn: () => Promise<T> | T): Promise<T> {
    return this.holding(runKey, "gate", fn);
  }

  /**
   * Runs `fn` holding the run's launch gate: concurrent `start -d` of one run take turns launching
   * and confirming a background driver, so at most one of them reports that it detached one.
   */
  withLaunchGate<T>(runKey: string, fn: () => Promise<T> | T): Promise<T> {
    return this.holding(runKey, "launch", fn);
  }

  /**
   * Runs `fn` holding the run's cancel lock, shared: cancels of one run never wait for each other (a
   * second cancel may cut the first one's grace short, and must not queue behind a stopped one);
   * readers probe it exclusively, which any cancel under way makes fail.
   */
  async withCancelLock<T>(runKey: string, fn: () => Promise<T> | T): Promise<T> {
    let lock: Deno.FsFile | null;
    try {
      lock = await lockAtPath(this.path(runKey, "cancel"), true, false);
    } catch {
      // No room for the lock file (a full disk, no inode left) must not stop a cancel, which needs
      // none: readers then take the run as ended at the commit, as they would after a crash.
      lock = null;
    }
    using _held = lock;
    return await fn();
  }

  private async holding<T>(runKey: string, kind: "gate" | "launch", fn: () => Promise<T> | T): Promise<T> {
    using _held = (await lockAtPath(this.path(runKey, kind), true))!;
    return await fn();
  }
}

/** A lock this process holds, on the file at `path` (which it was when taken). */
export class HeldLock implements Disposable {
  constructor(private readonly file: Deno.FsFile, readonly path: string) {}

  /**
   * Unlinks the lock file while holding it, through `remove`, if it is still the file at its path
   * (it is unless a process that does not take the lock removed it by hand): never a file that
   * another process made at the path since, and may hold. False when it was no longer there.
   */
  unlink(remove: (path: string) => void): boolean {
    if (!sameFile(this.file.statSync(), this.path)) return false;
    remove(this.path);
    return true;
  }

  [Symbol.dispose](): void {
    this.file.close();
  }
}

/**
 * Unlinks the lock file at `path` (through `remove`) if nobody holds it: takes its lock without
 * waiting, and unlinks it while holding it, once it is sure the file it locked is still the one at
 * the path. A lock file opened just before another `clean` unlinked it, and locked after a driver
 * made a new one at the path and took that, is free (nobody holds the orphan): unlinking the path
 * then took the driver's file away from under it, and the next driver made a third one and drove the
 * run beside it. "held" when a process holds it, "gone" when there is no file at the path.
 */
export function unlinkFreeLockFile(path: string, remove: (path: string) => void): "removed" | "held" | "gone" {
  for (;;) {
    let file: Deno.FsFile;
    try {
      // Never created here: a lock file that is gone stays gone.
      file = Deno.openSync(path, { write: true });
    } catch {
      return "gone"; // or not ours to open: left as it is
    }
    const outcome = whileLockedInPlace(file, path, true, () => {
      remove(path);
      return "removed" as const;
    }, () => stopPoint("locks:unlink-opened"));
    if (outcome !== "replaced") return outcome;
  }
}

/**
 * Takes the lock on `file`, just opened at `path`, without waiting, and closes it once done. When
 * nobody held it and it is still the file at the path, runs `free` while holding it and gives what
 * that returns; "held" when a process holds it; "replaced" when `clean` unlinked it after it was
 * opened (the file now at the path is to be looked at afresh). `opened` runs first (a stop point).
 * {@link lockAtPath} is the same check for a lock that is kept, and may be waited for.
 */
function whileLockedInPlace<T>(
  file: Deno.FsFile,
  path: string,
  exclusive: boolean,
  free: () => T,
  opened = () => {},
): T | "held" | "replaced" {
  using _file = file;
  opened();
  if (!file.tryLockSync(exclusive)) return "held";
  return sameFile(file.statSync(), path) ? free() : "replaced";
}

/**
 * Opens (creating it) and flocks the lock file at `path`: waiting for a holder to let go when `wait`,
 * else null if one holds it. A lock counts only if the file is still the one at `path` once locked:
 * `clean` unlinks lock files while it holds them, and a process that opened the old file before the
 * unlink would otherwise lock that orphan while another process locks the new file at the path (two
 * drivers of one run, or a start that does not see a cancel's gate). It then opens the path again.
 * `exclusive` false takes a shared lock (cancels share theirs).
 */
async function lockAtPath(path: string, wait: boolean, exclusive = true): Promise<Deno.FsFile | null> {
  for (;;) {
    // A free lock (the usual case: a driver's start gate, before every start of a step) is opened and
    // taken on this thread; only a held one is waited for on another (each asynchronous call is a hop
    // to a blocking thread and back).
    const file = Deno.openSync(path, { create: true, write: true });
    try {
      if (!file.tryLockSync(exclusive)) {
        if (!wait) {
          file.close();
          return null;
        }
        await file.lock(exclusive);
      }
      if (sameFile(file.statSync(), path)) return file;
    } catch (error) {
      file.close();
      throw error;
    }
    file.close();
  }
}

/** Whether `path` names the file `info` describes (same device and inode); false once it is gone. */
function sameFile(info: Deno.FileInfo, path: string): boolean {
  try {
    const now = Deno.statSync(path);
    return now.dev === info.dev && now.ino === info.ino;
  } catch {
    return false;
  }
}

/** The lock files a run may have: its driver lock, its start gate, its launch lock and its cancel lock. */
export const LOCK_KINDS = ["driver", "gate", "launch", "cancel"] as const;
export type LockKind = typeof LOCK_KINDS[number];

/** The path of one of a run's lock files, without creating anything. */
export function lockFilePath(dbPath: string, runKey: string, kind: LockKind): string {
  return lockFileIn(stateHome(dbPath), runKey, kind);
}

/** {@link lockFilePath} in the state file's real directory `home`. */
function lockFileIn(home: string, runKey: string, kind: LockKind): string {
  return join(home, "locks", `${safeFileName(runKey)}.${kind}.lock`);
}

/** The path of a run's driver lock file, without creating anything. */
export function driverLockPath(dbPath: string, runKey: string): string {
  return lockFilePath(dbPath, runKey, "driver");
}

/**
 * Who holds a run's driver lock: the holder's PID when the system tells it, else null. `unknown` is
 * set when this process may not look at the lock file (a reader without access to `locks/`): then
 * whether any process holds it cannot be told, and `unknown` says why. Callers treat such a run as
 * possibly driven: they neither drive it nor say that nobody does.
 */
export interface DriverHolder {
  pid: number | null;
  unknown?: string;
}

/**
 * Whether some process holds the run's driver lock right now, and which. Creates no file: a run that
 * never had a lock file has no driver. On Linux it reads /proc/locks and takes nothing; elsewhere it
 * probes with a try-lock, which holds the lock for an instant when nobody does, so a driver checking
 * at that very moment may find it taken (a detached driver retries for two seconds).
 */
export async function driverHolder(dbPath: string, runKey: string): Promise<DriverHolder | null> {
  const path = driverLockPath(dbPath, runKey);
  let info: Deno.FileInfo;
  try {
    info = Deno.statSync(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    if (error instanceof Deno.errors.PermissionDenied) return unknownHolder(path);
    throw error;
  }
  const noted = notedHolder(path, info);
  if (noted) return { pid: noted.pid };
  const listed = flockHolder(info);
  if (listed !== undefined) return listed;
  let file: Deno.FsFile;
  let exclusive = true;
  try {
    file = await Deno.open(path, { write: true });
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    // A read-only home: a shared lock on a read-only descriptor tells as well whether a driver holds it.
    try {
      file = await Deno.open(path, { read: true });
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return null;
      if (error instanceof Deno.errors.PermissionDenied) return unknownHolder(path);
      throw error;
    }
    exclusive = false;
  }
  const outcome = whileLockedInPlace(file, path, exclusive, () => null);
  if (outcome === "held") return { pid: null };
  // Free, but a file `clean` unlinked after this opened it: then the one at the path is asked.
  if (outcome === "replaced") return await driverHolder(dbPath, runKey);
  return null;
}

/** A driver lock this process may not look at: whether a process holds it cannot be told. */
function unknownHolder(path: string): DriverHolder {
  return { pid: null, unknown: `cannot tell whether a process drives the run: ${path}: permission denied` };
}

/**
 * Linux: the holder of a driver lock writes "<pid> <fd>" into the lock file, so that finding it costs
 * two small reads instead of one of /proc/locks, which makes the kernel wait for an RCU grace period
 * (3-15 ms a process on a busy machine). The note is only a hint: {@link notedHolder} believes it only
 * when the kernel confirms that this descriptor of this process holds a flock on this very file.
 */
function noteHolder(file: Deno.FsFile, stateFile: FileIdentity | null): void {
  if (Deno.build.os !== "linux") return;
  try {
    const info = file.statSync();
    const fd = lockingDescriptor("self", info);
    // "<pid> <fd> <dev>:<ino>", the last the state file's identity (readers of an earlier version do
    // not take this note, and ask /proc/locks instead).
    const state = stateFile === null ? "" : ` ${stateFile.dev}:${stateFile.ino}`;
    file.truncateSync(0);
    file.writeSync(new TextEncoder().encode(fd === null ? "" : `${Deno.pid} ${fd}${state}\n`));
  } catch { /* no note: driverHolder reads /proc/locks */ }
}

/** The descriptor of `pid` through which it holds a flock on the file, among those open on it. */
function lockingDescriptor(pid: "self", info: Deno.FileInfo): number | null {
  for (const entry of Deno.readDirSync(`/proc/${pid}/fd`)) {
    try {
      const opened = Deno.statSync(`/proc/${pid}/fd/${entry.name}`);
      if (opened.ino === info.ino && opened.dev === info.dev && holdsFlock(pid, entry.name, info)) {
        return Number(entry.name);
      }
    } catch { /* closed meanwhile */ }
  }
  return null;
}

/** Whether the kernel lists a flock on the file held through this descriptor of this process. */
function holdsFlock(pid: string, fd: string, info: Deno.FileInfo): boolean {
  const fdinfo = Deno.readTextFileSync(`/proc/${pid}/fdinfo/${fd}`);
  const id = lockId(info);
  // "lock:\t1: FLOCK  ADVISORY  WRITE 4531 fe:00:2146359 0 EOF": locks held through this descriptor.
  return fdinfo.split("\n").some((line) => /^lock:\s+\d+:\s+FLOCK\s+\S+\s+\S+\s+\d+\s+(\S+)\s/.exec(line)?.[1] === id);
}

/**
 * The state file whose run the holder of a run's driver lock drives, as the holder's note names it,
 * or null: no holder, or one without such a note (not Linux, an earlier version, a bare flock). State
 * files in one directory share lock files by run key, so this may be another state file than `dbPath`.
 */
export function driverStateFile(dbPath: string, runKey: string): FileIdentity | null {
  const path = driverLockPath(dbPath, runKey);
  try {
    return notedHolder(path, Deno.statSync(path))?.stateFile ?? null;
  } catch {
    return null;
  }
}

/** The holder the lock file names, if the kernel says that process's descriptor holds a flock on the file. */
function notedHolder(path: string, info: Deno.FileInfo): { pid: number; stateFile?: FileIdentity } | null {
  if (Deno.build.os !== "linux" || info.dev === null || info.ino === null || info.size === 0) return null;
  try {
    const note = /^(\d+) (\d+)(?: (\d+):(\d+))?\n$/.exec(Deno.readTextFileSync(path));
    if (note && holdsFlock(note[1], note[2], info)) {
      const stateFile = note[3] === undefined ? {} : { stateFile: { dev: Number(note[3]), ino: Number(note[4]) } };
      return { pid: Number(note[1]), ...stateFile };
    }
  } catch { /* no such process or descriptor: ask /proc/locks */ }
  return null;
}

/** A file as /proc/locks and fdinfo name it: "<major>:<minor>:<inode>", major and minor in hex. */
function lockId(info: Deno.FileInfo): string {
  const dev = info.dev!;
  const major = ((dev >> 8) & 0xfff).toString(16).padStart(2, "0");
  const minor = ((dev & 0xff) | ((dev >> 12) & 0xfff00)).toString(16).padStart(2, "0");
  return `${major}:${minor}:${info.ino}`;
}

/** The holder of a flock on the file per /proc/locks; undefined when that cannot be read. */
function flockHolder(info: Deno.FileInfo): DriverHolder | null | undefined {
  if (Deno.build.os !== "linux" || info.dev === null || info.ino === null) return undefined;
  const id = lockId(info);
  // The kernel lists the locks a page per read() call, so locks taken or released by others between two
  // calls can shift a held lock out of the listing: "not listed" is believed after a second reading.
  for (let reading = 0; reading < 2; reading++) {
    let text: string;
    try {
      text = Deno.readTextFileSync("/proc/locks");
    } catch {
      return undefined;
    }
    for (const line of text.split("\n")) {
      // "1: FLOCK  ADVISORY  WRITE 4531 fe:00:2146359 0 EOF"; waiters are listed with "->" and hold nothing.
      const match = /^\d+:\s+FLOCK\s+\S+\s+\S+\s+(\d+)\s+(\S+)\s/.exec(line);
      if (match && match[2] === id) return { pid: Number(match[1]) };
    }
  }
  return null;
}

/** Whether some process holds the run's driver lock right now (see {@link driverHolder}). */
export async function isDriverHeld(dbPath: string, runKey: string): Promise<boolean> {
  return (await driverHolder(dbPath, runKey)) !== null;
}

/**
 * Whether a `cancel` of the run is under way: some process holds its cancel lock. False when no cancel
 * ever ran, and when this process cannot open the lock file (it then cannot tell, and readers must not
 * wait for what they cannot see end). The probe takes the lock for an instant when it is free.
 */
export function isCancelHeld(dbPath: string, runKey: string): boolean {
  return isLockHeld(dbPath, runKey, "cancel");
}

/**
 * Whether a `start -d`, `resume -d` or `retry -d` is launching the run's driver: some process holds
 * its launch gate (see {@link isCancelHeld} for what the probe does and when it says false).
 */
export function isLaunchHeld(dbPath: string, runKey: string): boolean {
  return isLockHeld(dbPath, runKey, "launch");
}

function isLockHeld(dbPath: string, runKey: string, kind: "cancel" | "launch"): boolean {
  const path = lockFilePath(dbPath, runKey, kind);
  for (;;) {
    let file: Deno.FsFile;
    try {
      // flock needs no write access: a reader of a state directory it may not write to can look too.
      file = Deno.openSync(path, { read: true });
    } catch {
      return false;
    }
    let outcome: boolean | "held" | "replaced";
    try {
      outcome = whileLockedInPlace(file, path, true, () => false);
    } catch {
      return false;
    }
    // Replaced: a file `clean` unlinked after this opened it; then the one at the path is asked.
    if (outcome !== "replaced") return outcome === "held";
  }
}
