/**
 * The SQLite connection: directories made 0700, WAL, a busy timeout, and schema migrations recorded
 * in `schema_meta`. Every module that stores state takes a {@link Database} from here.
 */
import { DatabaseSync, type StatementSync } from "node:sqlite";
import { dirname, makeDirectory } from "../shared/mod.ts";
import { MIGRATIONS } from "./schema.ts";

export type Database = DatabaseSync;

/** The state file cannot be used (unreadable, not SQLite, from a newer version). Nothing was changed. */
export class StateFileError extends Error {
  override name = "StateFileError";
}

/** Opens (creating if needed) the state file and brings its schema up to date. */
export function openDatabase(path: string): Database {
  let db: DatabaseSync | undefined;
  try {
    makeDirectory(dirname(path));
    db = new DatabaseSync(path);
    db.exec("PRAGMA busy_timeout = 15000");
    // Switching a new file to WAL takes an exclusive lock, and SQLite answers "database is locked" at
    // once (without the busy timeout) when another process is doing the same: retried here.
    const opened = db;
    retryWhileBusy(() => opened.exec("PRAGMA journal_mode = WAL"));
    db.exec("PRAGMA synchronous = NORMAL");
    db.exec("PRAGMA foreign_keys = ON");
    try {
      Deno.chmodSync(path, 0o600);
    } catch { /* not ours to change (another user's file we can still use) */ }
    migrate(db, "schema_version", MIGRATIONS);
    return db;
  } catch (error) {
    db?.close();
    if (error instanceof StateFileError) throw error;
    throw new StateFileError(`cannot open state database ${path}: ${error instanceof Error ? error.message : error}`);
  }
}

/** How long opening a state file waits out other processes' locks (as the busy timeout does). */
const OPEN_BUSY_SECONDS = 15;

/**
 * Runs `step` again while SQLite reports the file busy in the ways its busy timeout does not cover
 * (a journal-mode change, a read lock that cannot be upgraded), pausing 5 ms doubling to 200 ms.
 */
function retryWhileBusy<T>(step: () => T): T {
  const deadline = Date.now() + OPEN_BUSY_SECONDS * 1000;
  const pause = new Int32Array(new SharedArrayBuffer(4));
  for (let wait = 5;; wait = Math.min(wait * 2, 200)) {
    try {
      return step();
    } catch (error) {
      if (!isBusy(error) || Date.now() >= deadline) throw error;
      Atomics.wait(pause, 0, 0, wait);
    }
  }
}

function isBusy(error: unknown): boolean {
  return error instanceof Error && /database is locked|SQLITE_BUSY/i.test(error.message);
}

/**
 * Brings one component's tables up to date: `migrations[n]` runs once, in order, and `key` in
 * `schema_meta` counts how many ran. The flow store and the built-in runner each have their own.
 */
export function migrate(db: Database, key: string, migrations: readonly string[]): void {
  retryWhileBusy(() => migrateOnce(db, key, migrations));
}

function migrateOnce(db: Database, key: string, migrations: readonly string[]): void {
  // In a write transaction (BEGIN IMMEDIATE waits on the busy timeout; a bare statement's lock
  // upgrade may fail at once).
  transaction(db, () => db.exec("CREATE TABLE IF NOT EXISTS schema_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"));
  const current = () =>
    Number(
      (db.prepare("SELECT value FROM schema_meta WHERE key = ?").get(key) as { value?: string } | undefined)?.value ??
        0,
    );
  if (current() > migrations.length) {
    throw new StateFileError(
      `state database ${
        key.replaceAll("_", " ")
      } ${current()} is newer than this orchesjob-flow understands (${migrations.length})`,
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
