/**
 * Global options: given before the command, and accepted after it too (`status --run-key x --db f`),
 * where they win over the same option given before.
 */
import type { ExecutorChoice } from "../executor/mod.ts";
import { A_DAY_SEC, type CommandSpec, type OptionSpec, type ParsedArgs, secondsOption } from "./args.ts";
import type { GlobalOptions } from "./command.ts";

export const GLOBAL_SPEC: CommandSpec = {
  name: "",
  summary: "Run a small graph of local commands through orchesjob, with durable state in SQLite.",
  usage: "[GLOBAL OPTIONS] COMMAND [COMMAND OPTIONS]",
  options: [
    {
      name: "version",
      short: "V",
      help: "Print the version, the Deno version, the target, whether compiled, and the git commit; then exit.",
    },
    {
      name: "format",
      value: "string",
      metavar: "FORMAT",
      choices: ["text", "json"],
      help: "With --version: text (default) or json.",
    },
    { name: "db", value: "string", metavar: "PATH", help: "SQLite state file (default: see README)." },
    {
      name: "orchesjob-bin",
      value: "string",
      metavar: "PATH",
      help: "orchesjob executable (default: $ORCHESJOB_BIN, else orchesjob on PATH, else built in).",
    },
    {
      name: "executor",
      value: "string",
      metavar: "KIND",
      choices: ["auto", "orchesjob", "builtin"],
      help: "Which job runner starts steps: auto (default), orchesjob or builtin.",
    },
    {
      name: "poll-interval",
      value: "number",
      metavar: "SECONDS",
      help: "Longest sleep of the flow loop between polls (default 5.0, from 0.01 to 86400).",
    },
  ],
};

/** The global options a command also accepts after its name (all but --version and its --format). */
export const GLOBALS_AFTER_COMMAND: readonly OptionSpec[] = GLOBAL_SPEC.options.filter((o) =>
  o.name !== "version" && o.name !== "format"
);

/** Global options from the words before the command, overridden by any given after it. */
export function resolveGlobals(before: ParsedArgs, after?: ParsedArgs): GlobalOptions {
  const merged: ParsedArgs = { ...before, options: { ...before.options }, typed: { ...before.typed } };
  for (const option of GLOBALS_AFTER_COMMAND) {
    const value = after?.options[option.name];
    if (value === undefined) continue;
    merged.options[option.name] = value;
    const typed = after?.typed?.[option.name];
    if (typed !== undefined) merged.typed![option.name] = typed;
  }
  const pollInterval = secondsOption(merged, "poll-interval", 5.0, { max: A_DAY_SEC, unit: "a day" });
  return {
    db: merged.options.db as string | undefined,
    orchesjobBin: merged.options["orchesjob-bin"] as string | undefined,
    pollInterval,
    executor: (merged.options.executor as ExecutorChoice | undefined) ?? "auto",
  };
}
