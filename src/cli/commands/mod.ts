/** Every command of the CLI, in the order `--help` lists them (hidden ones last). */
import type { Command } from "../command.ts";
import { cancelCommand } from "./cancel.ts";
import { exampleCommand } from "./example.ts";
import { jobCommand } from "./job.ts";
import { startCommand } from "./start.ts";
import { statusCommand } from "./status.ts";
import { driveCommand, tickCommand } from "./tick.ts";
import { validateCommand } from "./validate.ts";
import { watchCommand } from "./watch.ts";

export const COMMANDS: readonly Command[] = [
  startCommand,
  statusCommand,
  watchCommand,
  cancelCommand,
  exampleCommand,
  validateCommand,
  jobCommand,
  tickCommand,
  driveCommand,
];
