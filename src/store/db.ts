/**
 * The SQLite connection: directories made 0700, WAL, a busy timeout, and schema migrations recorded
 * in `schema_meta`. Every module that stores state takes a {@link Database} from here.
 */
import { DatabaseSync, type StatementSync } from "node:sqlite";
import { dirname, isNoSpace, join, makeDirectory, readEnv } from "../shared/mod.ts";
import { DB_FILE_NAME, realStatePath } from "./paths.ts";
import { MIGRATIONS, READABLE_FROM } from "./schema.ts";

export type Database = DatabaseSync;

/** The state file cannot be used (unreadable, not SQLite, from a newer version). Nothing was changed. */
export class StateFileError extends Error {
  override name = "StateFileError";
}

/**
 * The state file this process opened is no longer at its path (deleted, or replaced by another file):
 * writing on would change a file nobody reads again, so whoever drives a run stops.
 */
export class StateFileChangedError extends StateFileError {
  override name = "StateFileChangedError";
}

/**
 * The state file cannot be opened now for a reason of the machine, not of the file: a full disk (no
 * room for its WAL), an I/O error, a write lock held past the busy timeout. Nothing was changed; the
 * same command can succeed once the fault passes.
 */
export class StateFileUnavailableError extends StateFileError {
  override name = "StateFileUnavailableError";
  /** "full": no room on the device (the one fault that `clean` can act on); "locked": a held write lock. */
  constructor(message: string, readonly why: "full" | "locked") {
    super(message);
  }
}

/**
 * This process may read the state file but not write it (its mode, a read-only mount, an immutable
 * file). Commands that only read open such a file read-only; one that must write says so with this.
 */
export class StateFileReadOnlyError extends StateFileError {
  override name = "StateFileReadOnlyError";
  constructor(
    readonly path: string,
    readonly reason: string,
    needs = "this command writes to it (status, list, logs, wait, watch --no-advance and job status/logs only read it)",
  ) {
    super(`state database ${path} is read-only here (${reason}); ${needs}`);
  }
}

/**
 * The state file's schema is older than this version's, and a read-only connection cannot migrate it:
 * a command that may write opens the file for writing instead.
 */
export class StateFileBehindError extends StateFileError {
  override name = "StateFileBehindError";
}

/** Connections opened by {@link openDatabaseReadOnly}, with the path of their file. */
const readOnlyConnections = new WeakMap<Database, string>();

/** Whether `db` was opened read-only: whoever uses it must not try to write. */
export function isReadOnly(db: Database): boolean {
  return readOnlyConnections.has(db);
}

/** Which file a path names: device and inode. */
export interface FileIdentity {
  dev: number;
  ino: number;
}

/** The identity of the file at `path`, or null when there is none. */
export function stateFileIdentity(path: string): FileIdentity | null {
  try {
    const info = Deno.statSync(path);
    return { dev: info.dev, ino: info.ino ?? 0 };
  } catch {
    return null;
  }
}

/** Throws {@link StateFileChangedError} unless `path` still names the file `opened` identified. */
export function checkStateFile(path: string, opened: FileIdentity): void {
  const now = stateFileIdentity(path);
  if (now === null) throw new StateFileChangedError(`state database ${path} was deleted while in use; stopping`);
  if (now.dev !== opened.dev || now.ino !== opened.ino) {
    throw new StateFileChangedError(`state database ${path} was replaced by another file while in use; stopping`);
  }
}

/**
 * A new state file is made whole under a temporary name and then linked into place (which fails if
 * another process got there first), so the path never names an empty file of ours. A zero-length
 * file found there is therefore damage (a truncation, a failed copy), never a fresh state: treating
 * it as one would run every old run key again. The fresh file is built in memory and written by this
 * process, not by SQLite: SQLite never opens the temporary name, so its path limit (see
 * {@link checkPathLength}) is the state file's own, not that of a longer temporary name.
 */
