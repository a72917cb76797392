/** `resume`: continue a stored run from its stored definition, without its flow file. */
import type { Command } from "../command.ts";
import { listenForInterrupt } from "../interrupt.ts";
import { DETACH_OPTION, QUIET_OPTION, RUN_KEY_OPTION, runKeyOf, Session } from "../session.ts";
import { continueRun } from "./start.ts";

export const resumeCommand: Command = {
  spec: {
    name: "resume",
    summary: "Continue a run from its stored definition (no flow file needed): in the foreground, or detached (-d).",
    usage: "resume --run-key KEY [-d|--detach] [-q|--quiet]",
    options: [
      RUN_KEY_OPTION,
      DETACH_OPTION,
      QUIET_OPTION,
    ],
    notes:
      "For a run whose driver is gone (status shows `driver: null`). Exit codes as for start; 3 unknown run key.\n" +
      "--orchesjob-bin replaces the run's recorded orchesjob binary.",
  },
  async run(context, args) {
    const runKey = runKeyOf(context, args);
    const detach = args.options.detach === true;
    // In the foreground, listening before the state file is opened (see start).
    using interrupt = detach ? null : listenForInterrupt();
    using session = await Session.open(context, { storedRuns: true }, interrupt);
    // --orchesjob-bin's write waits out another process's write lock in short tries (a signal: 130).
    const record = await session.rebindWaiting(session.run(runKey), () => interrupt?.requested() ?? false);
    return await continueRun(session, record, {
      detach,
      table: args.options.quiet !== true,
      pollInterval: context.globals.pollInterval,
      interrupt,
    });
  },
};
