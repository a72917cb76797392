/** Where state lives: the SQLite file and the directories beside it. */
import { dirname, isAbsolute, join, resolve } from "node:path";

export const DB_FILE_NAME = "orchesjob-flow.sqlite3";

/**
 * The state file, in this order: `--db PATH`; `$ORCHESJOB_FLOW_HOME/…`; `$ORCHESJOB_HOME/…`;
 * `$XDG_DATA_HOME/orchesjob-flow/…`; `~/.local/share/orchesjob-flow/…`. With none of them (HOME unset),
 * a {@link StateLocationError}: state never silently lands in a shared or temporary directory.
 */
export function resolveDbPath(explicit: string | undefined, env: (name: string) => string | undefined): string {
  if (explicit) return explicit;
  const flowHome = env("ORCHESJOB_FLOW_HOME");
  if (flowHome) return join(flowHome, DB_FILE_NAME);
  const jobHome = env("ORCHESJOB_HOME");
  if (jobHome) return join(jobHome, DB_FILE_NAME);
  // The XDG base directory spec says a relative XDG_DATA_HOME is to be ignored.
  const xdg = env("XDG_DATA_HOME");
  if (xdg && isAbsolute(xdg)) return join(xdg, "orchesjob-flow", DB_FILE_NAME);
  const home = env("HOME");
  if (home) return join(home, ".local", "share", "orchesjob-flow", DB_FILE_NAME);
  throw new StateLocationError(
    "no state location: HOME is not set; choose one with --db PATH, ORCHESJOB_FLOW_HOME=DIR or XDG_DATA_HOME=DIR",
  );
}

/** No state location could be derived from the options and the environment. */
export class StateLocationError extends Error {
  override name = "StateLocationError";
}

/** Directory of the state file: detached-run logs, per-run locks and built-in job files go under it. */
export function stateHome(dbPath: string): string {
  return dirname(dbPath);
}

/** A run key as a file name: anything outside [A-Za-z0-9_-] becomes `%` and its hex code, so no `/` or `..` survives. */
export function safeFileName(key: string): string {
  const escaped = key.replace(/[^A-Za-z0-9_-]|^\./g, (ch) => `%${ch.codePointAt(0)!.toString(16)}`);
  return escaped.length > 0 ? escaped : "%";
}

/** The built-in runner's job output files. */
export function jobsDirectory(dbPath: string): string {
  // Absolute: job supervisors write there from the job's own working directory.
  return resolve(stateHome(dbPath), "jobs");
}