function createIfMissing(path: string): void {
  if (stateFileIdentity(path) !== null) return;
  const temp = join(dirname(path), `.orchesjob-flow-new-${crypto.randomUUID()}`);
  try {
    writeSynced(temp, freshImage());
    try {
      Deno.linkSync(temp, path);
    } catch (error) {
      if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
    }
  } finally {
    try {
      Deno.removeSync(temp);
    } catch { /* not there */ }
  }
}

/** The bytes of a state file with the schema migrated and in WAL mode, as a fresh file on disk would have. */
function freshImage(): Uint8Array {
  const fresh = new DatabaseSync(":memory:");
  try {
    migrate(fresh, "schema_version", MIGRATIONS);
    const image = fresh.serialize();
    // The header's write and read versions: 2 marks a WAL database (1 is a rollback journal), exactly
    // what `PRAGMA journal_mode = WAL` writes there; an in-memory database cannot be switched itself.
    image[18] = 2;
    image[19] = 2;
    return image;
  } finally {
    fresh.close();
  }
}

/** Writes `bytes` to a new file (0600) and syncs it, so a crash after the link leaves a whole file. */
function writeSynced(path: string, bytes: Uint8Array): void {
  using file = Deno.openSync(path, { write: true, createNew: true, mode: 0o600 });
  for (let at = 0; at < bytes.length;) at += file.writeSync(bytes.subarray(at));
  file.syncSync();
}

/**
 * The longest path SQLite opens, in bytes: its unix VFS takes at most 512 for a file name, and refuses a
 * database whose "-journal" name (8 bytes more) would not fit. It counts the absolute path with every
 * symbolic link resolved, as {@link realStatePath} makes it.
 */
export const SQLITE_MAX_PATH_BYTES = 504;

/**
 * Refuses a state file's path that runs through a file that is not a directory (`ORCHESJOB_FLOW_HOME`
 * set to a file, `--db flow.yaml/state.sqlite3`): no state file can ever be there. Readers took it for
 * a missing file (list printed [], status said "run not found") and `start` said "File exists: mkdir".
 */
export function refuseFileOnPath(path: string): void {
  for (let dir = dirname(path);; dir = dirname(dir)) {
    let info: Deno.FileInfo;
    try {
      info = Deno.statSync(dir);
    } catch {
      if (dirname(dir) === dir) return;
      continue; // not there (to be made), or not for this process to look at (said when it is opened)
    }
    if (!info.isDirectory) {
      throw new StateFileError(
        `cannot open state database ${path}: ${dir} is not a directory (check --db, ` +
          "ORCHESJOB_FLOW_HOME, ORCHESJOB_HOME)",
      );
    }
    return;
  }
}

/**
 * Refuses what is at `path` when it cannot be a state file, before SQLite opens it: a directory (`--db`
 * given the state directory, such as systemd's StateDirectory, instead of the file in it), which SQLite
 * reports as "disk I/O error" or "unable to open database file", and which would then be taken for a
 * read-only file; a device or a FIFO; and a zero-length file (see {@link createIfMissing}).
 */
function refuseNonStateFile(path: string): void {
  const info = Deno.statSync(path);
  if (info.isDirectory) {
    throw new StateFileError(
      `cannot open state database ${path}: it is a directory; --db takes the state file's path, ` +
        `such as ${join(path, DB_FILE_NAME)}`,
    );
  }
  // A device or a FIFO (`--db /dev/null` for "keep no state"): it reads as zero bytes, and the advice for
  // an empty file below (remove it) would be harmful there.
  if (!info.isFile) {
    throw new StateFileError(
      `cannot open state database ${path}: it is not a regular file; --db takes the state file's path ` +
        "(it need not exist yet)",
    );
  }
  if (info.size === 0) {
    throw new StateFileError(
      `state database ${path} is empty (zero bytes): it was truncated or copied incompletely; ` +
        "restore it from a backup, or remove it to start with no runs at all",
    );
  }
}

