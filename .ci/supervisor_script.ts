/**
 * Prints the built-in runner's supervisor script as a file shellcheck can read: the script is built
 * in src/executor/builtin/supervisor.ts and run as `sh -c SCRIPT`, so it has no shebang of its own.
 */
import { SUPERVISOR_SCRIPT } from "../src/executor/builtin/supervisor.ts";

await Deno.stdout.write(new TextEncoder().encode(`#!/bin/sh\n${SUPERVISOR_SCRIPT}`));
