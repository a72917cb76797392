/** The CLI: global options, the command table, and the one boundary where errors become JSON + exit code. */
import { JobExit } from "../domain/mod.ts";
import { ExitCode, exitCodeFor, UserError } from "./errors.ts";
import { formatHelp, parseArgs, suggestName } from "./args.ts";
import type { Command } from "./command.ts";
import { COMMANDS } from "./commands/mod.ts";
import { GLOBAL_SPEC, GLOBALS_AFTER_COMMAND, resolveGlobals } from "./globals.ts";
import { lostStdout, printError, printJson, writeStdout } from "./output.ts";
import { stateFileFault } from "./session.ts";
import { formatVersion, versionInfo } from "./version.ts";

export const PROGRAM = "orchesjob-flow";

/** The version line (or JSON) of `--version`, `-V` and `version`. */
function printVersion(format: unknown): void {
  const info = versionInfo(PROGRAM);
  if (format === "json") printJson(info);
  else writeStdout(formatVersion(info) + "\n");
}

const FORMAT_OPTION = GLOBAL_SPEC.options.find((o) => o.name === "format")!;

const versionCommand: Command = {
  spec: {
    name: "version",
    summary: "Print the version (as --version and -V do).",
    usage: "version [--format text|json]",
    options: [FORMAT_OPTION],
  },
  run(_context, args) {
    printVersion(args.options.format);
    return ExitCode.ok;
  },
};

const helpCommand: Command = {
  spec: {
    name: "help",
    summary: "Show the list of commands, or one command's help.",
    usage: "help [COMMAND]",
    options: [],
    positionals: ["COMMAND?"],
  },
  run(_context, args) {
    const name = args.positionals[0];
    writeStdout(name === undefined ? topLevelHelp() : formatHelp(PROGRAM, findCommand(name).spec));
    return ExitCode.ok;
  },
};

/** Every command, with the two that only talk about the program itself. */
const ALL_COMMANDS: readonly Command[] = [...COMMANDS, versionCommand, helpCommand];

function findCommand(name: string): Command {
  const found = ALL_COMMANDS.find((c) => c.spec.name === name);
  if (found) return found;
  const near = suggestName(name, ALL_COMMANDS.filter((c) => !c.spec.hidden).map((c) => c.spec.name));
  throw new UserError(
    `unknown command ${JSON.stringify(name)}${near ? `; did you mean "${near}"?` : ""} (see ${PROGRAM} --help)`,
  );
}

function topLevelHelp(): string {
  const visible = ALL_COMMANDS.filter((c) => !c.spec.hidden);
  const width = Math.max(...visible.map((c) => c.spec.name.length));
  const commands = visible.map((c) => `  ${c.spec.name.padEnd(width)}  ${c.spec.summary.split(":")[0]}`).join("\n");
  return formatHelp(PROGRAM, {
    ...GLOBAL_SPEC,
    notes: `Commands:\n${commands}\n\nRun '${PROGRAM} help COMMAND' for a command's options. Global options may ` +
      "also follow the command.",
  });
}

/**
 * Refuses a global option whose value was left out, so that it took the command's name (`--db status
 * --run-key k`, `--db list`): then "missing command" or "unknown option --run-key" blamed the rest. A
 * file of that name is still reached as `./status`.
 */
function swallowedCommand(option: string, value: string | undefined, next: string | undefined): void {
  if (value === undefined || !ALL_COMMANDS.some((c) => c.spec.name === value)) return;
  if (next !== undefined && !next.startsWith("-")) return;
  throw new UserError(
    `${value}: option ${option} needs a value before the command, got the command's name (for a file of that ` +
      `name: ${option} ./${value})`,
  );
}

/** Splits argv at the first word that is not a global option (or its value). */
function splitGlobal(argv: readonly string[]): { global: string[]; command?: string; rest: string[] } {
  const valued = new Set(GLOBAL_SPEC.options.filter((o) => o.value).map((o) => `--${o.name}`));
  let i = 0;
  while (i < argv.length && argv[i].startsWith("-")) {
    if (argv[i] === "--") break;
    if (valued.has(argv[i])) swallowedCommand(argv[i], argv[i + 1], argv[i + 2]);
    i += valued.has(argv[i]) ? 2 : 1;
  }
  return { global: argv.slice(0, i), command: argv[i], rest: argv.slice(i + 1) };
}