/**
 * Refuses an SQLite database of another program (`--db` given orchesjob's own `orchesjob.db`, or an
 * application's file): one that holds tables but no `schema_meta`, which every state file has had
 * since its first version. Opened for writing, such a file was switched to WAL, made 0600 and given
 * this program's tables beside its own (the built-in runner's `jobs` table left out where it had one
 * of that name, whose rows it then took for its jobs); read, it was said to be a state file of an older
 * version, for a command that writes to migrate.
 */
function refuseOtherDatabase(db: DatabaseSync, path: string): void {
  const tables = db.prepare(
    "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name",
  ).all().map((row) => String(row.name));
  if (tables.length === 0 || tables.includes("schema_meta")) return;
  const shown = tables.slice(0, 5).map((name) => JSON.stringify(name)).join(", ");
  throw new StateFileError(
    `state database ${path} is not an orchesjob-flow state file: it is an SQLite database with other tables ` +
      `(${shown}${tables.length > 5 ? `, and ${tables.length - 5} more` : ""}) and none of this program's; ` +
      "nothing was changed in it; --db takes a state file of its own (it need not exist yet)",
  );
}

/** The page cache of each connection, in KiB (see openDatabase). */
const CACHE_KIB = 512;

/** Refuses, before anything is created, a state file whose path SQLite could not open. */
function checkPathLength(path: string): void {
  const full = realStatePath(path);
  const bytes = new TextEncoder().encode(full).length;
  if (bytes <= SQLITE_MAX_PATH_BYTES) return;
  throw new StateFileError(
    `state database path too long for SQLite: ${bytes} bytes as an absolute path with links resolved, where ` +
      `SQLite opens at most ${SQLITE_MAX_PATH_BYTES}; choose a shorter path: ${full}`,
  );
}

/** How long a statement waits for another process's write lock before failing (then retried by a driver). */
export function busyTimeoutMs(): number {
  // Test-only: fault tests shorten the wait so a held lock is reported within their time.
  const raw = readEnv("ORCHESJOB_FLOW_BUSY_TIMEOUT_MS");
  const ms = Number(raw);
  return raw && Number.isInteger(ms) && ms >= 0 ? ms : 15000;
}

/** Another component's tables in the state file (the built-in runner's): what {@link migrate} takes. */
export interface SchemaPart {
  key: string;
  migrations: readonly string[];
}

/**
 * Opens (creating if needed) the state file and brings its schema up to date, and that of `parts`.
 * Opening takes the write lock (a probe, and migrations), waiting `lockWaitMs` for it (default: the
 * busy timeout); statements then wait the busy timeout. SQLite's wait blocks the whole process, signals
 * and timers included: a command that must stay responsive opens in short waits and retries
 * ({@link StateFileUnavailableError}).
 */
