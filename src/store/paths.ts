/** Where state lives: the SQLite file and the directories beside it. */
import { basename, dirname, isAbsolute, join, resolve } from "../shared/mod.ts";
import { sha256Hex } from "../domain/mod.ts";

export const DB_FILE_NAME = "orchesjob-flow.sqlite3";

/**
 * The state file, in this order: `--db PATH`; `$ORCHESJOB_FLOW_HOME/…`; `$ORCHESJOB_HOME/…`;
 * `$XDG_DATA_HOME/orchesjob-flow/…`; `~/.local/share/orchesjob-flow/…`. With none of them (HOME unset),
 * a {@link StateLocationError}: state never silently lands in a shared or temporary directory.
 */
export function resolveDbPath(explicit: string | undefined, env: (name: string) => string | undefined): string {
  if (explicit === ":memory:") {
    // SQLite would keep the state in memory, and the job, lock and log files beside the current directory.
    throw new StateLocationError(
      '--db ":memory:" keeps no state past this command; give a file path (./:memory: names a file)',
    );
  }
  if (explicit) return refuseUnexpandedTilde(explicit, "--db");
  const flowHome = env("ORCHESJOB_FLOW_HOME");
  if (flowHome) return join(refuseUnexpandedTilde(flowHome, "ORCHESJOB_FLOW_HOME"), DB_FILE_NAME);
  const jobHome = env("ORCHESJOB_HOME");
  if (jobHome) return join(refuseUnexpandedTilde(jobHome, "ORCHESJOB_HOME"), DB_FILE_NAME);
  // The XDG base directory spec says a relative XDG_DATA_HOME is to be ignored.
  const xdg = env("XDG_DATA_HOME");
  if (xdg && isAbsolute(xdg)) return join(xdg, "orchesjob-flow", DB_FILE_NAME);
  const home = env("HOME");
  if (home) return join(home, ".local", "share", "orchesjob-flow", DB_FILE_NAME);
  throw new StateLocationError(
    "no state location: HOME is not set; choose one with --db PATH, ORCHESJOB_FLOW_HOME=DIR or XDG_DATA_HOME=DIR",
  );
}

/**
 * `path` (from `source`), refused when it starts with a `~` that no shell expanded: `--db=~/x` (no
 * shell expands a `~` after `=`), a quoted `"~/x"`, `ORCHESJOB_FLOW_HOME=~/x` in a unit file or a
 * crontab. Taken as written, it named a directory `~` under the working directory: the state went
 * there, and the same command run from another directory found no run.
 */
function refuseUnexpandedTilde(path: string, source: string): string {
  if (!path.startsWith("~")) return path;
  throw new StateLocationError(
    `${source} ${JSON.stringify(path)} starts with a "~" that no shell expanded (one after "=" or in quotes ` +
      `stays as written): write the home directory out ("$HOME/..."), or ./${path} for a directory named so`,
  );
}

/** No state location could be derived from the options and the environment. */
export class StateLocationError extends Error {
  override name = "StateLocationError";
}

/**
 * Directory of the state file: detached-run logs, per-run locks and built-in job files go under it.
 * It is the real directory, symbolic links resolved (the file's own link too): one state file reached
 * by two spellings (`real/state.sqlite3` and a link `alias/state.sqlite3`, or a linked directory) must
 * have one set of locks and job files, or two drivers hold "the" lock at once and a reader of one
 * jobs directory takes the other's running job for one never launched, and launches it again.
 */
export function stateHome(dbPath: string): string {
  return dirname(realStatePath(dbPath));
}

/**
 * `path` as SQLite and the kernel see it: absolute, with the symbolic links of its longest existing
 * part resolved (the file's own link too, once it exists), and the rest as written.
 */
export function realStatePath(path: string): string {
  const absolute = resolve(path);
  const rest: string[] = [];
  for (let head = absolute;; head = dirname(head)) {
    try {
      return join(Deno.realPathSync(head), ...rest);
    } catch {
      if (head === dirname(head)) return absolute;
      rest.unshift(basename(head));
    }
  }
}

/** Longest escaped key used as is in a file name; NAME_MAX is 255 bytes and callers add up to ~30. */
const MAX_ESCAPED = 120;

/**
 * A run key as a file name component of at most {@link MAX_ESCAPED} bytes. Every byte of its UTF-8
 * form outside [A-Za-z0-9_-] becomes `%xx` (so no `/` or `..` survives). A longer escaped form is cut
 * to a prefix (never inside a `%xx`) followed by `~` and 16 hex digits of the key's SHA-256: `~`
 * itself is always escaped, so a shortened name never equals another key's full one.
 */
export function safeFileName(key: string): string {
  const bytes = new TextEncoder().encode(key);
  let escaped = "";
  for (const byte of bytes) {
    const ch = String.fromCharCode(byte);
    escaped += /[A-Za-z0-9_-]/.test(ch) ? ch : `%${byte.toString(16).padStart(2, "0")}`;
    if (escaped.length > MAX_ESCAPED) break;
  }
  if (escaped.length === 0) return "%";
  if (escaped.length <= MAX_ESCAPED) return escaped;
  let prefix = escaped.slice(0, MAX_ESCAPED - 17);
  const percent = prefix.lastIndexOf("%");
  if (percent >= prefix.length - 2 && percent >= 0) prefix = prefix.slice(0, percent);
  return `${prefix}~${sha256Hex(key).slice(0, 16)}`;
}

/** The built-in runner's job output files. */
export function jobsDirectory(dbPath: string): string {
  // Absolute: job supervisors write there from the job's own working directory.
  return resolve(stateHome(dbPath), "jobs");
}
