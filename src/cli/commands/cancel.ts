/** `cancel`: the run becomes CANCELLED; running steps are aborted through the executor. */
import { cancelRun } from "../../engine/mod.ts";
import { A_DAY_SEC, secondsOption } from "../args.ts";
import type { Command } from "../command.ts";
import { ExitCode } from "../errors.ts";
import { printError, printJson } from "../output.ts";
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
        help: "Seconds between SIGTERM and SIGKILL for running steps (default 5; 0, or 0.01 to 86400).",
      },
    ],
    notes: "A run that already SUCCEEDED or FAILED is left as it is. Exit 0 when the command completes;\n" +
      "5 when the run is CANCELLED but some abort could not be delivered (the job may still be running;\n" +
      "its step's error names the orchesjob run key). --orchesjob-bin replaces the run's recorded binary.",
  },
  async run(context, args) {
    const runKey = runKeyOf(context, args);
    const grace = secondsOption(args, "grace-seconds", 5, { zero: true, max: A_DAY_SEC, unit: "a day" });
    using session = new Session(context);
    const record = session.rebind(session.run(runKey));
    let undelivered = 0;
    await cancelRun(
      {
        runs: session.runs,
        gate: session.locks,
        executor: session.executorFor(record),
        onAbortFailed: (stepId, error) => {
          undelivered++;
          printError(error, { run_key: runKey, step: stepId });
        },
      },
      runKey,
      grace,
    );
    printJson(runJson(session.run(runKey)));
    return undelivered > 0 ? ExitCode.abortFailed : ExitCode.ok;
  },
};