export function openDatabase(path: string, lockWaitMs = busyTimeoutMs(), parts: readonly SchemaPart[] = []): Database {
  let db: DatabaseSync | undefined;
  try {
    if (path !== ":memory:") {
      checkPathLength(path);
      try {
        makeDirectory(dirname(path));
      } catch (error) {
        // A path through a file fails here ("File exists: mkdir"): said as such, looked for only then.
        refuseFileOnPath(path);
        throw error;
      }
      createIfMissing(path);
      refuseNonStateFile(path);
    }
    db = new DatabaseSync(path);
    db.exec(`PRAGMA busy_timeout = ${lockWaitMs}`);
    const opened = db;
    // Before anything is changed in it: another program's database is not switched to WAL or made 0600.
    if (path !== ":memory:") retryWhileBusy(() => refuseOtherDatabase(opened, path), lockWaitMs);
    // Switching a new file to WAL takes an exclusive lock, and SQLite answers "database is locked" at
    // once (without the busy timeout) when another process is doing the same: retried here.
    retryWhileBusy(() => opened.exec("PRAGMA journal_mode = WAL"), lockWaitMs);
    db.exec("PRAGMA synchronous = NORMAL");
    db.exec("PRAGMA foreign_keys = ON");
    // A page cache of 512 KiB, not SQLite's 2 MiB: a driver reads and writes a few rows per round,
    // the operating system caches the file anyway, and a 10k-step run's create and first read filled
    // the larger cache, which then stayed in the driver's memory for the whole run.
    db.exec(`PRAGMA cache_size = -${CACHE_KIB}`);
    try {
      // At most 0600 (the stored environment may hold secrets), but never made writable: a file its
      // owner made read-only stays read-only, and is refused below as such.
      const mode = Deno.statSync(path).mode! & 0o777;
      if ((mode & 0o600) !== mode) Deno.chmodSync(path, mode & 0o600);
    } catch { /* not ours to change (another user's file we can still use) */ }
    migrate(db, "schema_version", MIGRATIONS, { probeWrite: true, lockWaitMs, path });
    for (const part of parts) migrate(db, part.key, part.migrations, { lockWaitMs, path });
    db.exec(`PRAGMA busy_timeout = ${busyTimeoutMs()}`);
    return db;
  } catch (error) {
    db?.close();
    if (error instanceof StateFileError) throw error;
    const message = error instanceof Error ? error.message : String(error);
    throw passingFault(error, path) ?? readOnlyError(path, message) ??
      new StateFileError(`cannot open state database ${path}: ${message}`);
  }
}

/**
 * The error for a state file that SQLite could not open for writing or write, because this process
 * may not write it, or null when something else went wrong. (SQLite opens a file it may not write
 * read-only without a word; the probe write in {@link migrate} finds out.) Only called once this
 * process's connection to the file is closed: closing a probe's descriptor drops its POSIX locks.
 */
function readOnlyError(path: string, message: string): StateFileReadOnlyError | null {
  const readonly = /readonly database/.test(message);
  if (path === ":memory:" || !(readonly || /unable to open database file/.test(message))) return null;
  const problem = writeProblem(path);
  if (problem !== null) return new StateFileReadOnlyError(path, problem);
  return readonly ? new StateFileReadOnlyError(path, "its -wal or -shm file, or its directory, is read-only") : null;
}

/** Why this process may not write `path`, or null when it may (or cannot even read it: not a read-only file). */
function writeProblem(path: string): string | null {
  try {
    Deno.openSync(path, { read: true }).close();
  } catch {
    return null;
  }
  try {
    Deno.openSync(path, { read: true, write: true }).close();
    return null;
  } catch (error) {
    return (error instanceof Error ? error.message : String(error)).replace(/: open '.*'$/s, "");
  }
}

/**
 * Runs `step` again while SQLite reports the file busy in the ways its busy timeout does not cover
 * (a journal-mode change, a read lock that cannot be upgraded), pausing 5 ms doubling to 200 ms.
 */
function retryWhileBusy<T>(step: () => T, lockWaitMs: number): T {
  // Opening waits out other processes' locks as long as a statement does (the busy timeout), unless told otherwise.
  // Monotonic: a step of the wall clock neither ends the wait at once nor makes it last an hour.
  const deadline = performance.now() + lockWaitMs;
  const pause = new Int32Array(new SharedArrayBuffer(4));
  for (let wait = 5;; wait = Math.min(wait * 2, 200)) {
    try {
      return step();
    } catch (error) {
      if (!isBusy(error) || performance.now() >= deadline) throw error;
      Atomics.wait(pause, 0, 0, wait);
    }
  }
}

/**
 * Lets a statement of `db` wait for another process's write lock at most `ms` (never more than the busy
 * timeout): for a command with a deadline of its own (`wait --timeout`), since SQLite's wait blocks it.
 */
export function limitLockWait(db: Database, ms: number): void {
  db.exec(`PRAGMA busy_timeout = ${Math.max(0, Math.min(Math.ceil(ms), busyTimeoutMs()))}`);
}

/**
 * How many rows this connection has inserted, changed or deleted since it was opened (rolled back or
 * not): unchanged across a piece of work, that work stored nothing.
 */
