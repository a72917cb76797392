/** orchesjob-flow entry point: only wires the CLI. */
import { runCli } from "./src/cli/app.ts";

if (import.meta.main) {
  Deno.exit(await runCli(Deno.args));
}
