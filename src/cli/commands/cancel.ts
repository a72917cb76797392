/** `cancel`: the run becomes CANCELLED; running steps are aborted through the executor. */
import { cancelRun } from "../../engine/cancel.ts";
import { numberOption } from "../args.ts";
import type { Command } from "../command.ts";
import { printJson } from "../output.ts";
import { runJson } from "../render/run_json.ts";
import { checkRunKey, Session } from "../session.ts";

export const cancelCommand: Command = {
  spec: {
    name: "cancel",
    summary:
      "Cancel a run: pending steps are cancelled, running steps aborted (SIGTERM, then SIGKILL after the grace).",
    usage: "cancel --run-key KEY [--grace-seconds SECONDS]",
    options: [
      { name: "run-key", value: "string", metavar: "KEY", help: "The flow run's key (required)." },
      {
        name: "grace-seconds",
        value: "number",
        metavar: "SECONDS",
        help: "Seconds between SIGTERM and SIGKILL for running steps (default 5).",
      },
    ],
    notes: "A run that already SUCCEEDED or FAILED is left as it is. Exit 0 when the command completes.",
  },
  async run(context, args) {
    const runKey = checkRunKey(args.options["run-key"] as string | undefined);
    const grace = numberOption(args, "grace-seconds", 5);
    using session = new Session(context);
    const record = session.run(runKey);
    await cancelRun({ runs: session.runs, gate: session.locks, executor: session.executorFor(record) }, runKey, grace);
    printJson(runJson(session.run(runKey)));
    return 0;
  },
};
