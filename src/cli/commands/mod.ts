/** Every command of the CLI, in the order `--help` lists them (hidden ones last). */
import type { Command } from "../command.ts";
import { cancelCommand } from "./cancel.ts";
import { cleanCommand } from "./clean.ts";
import { exampleCommand } from "./example.ts";
import { jobCommand } from "./job.ts";
import { listCommand } from "./list.ts";
import { logsCommand } from "./logs.ts";
import { resumeCommand } from "./resume.ts";
import { retryCommand } from "./retry.ts";
import { startCommand } from "./start.ts";
import { statusCommand } from "./status.ts";
import { driveCommand, tickCommand } from "./tick.ts";
import { validateCommand } from "./validate.ts";
import { graphCommand } from "./graph.ts";
import { schemaCommand } from "./schema.ts";
import { waitCommand } from "./wait.ts";
import { watchCommand } from "./watch.ts";

export const COMMANDS: readonly Command[] = [
  startCommand,
  resumeCommand,
  statusCommand,
  listCommand,
  logsCommand,
  retryCommand,
  cleanCommand,
  waitCommand,
  watchCommand,
  cancelCommand,
  exampleCommand,
  validateCommand,
  graphCommand,
  schemaCommand,
  jobCommand,
  tickCommand,
  driveCommand,
];
