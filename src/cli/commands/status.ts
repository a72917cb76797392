/** `status`: the run's state as JSON (for automation) or as a table (for people). */
import { epochNow } from "../../shared/time.ts";
import type { Command } from "../command.ts";
import { printJson, useColor, writeStdout } from "../output.ts";
import { runJson } from "../render/run_json.ts";
import { renderRunTable } from "../render/run_table.ts";
import { renderGraph } from "../render/graph.ts";
import { checkRunKey, Session } from "../session.ts";

export const statusCommand: Command = {
  spec: {
    name: "status",
    summary: "Print the run's state: JSON (default) or a table. Exit 0 if the run exists, 3 if not.",
    usage: "status --run-key KEY [--format json|table|mermaid]",
    options: [
      { name: "run-key", value: "string", metavar: "KEY", help: "The flow run's key (required)." },
      {
        name: "format",
        value: "string",
        choices: ["json", "table", "mermaid"],
        help: "json (default), table, or mermaid (the graph coloured by step status).",
      },
    ],
  },
  run(context, args) {
    const runKey = checkRunKey(args.options["run-key"] as string | undefined);
    using session = new Session(context);
    const record = session.run(runKey);
    const state = record.state;
    if (args.options.format === "table") writeStdout(renderRunTable(state, epochNow(), useColor()));
    else if (args.options.format === "mermaid") {
      writeStdout(renderGraph(state.flow, "mermaid", new Map(state.steps.map((step) => [step.id, step.status]))));
    } else printJson(runJson(record));
    return 0;
  },
};
