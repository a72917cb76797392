/**
 * orchesjob has no option for a job's environment or directory, so the external adapter puts them
 * into the command itself: `/usr/bin/env [-C DIR] K=V … cmd args…`. Where `env` lacks `-C` (macOS,
 * BusyBox), or the program's name would be read by `env` as an option or an assignment, a short
 * POSIX sh prologue does the same. The job's recorded command shows the wrapper. Pure, except
 * {@link envSupportsChdir}, which asks the system once.
 */

export const ENV_BIN = "/usr/bin/env";

/** The sh prologue: `$1` the directory ("" for none), then K=V words up to `--`, then the command. */
export const SH_PROLOGUE = 'if [ -n "$1" ]; then cd -- "$1" || exit 126; fi; shift; ' +
  'while [ "$1" != -- ]; do export "$1"; shift; done; shift; exec "$@"';

export function wrapCommand(
  command: readonly string[],
  env: Readonly<Record<string, string>>,
  cwd: string | null,
  chdirSupported: boolean,
): string[] {
  const assignments = Object.entries(env).map(([name, value]) => `${name}=${value}`);
  if (assignments.length === 0 && cwd === null) return [...command];
  const program = command[0];
  const envCanRun = (cwd === null || chdirSupported) && !program.includes("=") && !program.startsWith("-");
  if (envCanRun) return [ENV_BIN, ...(cwd === null ? [] : ["-C", cwd]), ...assignments, ...command];
  return ["/bin/sh", "-c", SH_PROLOGUE, "orchesjob-flow-step", cwd ?? "", ...assignments, "--", ...command];
}

let chdirSupport: boolean | undefined;

/** Whether this system's /usr/bin/env has `-C DIR` (GNU coreutils 8.28+). Asked once per process. */
export function envSupportsChdir(): boolean {
  if (chdirSupport === undefined) {
    try {
      chdirSupport = new Deno.Command(ENV_BIN, { args: ["-C", "/", "true"], stdout: "null", stderr: "null" })
        .outputSync().success;
    } catch {
      chdirSupport = false;
    }
  }
  return chdirSupport;
}
