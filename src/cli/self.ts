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
 * `compile` task and the release workflow). A small young generation: a driver's live data is small,
 * but with V8's default (16 MiB semi-spaces) a 10k-step run held ~150 MiB; this keeps it near 110 MiB
 * for no measurable start-up. (--optimize-for-size saves more but costs ~100 ms of start-up.)
 */
export const V8_FLAGS = "--max-semi-space-size=1";

/** The argv prefix that runs this program again with the same code. */
export function selfCommand(): string[] {
  if (isCompiled()) return [Deno.execPath()];
  const args = [Deno.execPath(), "run", "--allow-all", "--no-prompt", `--v8-flags=${V8_FLAGS}`];
  const config = fileUrlToPath(new URL("../../deno.json", import.meta.url));
  if (pathExists(config)) args.push("--config", config);
  args.push(fileUrlToPath(Deno.mainModule));
  return args;
}