export function changesMade(db: Database): number {
  return Number((prepared(db, "SELECT total_changes() AS n").get() as { n: number | bigint }).n);
}

/**
 * Takes the write lock and lets it go at once, waiting at most `ms` for another process to let go of
 * it: throws SQLite's "database is locked" when it is held longer. The busy timeout is as it was.
 */
export function probeWriteLock(db: Database, ms: number): void {
  limitLockWait(db, ms);
  try {
    db.exec("BEGIN IMMEDIATE");
    db.exec("ROLLBACK");
  } finally {
    db.exec(`PRAGMA busy_timeout = ${busyTimeoutMs()}`);
  }
}

/** Whether opening the state file failed only because another process held its write lock (it passes). */
export function isLockHeld(error: unknown): boolean {
  return error instanceof StateFileUnavailableError && error.why === "locked";
}

function isBusy(error: unknown): boolean {
  return error instanceof Error && /database is locked|SQLITE_BUSY/i.test(error.message);
}

/**
 * Opens an existing state file for reading only (status, list): nothing is created, migrated or
 * chmod-ed, so it works on a read-only home or a read-only copy. A WAL file needs its `-shm` beside
 * it, which a read-only directory may lack and cannot get: then the file is read as immutable (no
 * other process can be writing it there either).
 */
export function openDatabaseReadOnly(path: string): Database {
  let db: DatabaseSync | undefined;
  try {
    checkPathLength(path);
    refuseNonStateFile(path);
    try {
      db = new DatabaseSync(path, { readOnly: true });
      db.exec(`PRAGMA busy_timeout = ${busyTimeoutMs()}`);
      db.prepare("SELECT count(*) FROM sqlite_master").get();
    } catch {
      db?.close();
      db = new DatabaseSync(`file:${encodeURI(path).replaceAll("?", "%3f").replaceAll("#", "%23")}?immutable=1`, {
        readOnly: true,
      });
    }
    readOnlyConnections.set(db, path);
    refuseOtherDatabase(db, path);
    // An older file that this version can read is read as it is (see READABLE_FROM): not migrated.
    checkMigrated(db, "schema_version", MIGRATIONS, READABLE_FROM);
    return db;
  } catch (error) {
    db?.close();
    if (error instanceof StateFileError) throw error;
    const message = error instanceof Error ? error.message : String(error);
    throw passingFault(error, path) ?? new StateFileError(`cannot open state database ${path}: ${message}`);
  }
}

/**
 * The state file opened read-only when its schema is older than this version's but readable as it is
 * (see READABLE_FROM), else null (up to date, or not readable so: whoever opens it next says why). For
 * a command that only reads but would record on the way (logs, job status): on such a file it answers
 * without recording, rather than migrate it for a record (a migration the previous release refuses).
 */
export function openOlderReadOnly(path: string): Database | null {
  let db: Database | undefined;
  try {
    db = openDatabaseReadOnly(path);
    if (storedVersion(db, "schema_version") < MIGRATIONS.length) return db;
  } catch { /* not readable so: opened for writing, which says why */ }
  db?.close();
  return null;
}

/**
 * An empty database in memory that stands in for a state file not at `path`, for a command that only
 * reads it or acts on runs already stored: every run is unknown. Counted as read-only, so that nothing
 * made for it (the built-in runner's jobs directory) creates a directory or file beside `path`.
 */
export function openStandIn(path: string, parts: readonly SchemaPart[] = []): Database {
  const db = openDatabase(":memory:", undefined, parts);
  readOnlyConnections.set(db, path);
  return db;
}

/**
 * For a connection opened read-only, in place of {@link migrate}: refuses a file whose `key` in
 * `schema_meta` counts more than `migrations` (newer), or fewer than `readableFrom` (older than its
 * readers can read unmigrated, and this process cannot migrate it).
 */
