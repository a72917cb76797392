/** `status`: the run's state as JSON (for automation) or as a table (for people). */
import { isTerminalRun } from "../../domain/mod.ts";
import { epochNow, stopPoint } from "../../shared/mod.ts";
import type { Command } from "../command.ts";
import { ExitCode } from "../errors.ts";
import { printJson, useColor, writeStdout } from "../output.ts";
import { renderGraph, renderRunTable, runJson } from "../render/mod.ts";
import { driverHolder } from "../../store/mod.ts";
import { RUN_KEY_OPTION, runKeyOf, Session } from "../session.ts";

export const statusCommand: Command = {
  spec: {
    name: "status",
    summary: "Print the run's state: JSON (default) or a table. Exit 0 if the run exists, 3 if not.",
    usage: "status --run-key KEY [--format json|table|mermaid]",
    options: [
      RUN_KEY_OPTION,
      {
        name: "format",
        value: "string",
        choices: ["json", "table", "mermaid"],
        help: "json (default), table, or mermaid (the graph coloured by step status).",
      },
    ],
  },
  async run(context, args) {
    const runKey = runKeyOf(context, args);
    using session = new Session(context, { queryOnly: true });
    if (args.options.format === "mermaid") {
      const state = session.run(runKey).state;
      writeStdout(renderGraph(state.flow, "mermaid", new Map(state.steps.map((step) => [step.id, step.status]))));
      return ExitCode.ok;
    }
    // Who drives the run now: a live run with no driver advances only when someone resumes it. A run
    // that has ended has no driver, and not looking spares a read of /proc/locks. Asked before the run
    // is read: a driver lets go only once it has stored the run's end, so a run read afterwards that
    // is still live was really left without one ("Driver: none" was said of a run that had just ended).
    const before = session.runs.runStatus(runKey);
    stopPoint("status:run-read");
    const holder = before === undefined || isTerminalRun(before) ? null : await driverHolder(session.dbPath, runKey);
    const record = session.run(runKey);
    const state = record.state;
    const driver = isTerminalRun(state.status) ? null : holder;
    if (args.options.format === "table") {
      writeStdout(renderRunTable(state, epochNow(), useColor(), record.rounds, driver, undefined, session.givenDb));
    } else printJson({ ...runJson(record), driver });
    return ExitCode.ok;
  },
};
