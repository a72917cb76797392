/**
 * The SQLite connection: directories made 0700, WAL, a busy timeout, and schema migrations recorded
 * in `schema_meta`. Every module that stores state takes a {@link Database} from here.
 */
import { chmodSync, mkdirSync } from "node:fs";
import { DatabaseSync } from "node:sqlite";
import { dirname } from "node:path";
import { UserError } from "../errors.ts";
import { MIGRATIONS } from "./schema.ts";

export type Database = DatabaseSync;

/** Opens (creating if needed) the state file and brings its schema up to date. */
export function openDatabase(path: string): Database {
  let db: DatabaseSync | undefined;
  try {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    db = new DatabaseSync(path);
    db.exec("PRAGMA busy_timeout = 15000");
    db.exec("PRAGMA journal_mode = WAL");
    db.exec("PRAGMA synchronous = NORMAL");
    db.exec("PRAGMA foreign_keys = ON");
    try {
      chmodSync(path, 0o600);
    } catch { /* not ours to change (another user's file we can still use) */ }
    migrate(db);
    return db;
  } catch (error) {
    db?.close();
    if (error instanceof UserError) throw error;
    throw new UserError(`cannot open state database ${path}: ${error instanceof Error ? error.message : error}`);
  }
}

function migrate(db: DatabaseSync): void {
  db.exec("CREATE TABLE IF NOT EXISTS schema_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)");
  const current = () =>
    Number(
      (db.prepare("SELECT value FROM schema_meta WHERE key = 'schema_version'").get() as { value?: string } | undefined)
        ?.value ?? 0,
    );
  if (current() > MIGRATIONS.length) {
    throw new UserError(
      `state database schema version ${current()} is newer than this orchesjob-flow understands (${MIGRATIONS.length})`,
    );
  }
  while (current() < MIGRATIONS.length) {
    transaction(db, () => {
      // Re-read inside the write lock: another process may have migrated meanwhile.
      const version = current();
      if (version >= MIGRATIONS.length) return;
      db.exec(MIGRATIONS[version]);
      db.prepare("INSERT OR REPLACE INTO schema_meta (key, value) VALUES ('schema_version', ?)").run(
        String(version + 1),
      );
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
