/** Which executor runs steps: an external orchesjob, or the built-in runner. */
import { join, resolve } from "../shared/mod.ts";
import { ExternalExecutor } from "./external.ts";
import { type Executor, ExecutorChoiceError } from "./executor.ts";
import type { ExecutorSpec } from "../domain/mod.ts";
import { BuiltinRunner } from "./builtin/mod.ts";
import type { Database } from "../store/mod.ts";

export type ExecutorChoice = "auto" | "orchesjob" | "builtin";

/**
 * `--executor builtin` → built-in. `--executor orchesjob` → `--orchesjob-bin`, `$ORCHESJOB_BIN` or
 * `orchesjob` on PATH. `auto` → an explicit binary if given, else `orchesjob` on PATH, else built-in.
 * `--executor builtin` with `--orchesjob-bin` is refused ({@link checkExecutorOptions}).
 */
export function chooseExecutor(
  choice: ExecutorChoice,
  explicitBin: string | undefined,
  env: (name: string) => string | undefined,
): ExecutorSpec {
  checkExecutorOptions(choice, explicitBin);
  if (choice === "builtin") return { kind: "builtin" };
  const bin = explicitBin || env("ORCHESJOB_BIN") || findOnPath("orchesjob", env("PATH") ?? "");
  // A relative path is made absolute now, so a detached driver in another directory finds the same file.
  if (bin) return { kind: "orchesjob", bin: bin.includes("/") ? resolve(bin) : bin };
  if (choice === "orchesjob") {
    throw new ExecutorChoiceError(
      "--executor orchesjob: no orchesjob found (set --orchesjob-bin or ORCHESJOB_BIN, or put it on PATH)",
    );
  }
  return { kind: "builtin" };
}

/**
 * Refuses `--executor builtin` together with `--orchesjob-bin`: the built-in runner calls no orchesjob,
 * so the path would be ignored without a word. `$ORCHESJOB_BIN` with `--executor builtin` is not
 * refused: the environment only gives a default, which an option given on the command line overrides.
 */
export function checkExecutorOptions(choice: ExecutorChoice, explicitBin: string | undefined): void {
  if (choice !== "builtin" || explicitBin === undefined) return;
  throw new ExecutorChoiceError(
    `--executor builtin and --orchesjob-bin ${JSON.stringify(explicitBin)} contradict each other: ` +
      "the built-in runner calls no orchesjob; give only one of them",
  );
}

/**
 * Refuses an external orchesjob that cannot be run (no such file, not executable, not on PATH), so a
 * new run is not created only to fail every step. Throws {@link ExecutorChoiceError}.
 */
export function checkUsable(spec: ExecutorSpec, env: (name: string) => string | undefined): void {
  const problem = unusableBecause(spec, env);
  if (problem !== null) {
    throw new ExecutorChoiceError(
      `orchesjob is not usable: ${spec.bin}: ${problem} (fix --orchesjob-bin or ORCHESJOB_BIN, or use --executor builtin)`,
    );
  }
}

/** Why an external orchesjob cannot be run (no such file, not executable, not on PATH), or null. */
export function unusableBecause(spec: ExecutorSpec, env: (name: string) => string | undefined): string | null {
  if (spec.kind !== "orchesjob") return null;
  const bin = spec.bin!;
  if (bin.includes("/")) return executableProblem(bin);
  return findOnPath(bin, env("PATH") ?? "") === undefined ? "not found on PATH" : null;
}

function executableProblem(path: string): string | null {
  let info: Deno.FileInfo;
  try {
    info = Deno.statSync(path);
  } catch (error) {
    return error instanceof Deno.errors.NotFound ? "no such file" : String(error);
  }
  if (!info.isFile) return "not a file";
  if (((info.mode ?? 0) & 0o111) === 0) return "not executable";
  return null;
}

/** The first executable file called `name` in the PATH directories. */
export function findOnPath(name: string, path: string): string | undefined {
  for (const dir of path.split(":")) {
    if (!dir) continue;
    const candidate = join(dir, name);
    try {
      const info = Deno.statSync(candidate);
      if (info.isFile && ((info.mode ?? 0) & 0o111) !== 0) return candidate;
    } catch { /* not here */ }
  }
  return undefined;
}

/**
 * An executor for `spec`; the built-in one keeps its tables in `db` and its files in `jobsDir`, and
 * with `recordUnlessLocked` skips a record that another process's write lock stops (see BuiltinRunner).
 * An external one is called with `runEnv`, the environment the run was created with, when it has one.
 */
export function createExecutor(
  spec: ExecutorSpec,
  db: Database,
  jobsDir: string,
  callTimeoutSec = 60,
  runEnv?: Record<string, string>,
  stop?: AbortSignal,
  recordUnlessLocked = false,
): Executor {
  // A driver launches many jobs over its life: through one launch server (see launch_server.ts).
  if (spec.kind === "builtin") return new BuiltinRunner(db, jobsDir, { launchServer: true, recordUnlessLocked });
  const home = runEnv === undefined ? Deno.env.get("ORCHESJOB_HOME") : runEnv.ORCHESJOB_HOME;
  return new ExternalExecutor(spec.bin!, callTimeoutSec, home || undefined, runEnv, stop);
}
