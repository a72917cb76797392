/**
 * Field faults (issue 9) through the real CLI: a broken orchesjob, cancel without a reachable
 * orchesjob, unusable executors and state locations, runs without a driver, truthful `start -d`,
 * true times, and internal errors. External faults use tiny fake ORCHESJOB_BIN scripts.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { errorLine } from "../helpers.ts";
import { flowTest } from "./flow_env.ts";

const builtin = ["builtin"] as const;

const ONE_STEP = `flow_id: one
steps:
  - {id: a, command: ["true"]}
`;

flowTest(builtin, "an internal error (an unusable locks directory) exits 70 with one JSON line", async (env) => {
  const file = env.flow("flow.yaml", ONE_STEP);
  // A file where the locks directory belongs: an environment failure, not the user's input.
  Deno.writeTextFileSync(join(env.home, "locks"), "");
  const result = await env.run(["start", "--run-key", "k", file]);
  assert.equal(result.code, 70, result.stderr);
  assert.match(errorLine(result).error, /^internal error: /);
});
