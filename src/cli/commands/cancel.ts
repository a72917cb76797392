/** `cancel`: the run becomes CANCELLED; running steps are aborted through the executor. */
import { cancelRun } from "../../engine/mod.ts";
import { numberOption } from "../args.ts";
import type { Command } from "../command.ts";
import { ExitCode } from "../errors.ts";
import { printJson } from "../output.ts";
import { runJson } from "../render/mod.ts";
import { RUN_KEY_OPTION, runKeyOf, Session } from "../session.ts";

export const cancelCommand: Command = {
  spec: {
    name: "cancel",
    summary:
      "Cancel a run: pending steps are cancelled, running steps aborted (SIGTERM, then SIGKILL after the grace).",
    usage: "cancel --run-key KEY [--grace-seconds SECONDS]",
    options: [
      RUN_KEY_OPTION,
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
    const runKey = runKeyOf(args);
    const grace = numberOption(args, "grace-seconds", 5);
    using session = new Session(context);
    const record = session.run(runKey);
    await cancelRun({ runs: session.runs, gate: session.locks, executor: session.executorFor(record) }, runKey, grace);
    printJson(runJson(session.run(runKey)));
    return ExitCode.ok;
  },
};
