/**
 * Prints the built-in runner's supervisor script (or, given `server`, its launch server script) as a
 * file shellcheck can read: both are built in src/executor/builtin/supervisor.ts and run as
 * `sh -c SCRIPT` / `bash -c SCRIPT`, so they have no shebang of their own.
 */
import { SERVER_SCRIPT, SUPERVISOR_SCRIPT } from "../src/executor/builtin/supervisor.ts";

const text = Deno.args[0] === "server" ? `#!/bin/bash\n${SERVER_SCRIPT}` : `#!/bin/sh\n${SUPERVISOR_SCRIPT}`;
await Deno.stdout.write(new TextEncoder().encode(text));
