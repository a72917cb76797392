/** `watch`: redraw (or append) the run's table until it ends; with --advance, drive it when nobody else does. */
import { isTerminalRun, type RunRecord } from "../../domain/mod.ts";
import { epochNow } from "../../shared/mod.ts";
import { ExitCode, runExitCode } from "../errors.ts";
import { numberOption } from "../args.ts";
import type { Command } from "../command.ts";
import { listenForInterrupt } from "../interrupt.ts";
import { useColor, writeStdout } from "../output.ts";
import { renderRunTable } from "../render/mod.ts";
import { RUN_KEY_OPTION, runKeyOf, Session } from "../session.ts";
import { waitUntilFinished } from "../follow.ts";

const CLEAR_SCREEN = "\x1b[H\x1b[2J";

export const watchCommand: Command = {
  spec: {
    name: "watch",
    summary: "Show the run's table until the run ends; exit with its outcome (0, 1 FAILED, 4 CANCELLED).",
    usage: "watch --run-key KEY [--interval SECONDS] [--mode screen|append] [--advance]",
    options: [
      RUN_KEY_OPTION,
      { name: "interval", value: "number", metavar: "SECONDS", help: "Refresh interval (default 2.0)." },
      {
        name: "mode",
        value: "string",
        choices: ["screen", "append"],
        help: "screen: redraw in place (default); append: print a table each interval (CI logs).",
      },
      { name: "advance", help: "Also drive the run, once per refresh, when no other process drives it." },
    ],
  },
  async run(context, args) {
    const runKey = runKeyOf(args);
    const interval = numberOption(args, "interval", 2.0, 0, true);
    const screen = (args.options.mode ?? "screen") === "screen";
    using session = new Session(context);
    const first = session.run(runKey);
    using interrupt = listenForInterrupt();
    using lock = args.options.advance && !isTerminalRun(first.state.status)
      ? await session.locks.tryDriverLock(runKey)
      : null;
    const driver = lock ? session.driver(first, interrupt.requested) : null;
    const color = useColor();
    const show = (record: RunRecord) => {
      const table = renderRunTable(record.state, epochNow(), color);
      writeStdout(screen ? CLEAR_SCREEN + table : table + "\n");
    };
    const final = await waitUntilFinished(session, runKey, interval, interrupt.requested, {
      async onRefresh(record) {
        show(record);
        if (driver && !isTerminalRun(record.state.status)) await driver.tick();
      },
    });
    // The final table was the last refresh.
    const status = final.state.status;
    return isTerminalRun(status) && !interrupt.requested() ? runExitCode(status) : ExitCode.interrupted;
  },
};
