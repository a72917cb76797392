/** The CLI: global options, the command table, and the one boundary where errors become JSON + exit code. */
import denoConfig from "../../deno.json" with { type: "json" };
import { ExitCode, exitCodeFor, UserError } from "./errors.ts";
import { type CommandSpec, formatHelp, numberOption, parseArgs } from "./args.ts";
import type { ExecutorChoice } from "../executor/mod.ts";
import type { GlobalOptions } from "./command.ts";
import { COMMANDS } from "./commands/mod.ts";
import { printError, writeStdout } from "./output.ts";

export const PROGRAM = "orchesjob-flow";
export const VERSION: string = denoConfig.version;

const GLOBAL_SPEC: CommandSpec = {
  name: "",
  summary: "Run a small graph of local commands through orchesjob, with durable state in SQLite.",
  usage: "[GLOBAL OPTIONS] COMMAND [COMMAND OPTIONS]",
  options: [
    { name: "version", help: "Print the version and exit." },
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
      help: "Longest sleep of the flow loop between polls (default 5.0).",
    },
  ],
};

function topLevelHelp(): string {
  const visible = COMMANDS.filter((c) => !c.spec.hidden);
  const width = Math.max(...visible.map((c) => c.spec.name.length));
  const commands = visible.map((c) => `  ${c.spec.name.padEnd(width)}  ${c.spec.summary.split(":")[0]}`).join("\n");
  return formatHelp(PROGRAM, {
    ...GLOBAL_SPEC,
    notes: `Commands:\n${commands}\n\nRun '${PROGRAM} COMMAND --help' for a command's options.`,
  });
}

/** Splits argv at the first word that is not a global option (or its value). */
function splitGlobal(argv: readonly string[]): { global: string[]; command?: string; rest: string[] } {
  const valued = new Set(GLOBAL_SPEC.options.filter((o) => o.value).map((o) => `--${o.name}`));
  let i = 0;
  while (i < argv.length && argv[i].startsWith("-")) {
    if (argv[i] === "--") break;
    i += valued.has(argv[i]) ? 2 : 1;
  }
  return { global: argv.slice(0, i), command: argv[i], rest: argv.slice(i + 1) };
}

/** Runs the CLI and returns the process exit code. Never throws for user errors. */
export async function runCli(argv: readonly string[]): Promise<number> {
  try {
    const { global, command, rest } = splitGlobal(argv);
    const parsedGlobal = parseArgs(GLOBAL_SPEC, global);
    if (parsedGlobal.options.version) {
      writeStdout(`${PROGRAM} ${VERSION}\n`);
      return ExitCode.ok;
    }
    if (parsedGlobal.help || command === undefined) {
      writeStdout(topLevelHelp());
      if (command === undefined && !parsedGlobal.help) throw new UserError("missing command (see --help)");
      return ExitCode.ok;
    }
    const found = COMMANDS.find((c) => c.spec.name === command);
    if (!found) throw new UserError(`unknown command ${JSON.stringify(command)} (see ${PROGRAM} --help)`);
    const args = parseArgs(found.spec, rest);
    if (args.help) {
      writeStdout(formatHelp(PROGRAM, found.spec));
      return ExitCode.ok;
    }
    const globals: GlobalOptions = {
      db: parsedGlobal.options.db as string | undefined,
      orchesjobBin: parsedGlobal.options["orchesjob-bin"] as string | undefined,
      pollInterval: numberOption(parsedGlobal, "poll-interval", 5.0, 0, true),
      executor: (parsedGlobal.options.executor as ExecutorChoice | undefined) ?? "auto",
    };
    return await found.run({ program: PROGRAM, globals }, args);
  } catch (error) {
    const code = exitCodeFor(error);
    if (code !== null) {
      printError((error as Error).message);
      return code;
    }
    // A bug or an environment failure (a disk error, a lock held past the busy timeout): still one
    // JSON line, with the stack only on request.
    const message = error instanceof Error ? error.message : String(error);
    const debug = Deno.env.get("ORCHESJOB_FLOW_DEBUG")
      ? { stack: error instanceof Error ? error.stack : undefined }
      : {};
    printError(`internal error: ${message}`, debug);
    return ExitCode.flowFailed;
  }
}
