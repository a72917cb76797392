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

/** Creates `dir` and its parents (new ones with `mode`); an existing directory is fine. */
export function makeDirectory(dir: string, mode = 0o700): void {
  Deno.mkdirSync(dir, { recursive: true, mode });
}