export function checkMigrated(
  db: Database,
  key: string,
  migrations: readonly string[],
  readableFrom = migrations.length,
): void {
  const path = readOnlyConnections.get(db) ?? "";
  const found = storedVersion(db, key);
  const what = key === "schema_version" ? "schema version" : key.replaceAll("_", " ");
  if (found > migrations.length) {
    throw new StateFileError(
      `state database ${what} ${found} is newer than this orchesjob-flow understands (${migrations.length}): ${path}`,
    );
  }
  if (found < readableFrom) {
    throw new StateFileBehindError(
      `state database ${path} has ${what} ${found}, this orchesjob-flow reads ${migrations.length}; ` +
        "run a writing command (start, resume) once with write access to migrate it",
    );
  }
}

/** How many of its migrations `key` in `schema_meta` counts (0 without that table), read without a write lock. */
function storedVersion(db: Database, key: string): number {
  const has = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_meta'").get();
  const version = has && db.prepare("SELECT value FROM schema_meta WHERE key = ?").get(key) as
    | { value?: string }
    | undefined;
  return Number(version?.value ?? 0);
}

/**
 * Brings one component's tables up to date: `migrations[n]` runs once, in order, and `key` in
 * `schema_meta` counts how many ran. The flow store and the built-in runner each have their own.
 * Tables already up to date are only read, so no write lock is needed (another process, an admin's
 * sqlite3 shell, may hold it for long), unless `probeWrite` asks for the write that finds out whether
 * this process may write the file at all (done once, when the file is opened).
 */
export function migrate(
  db: Database,
  key: string,
  migrations: readonly string[],
  options: { probeWrite?: boolean; lockWaitMs?: number; path?: string } = {},
): void {
  if (!options.probeWrite && storedVersion(db, key) === migrations.length) return;
  retryWhileBusy(() => migrateOnce(db, key, migrations, options.path), options.lockWaitMs ?? busyTimeoutMs());
}

/** `path`: the file, named in the error for a newer schema (as a read-only opening names it). */
function migrateOnce(db: Database, key: string, migrations: readonly string[], path?: string): void {
  // In a write transaction (BEGIN IMMEDIATE waits on the busy timeout; a bare statement's lock
  // upgrade may fail at once).
  transaction(db, () => {
    db.exec("CREATE TABLE IF NOT EXISTS schema_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)");
    // Writes nothing, but only where writing is allowed: a file SQLite opened read-only without a word
    // (its mode, a read-only mount) is found out here, not at the first real write.
    db.exec("DELETE FROM schema_meta WHERE 0");
  });
  const current = () =>
    Number(
      (db.prepare("SELECT value FROM schema_meta WHERE key = ?").get(key) as { value?: string } | undefined)?.value ??
        0,
    );
  if (current() > migrations.length) {
    throw new StateFileError(
      `state database ${
        key.replaceAll("_", " ")
      } ${current()} is newer than this orchesjob-flow understands (${migrations.length})${path ? `: ${path}` : ""}`,
    );
  }
  while (current() < migrations.length) {
    transaction(db, () => {
      // Re-read inside the write lock: another process may have migrated meanwhile.
      const version = current();
      if (version >= migrations.length) return;
      db.exec(migrations[version]);
      db.prepare("INSERT OR REPLACE INTO schema_meta (key, value) VALUES (?, ?)").run(key, String(version + 1));
    });
  }
}

/** Runs `fn` in one write transaction (BEGIN IMMEDIATE), committing on return and rolling back on throw. */
export function transaction<T>(db: Database, fn: () => T): T {
  db.exec("BEGIN IMMEDIATE");
  try {
    const result = fn();
    db.exec("COMMIT");
    return result;
  } catch (error) {
    if (db.isTransaction) db.exec("ROLLBACK");
    throw error;
  }
}

/**
 * Runs `fn` in one read transaction (a deferred BEGIN: it takes no write lock, and in WAL mode another
 * process's write lock does not hold it up), so that every statement in it reads the same snapshot.
 * Inside a transaction already, `fn` just runs in it.
 */
