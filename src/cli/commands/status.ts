/** `status`: the run's state as JSON (for automation) or as a table (for people). */
import { epochNow } from "../../shared/time.ts";
import type { Command } from "../command.ts";
import { printJson, useColor, writeStdout } from "../output.ts";
import { runJson } from "../render/run_json.ts";
import { renderRunTable } from "../render/run_table.ts";
import { checkRunKey, Session } from "../session.ts";

export const statusCommand: Command = {
  spec: {
    name: "status",
    summary: "Print the run's state: JSON (default) or a table. Exit 0 if the run exists, 3 if not.",
    usage: "status --run-key KEY [--format json|table]",
    options: [
      { name: "run-key", value: "string", metavar: "KEY", help: "The flow run's key (required)." },
      { name: "format", value: "string", choices: ["json", "table"], help: "json (default) or table." },
    ],
  },
  run(context, args) {
    const runKey = checkRunKey(args.options["run-key"] as string | undefined);
    using session = new Session(context);
    const record = session.run(runKey);
    if (args.options.format === "table") {
      writeStdout(renderRunTable(record.state, epochNow(), useColor(), record.rounds));
    } else printJson(runJson(record));
    return 0;
  },
};
