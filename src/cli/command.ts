/** What every CLI command is: a spec for its arguments and a function that returns the exit code. */
import type { ExecutorChoice } from "../executor/mod.ts";
import type { CommandSpec, ParsedArgs } from "./args.ts";

/** Options given before the subcommand. */
export interface GlobalOptions {
  db?: string;
  orchesjobBin?: string;
  pollInterval: number;
  executor: ExecutorChoice;
}

export interface CommandContext {
  program: string;
  globals: GlobalOptions;
}

export interface Command {
  spec: CommandSpec;
  run(context: CommandContext, args: ParsedArgs): Promise<number> | number;
}
