/**
 * How this program re-executes itself (for `start -d`): the compiled binary is `Deno.execPath()`;
 * under `deno run` it is `deno run -A --config <deno.json> <main module>`.
 */
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

/**
 * True inside a `deno compile` binary, as Deno itself says. (The name of the executable proves
 * nothing: a Deno installed as `deno-2.9` is not a compiled program.)
 */
export function isCompiled(): boolean {
  return Deno.build.standalone;
}

/** The argv prefix that runs this program again with the same code. */
export function selfCommand(): string[] {
  if (isCompiled()) return [Deno.execPath()];
  const args = [Deno.execPath(), "run", "--allow-all", "--no-prompt"];
  const config = fileURLToPath(new URL("../../deno.json", import.meta.url));
  if (existsSync(config)) args.push("--config", config);
  args.push(fileURLToPath(Deno.mainModule));
  return args;
}
