/**
 * File helpers on Deno's own API. node:fs would do, but importing it loads Node's compatibility
 * layer, ~15 ms of every command's start-up (`status`, `job`, `--help` included).
 */

/** True when something exists at `path` (a broken symlink does not count). */
export function pathExists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

/** Whether `error` is a write refused for want of room: no block or inode left on the device, or a quota. */
export function isNoSpace(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === "ENOSPC" || code === "EDQUOT";
}

/** Creates `dir` and its parents (new ones with `mode`); an existing directory is fine. */
export function makeDirectory(dir: string, mode = 0o700): void {
  Deno.mkdirSync(dir, { recursive: true, mode });
}
