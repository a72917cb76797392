/** `watch`: redraw (or append) the run's table until it ends; with --advance, drive it when nobody else does. */
import { isTerminalRun } from "../../domain/mod.ts";
import { epochNow } from "../../shared/time.ts";
import { ExitCode, runExitCode } from "../errors.ts";
import { sleepUnless } from "../../sleep.ts";
import type { RunRecord } from "../../domain/mod.ts";
import { numberOption } from "../args.ts";
import type { Command } from "../command.ts";
import { listenForInterrupt } from "../interrupt.ts";
import { useColor, writeStdout } from "../output.ts";
import { RunView, type ViewMode } from "../render/run_view.ts";
import { checkRunKey, Session } from "../session.ts";

/**
 * Polls the stored run until it ends (or an interrupt, or after `rounds` pauses); returns the last
 * record read.
 */
export async function waitUntilFinished(
  session: Session,
  runKey: string,
  interval: number,
  interrupted: () => boolean,
  options: { onRefresh?: (record: RunRecord) => void | Promise<void>; rounds?: number } = {},
): Promise<RunRecord> {
  for (let round = 0;; round++) {
    const record = session.run(runKey);
    await options.onRefresh?.(record);
    if (isTerminalRun(record.state.status) || interrupted() || round === options.rounds) return record;
    await sleepUnless(interval, interrupted);
  }
}

export const watchCommand: Command = {
  spec: {
    name: "watch",
    summary: "Show the run's table until the run ends; exit with its outcome (0, 1 FAILED, 4 CANCELLED).",
    usage: "watch --run-key KEY [--interval SECONDS] [--mode screen|append] [--advance]",
    options: [
      { name: "run-key", value: "string", metavar: "KEY", help: "The flow run's key (required)." },
      { name: "interval", value: "number", metavar: "SECONDS", help: "Refresh interval (default 2.0)." },
      {
        name: "mode",
        value: "string",
        choices: ["screen", "append"],
        help: "screen: redraw in place (default on a terminal); append: a table when something changed, and a " +
          "heartbeat line at most once a minute (default otherwise: CI logs, pipes).",
      },
      { name: "advance", help: "Also drive the run, once per refresh, when no other process drives it." },
    ],
  },
  async run(context, args) {
    const runKey = checkRunKey(args.options["run-key"] as string | undefined);
    const interval = numberOption(args, "interval", 2.0, 0, true);
    // Cursor and clear-screen codes only ever go to a terminal.
    const terminal = Deno.stdout.isTerminal();
    const mode: ViewMode = terminal && (args.options.mode ?? "screen") === "screen" ? "screen" : "append";
    using session = new Session(context);
    const first = session.run(runKey);
    using interrupt = listenForInterrupt();
    using lock = args.options.advance && !isTerminalRun(first.state.status)
      ? await session.locks.tryDriverLock(runKey)
      : null;
    const driver = lock ? session.driver(first, interrupt.requested) : null;
    const view = new RunView(writeStdout, { mode, color: useColor() });
    const show = (record: RunRecord) => view.show(record, epochNow());
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
