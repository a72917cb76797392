/**
 * How this program re-executes itself (for `start -d`): the compiled binary is `Deno.execPath()`;
 * under `deno run` it is `deno run -A --config <deno.json> <main module>`.
 */
import { fileUrlToPath, pathExists } from "../shared/mod.ts";

/**
 * True inside a `deno compile` binary, as Deno itself says. (The name of the executable proves
 * nothing: a Deno installed as `deno-2.9` is not a compiled program.)
 */
export function isCompiled(): boolean {
  return Deno.build.standalone;
}

/**
 * V8 flags of every process of this program; the compiled binary has them built in (deno.json
 * `compile` task and the release workflows). A small young generation: a driver's live data is small,
 * but with V8's default (16 MiB semi-spaces) a 10k-step run held ~150 MiB. `--expose-gc` lets a driver
 * bound its old generation (src/shared/memory.ts): V8 otherwise let it grow to ~5x the live data.
 * `--no-concurrent-recompilation`: V8 optimizes hot functions on the main thread, not on compiler
 * threads, whose buffers stayed in the peak: a 200-step driver peaked at 63-64 MiB instead of 75-83, for
 * the same CPU time (`validate` of 100k steps took as long).
 * `--max-opt=2`: V8's mid-tier compiler (Maglev) at most, not TurboFan, whose code and buffers a
 * driver otherwise brings into memory: 10k-step stub drivers peaked 3-4 MiB lower (chain 76 against 80
 * MiB, fan-out 81 against 84, three runs each), as fast; `validate` of 10k steps was as fast, of 50k
 * steps 18% slower. (--optimize-for-size saves less and costs ~100 ms of start-up; a
 * --max-old-space-size low enough to matter would turn a large flow file into a crash; --max-opt=1, no
 * optimizing compiler at all, gave 60 MiB but made `validate` of 100k steps 4x slower; --lite-mode
 * saved ~2 MiB more than --max-opt=2 but made `validate` of 10k steps 2.4x slower.)
 */
export const V8_FLAGS = "--max-semi-space-size=1,--expose-gc,--no-concurrent-recompilation,--max-opt=2";

/** The argv prefix that runs this program again with the same code. */
export function selfCommand(): string[] {
  if (isCompiled()) return [executableToRerun(Deno.execPath(), Deno.pid)];
  const args = [Deno.execPath(), "run", "--allow-all", "--no-prompt", `--v8-flags=${V8_FLAGS}`];
  const config = fileUrlToPath(new URL("../../deno.json", import.meta.url));
  if (pathExists(config)) args.push("--config", config);
  args.push(fileUrlToPath(Deno.mainModule));
  return args;
}

/** What Linux appends to the path of a running executable whose file was unlinked or renamed over. */
const DELETED = " (deleted)";

/**
 * The file to run this program again from, given its executable's path as the kernel reports it. An
 * upgrade renames the new binary over the running one (install.sh), and Linux then names the running
 * file `<path> (deleted)`, a path that no longer exists: a `start -d` under way across the rename
 * failed to launch its driver (127, the run left undriven). `/proc/<pid>/exe` still opens the file this
 * process runs, as long as it lives, and `start -d` lives until its driver has taken the run: the driver
 * runs the same code as the command that stored the run, not a newer binary that may read the run or
 * its arguments differently.
 */
export function executableToRerun(execPath: string, pid: number): string {
  return execPath.endsWith(DELETED) && Deno.build.os === "linux" ? `/proc/${pid}/exe` : execPath;
}