/**
 * Runs the CLI and returns the process exit code. Never throws for user errors. A command whose
 * answer could not be written whole to stdout (a full disk) did not do what it was asked: exit 70
 * then, with the reason on stderr, unless it already exits non-zero for a reason of its own.
 */
export async function runCli(argv: readonly string[]): Promise<number> {
  lostStdout(true);
  const code = await runCommand(argv);
  const lost = lostStdout(true);
  if (lost === null || code !== ExitCode.ok) return code;
  printError(`stdout could not be written: ${lost}`);
  return ExitCode.internal;
}

async function runCommand(argv: readonly string[]): Promise<number> {
  let commandName: string | undefined;
  try {
    const { global, command, rest } = splitGlobal(argv);
    // An error in a global option given before a known command names that command too, as every
    // usage error does (and as the same option given after it, or checked later, already did).
    commandName = ALL_COMMANDS.find((c) => c.spec.name === command)?.spec.name;
    const parsedGlobal = parseArgs(GLOBAL_SPEC, global);
    if (parsedGlobal.options.version) {
      printVersion(parsedGlobal.options.format);
      return ExitCode.ok;
    }
    if (parsedGlobal.options.format !== undefined) {
      throw new UserError("--format before the command only applies to --version; put it after the command");
    }
    // No command is a usage error like any other: one JSON line on stderr, exit 2, nothing on stdout
    // (a script reading stdout must not take the help for a command's output).
    if (command === undefined && !parsedGlobal.help) throw new UserError(`missing command (see ${PROGRAM} --help)`);
    if (command === undefined) {
      writeStdout(topLevelHelp());
      return ExitCode.ok;
    }
    const found = findCommand(command);
    // `--help status` (or `-h status`) is `help status`: the list of commands said nothing of status.
    if (parsedGlobal.help) {
      writeStdout(formatHelp(PROGRAM, found.spec));
      return ExitCode.ok;
    }
    commandName = found.spec.name;
    const args = parseArgs(found.spec, rest, GLOBALS_AFTER_COMMAND);
    if (args.help) {
      writeStdout(formatHelp(PROGRAM, found.spec));
      return ExitCode.ok;
    }
    return await found.run({ program: PROGRAM, globals: resolveGlobals(parsedGlobal, args) }, args);
  } catch (error) {
    return reportError(error, commandName);
  }
}

/** The one JSON line on stderr for an error of `commandName` (if known), and the exit code it maps to. */
function reportError(error: unknown, commandName: string | undefined): number {
  // Every error names the command it came from. `job` keeps orchesjob's own messages unchanged.
  const where = commandName && commandName !== "job" ? `${commandName}: ` : "";
  const named = (message: string) => message.startsWith(where) ? message : where + message;
  const code = exitCodeFor(error);
  // `job` exits as orchesjob does: 1 for what is not the caller's doing (a full disk, a bug).
  if (commandName === "job" && (code === null || code === ExitCode.internal)) {
    printError(error instanceof Error ? error.message : String(error));
    return JobExit.general;
  }
  if (code !== null) {
    printError(named((error as Error).message));
    return code;
  }
  // A full disk or a lock held past the busy timeout: the environment, said as such.
  const passing = stateFileFault(error);
  if (passing !== null) {
    printError(named(`state database unusable: ${passing}`));
    return ExitCode.internal;
  }
  // A bug or another environment failure (a disk error): still one JSON line, with the stack only
  // on request.
  const message = error instanceof Error ? error.message : String(error);
  const debug = Deno.env.get("ORCHESJOB_FLOW_DEBUG") ? { stack: error instanceof Error ? error.stack : undefined } : {};
  printError(named(`internal error: ${message}`), debug);
  return ExitCode.internal;
}