export function readTransaction<T>(db: Database, fn: () => T): T {
  if (db.isTransaction) return fn();
  db.exec("BEGIN");
  try {
    return fn();
  } finally {
    if (db.isTransaction) db.exec("COMMIT");
  }
}

/**
 * Each SQL text prepared once per connection. node:sqlite frees a statement only when it is
 * garbage-collected, so preparing on every call made a long run's memory grow with its steps.
 * The texts are finite (status lists and column sets come from constants), so the cache is bounded.
 */
const statements = new WeakMap<Database, Map<string, StatementSync>>();

export function prepared(db: Database, sql: string): StatementSync {
  let cache = statements.get(db);
  if (!cache) {
    cache = new Map();
    statements.set(db, cache);
  }
  let statement = cache.get(sql);
  if (!statement) {
    statement = db.prepare(sql);
    cache.set(sql, statement);
  }
  return statement;
}

/** {@link storeWaitReason} for another process's write lock. */
export const LOCK_HELD_REASON = "database is locked (another process holds its write lock)";

/**
 * Why a failed statement is worth retrying, or null: another process holds the write lock past the
 * busy timeout (an admin's sqlite3 shell), or the disk is full (for the database, or for a file a round
 * writes beside it). Both pass; a driver waits them out with backoff instead of dying with the run left
 * RUNNING and nothing driving it.
 */
export function storeWaitReason(error: unknown): string | null {
  return storeFault(error)?.reason ?? null;
}

/** Which passing fault `error` is (a held write lock, a full disk) and how to say it, or null. */
function storeFault(error: unknown): { why: "locked" | "full"; reason: string } | null {
  if (!(error instanceof Error)) return null;
  const errcode = (error as { errcode?: unknown }).errcode;
  const primary = typeof errcode === "number" ? errcode & 0xff : null;
  if (primary === SQLITE_BUSY || primary === SQLITE_LOCKED || /database is locked/.test(error.message)) {
    return { why: "locked", reason: LOCK_HELD_REASON };
  }
  if (primary === SQLITE_FULL || /database or disk is full/.test(error.message)) {
    return { why: "full", reason: "database or disk is full" };
  }
  // A file the round writes beside the database (a job's launch file, a lock file) on a full disk.
  if (isNoSpace(error)) {
    return { why: "full", reason: `no space left on the device (${error.message})` };
  }
  return null;
}

/**
 * A fault of the machine that passes (a full disk, a held lock), not of the file. SQLite says only
 * "unable to open database file" or "disk I/O error" when it cannot make the WAL's files beside the
 * state file: whether that is for want of room is asked of the directory itself.
 */
function passingFault(error: unknown, path: string): StateFileUnavailableError | null {
  if (!(error instanceof Error)) return null;
  const fault = (what: string, why: "full" | "locked") =>
    new StateFileUnavailableError(`cannot open state database ${path}: ${what}`, why);
  const known = storeFault(error);
  if (known !== null) return fault(error.message, known.why);
  // SQLite's "disk I/O error" and "unable to open database file" also mean a directory, a device or
  // a missing directory named as the state file: only a directory with no room makes them passing.
  if (/disk I\/O error|unable to open database file/.test(error.message) && noRoomIn(dirname(path))) {
    return fault(`no space left on its device (${error.message})`, "full");
  }
  return null;
}

/** Whether a file of one byte cannot be written in `dir` because the disk (its blocks or inodes, a quota) is full. */
function noRoomIn(dir: string): boolean {
  let probe: string | undefined;
  try {
    probe = Deno.makeTempFileSync({ dir, prefix: ".space-probe-" });
    Deno.writeFileSync(probe, new Uint8Array(1));
    return false;
  } catch (error) {
    return isNoSpace(error);
  } finally {
    if (probe !== undefined) {
      try {
        Deno.removeSync(probe);
      } catch { /* gone already */ }
    }
  }
}

const SQLITE_BUSY = 5;
const SQLITE_LOCKED = 6;
const SQLITE_FULL = 13;
