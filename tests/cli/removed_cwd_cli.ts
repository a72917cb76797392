/**
 * Test helper run as a subprocess from a directory of its own: removes that directory, then runs the
 * CLI in-process with its arguments, as a shell whose working directory was removed under it would
 * (`deno run` itself cannot be started from one). Exits with the CLI's code.
 */
import { runCli } from "../../src/cli/app.ts";

Deno.removeSync(Deno.cwd());
Deno.exit(await runCli(Deno.args));
