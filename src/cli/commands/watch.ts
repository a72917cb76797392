/** `watch`: redraw (or append) the run's table until it ends, driving it when nobody else does (unless --no-advance). */
import { isTerminalRun, type RunRecord } from "../../domain/mod.ts";
import { epochNow, stopPoint } from "../../shared/mod.ts";
import { ExitCode, runExitCode, UserError } from "../errors.ts";
import { A_DAY_SEC, secondsOption } from "../args.ts";
import type { Command } from "../command.ts";
import { listenForInterrupt } from "../interrupt.ts";
import { escapeCodesWork, printWarning, stdoutClosedPipe, useColor, writeStdout } from "../output.ts";
import { RunView, type ViewMode } from "../render/mod.ts";
import { driverHolder } from "../../store/mod.ts";
import type { Driver } from "../../engine/mod.ts";
import { RUN_KEY_OPTION, runKeyOf, Session } from "../session.ts";
import { waitUntilFinished } from "../follow.ts";

export const watchCommand: Command = {
  spec: {
    name: "watch",
    summary: "Show the run's table until the run ends; exit with its outcome (0, 1 FAILED, 4 CANCELLED).",
    usage: "watch --run-key KEY [--interval SECONDS] [--mode screen|append] [--no-advance]",
    options: [
      RUN_KEY_OPTION,
      {
        name: "interval",
        value: "number",
        metavar: "SECONDS",
        help: "Refresh interval (default 2.0, from 0.01 to 86400).",
      },
      {
        name: "mode",
        value: "string",
        choices: ["screen", "append"],
        help: "screen: redraw in place (default on a terminal); append: a table when something changed, and a " +
          "heartbeat line at most once a minute (default otherwise: CI logs, pipes).",
      },
      { name: "advance", help: "Drive the run, once per refresh, when no other process drives it (the default)." },
      { name: "no-advance", help: "Only show the run; never drive it." },
    ],
  },
  async run(context, args) {
    const runKey = runKeyOf(context, args);
    const interval = secondsOption(args, "interval", 2.0, { max: A_DAY_SEC, unit: "a day" });
    // Cursor and clear-screen codes only ever go to a terminal that acts on them (not TERM=dumb).
    const terminal = escapeCodesWork(Deno.stdout);
    const mode: ViewMode = terminal && (args.options.mode ?? "screen") === "screen" ? "screen" : "append";
    // Which one was meant is not for us to guess (--no-advance won wherever it stood): one drives the run, one never does.
    if (args.options.advance === true && args.options["no-advance"] === true) {
      throw new UserError("--advance and --no-advance contradict each other; give one of them");
    }
    // Listening before the state file is opened (see wait); once opened, a signal also kills a call to
    // orchesjob under way, which could otherwise hold this process for up to the call limit.
    using interrupt = listenForInterrupt();
    // Read-only until the run must be driven: showing it needs no write lock.
    using session = await Session.open(context, { readOnly: true, follower: true }, interrupt);
    const advance = args.options["no-advance"] !== true;
    // --orchesjob-bin may change the run's executor: a write.
    if (advance && context.globals.orchesjobBin && !(await session.openForWriting(interrupt.requested))) {
      return ExitCode.interrupted;
    }
    // The run read here is the first refresh's (see waitUntilFinished: read twice, a 10k-step run held
    // ~10 MiB more for the first table); nothing else keeps it.
    const first = advance ? await session.rebindWaiting(session.run(runKey), interrupt.requested) : session.run(runKey);
    using driving = new TakeOver(session, runKey, advance, interrupt.requested);
    const view = new RunView(writeStdout, { mode, color: useColor() });
    const show = (record: RunRecord) => view.show(record, epochNow(), performance.now() / 1000);
    // A reader that went away (`watch … | head`) ends the watch at the next table it was to get, as
    // `logs --follow` ends: nobody reads it any more. The run goes on, or stays resumable (130). Not a
    // table lost otherwise (stdout on a full disk): a watch that drives the run goes on driving it.
    const stop = () => interrupt.requested() || stdoutClosedPipe();
    const final = await waitUntilFinished(session, runKey, interval, stop, {
      first,
      async onRefresh(record) {
        show(record);
        if (!isTerminalRun(record.state.status)) await driving.advance();
      },
    });
    // The final table was the last refresh.
    const status = final.state.status;
    return isTerminalRun(status) && !interrupt.requested() ? runExitCode(status) : ExitCode.interrupted;
  },
};

/**
 * watch's part in a run nobody drives: says so once on stderr (with how to resume it) and, unless
 * --no-advance, takes the driver lock and advances the run once per refresh for as long as it holds it.
 */
class TakeOver implements Disposable {
  private lock: Disposable | null = null;
  private driver: Driver | null = null;
  private hinted = false;

  constructor(
    private readonly session: Session,
    private readonly runKey: string,
    private readonly enabled: boolean,
    private readonly interrupted: () => boolean,
  ) {}

  async advance(): Promise<void> {
    const runKey = this.runKey;
    if (!this.driver) {
      stopPoint("follow:run-read");
      if ((await driverHolder(this.session.dbPath, runKey)) !== null) return;
      // The driver may have ended the run and let go of its lock since this refresh read the run: then
      // nobody needs to drive it, and the next refresh shows its end (it was said to have no driver).
      const status = this.session.runs.runStatus(runKey);
      if (status === undefined || isTerminalRun(status)) return;
      // From a state file this process may not write, the run cannot be driven: said once, as an error.
      if (this.enabled) {
        if (!(await this.session.openForWriting(this.interrupted))) return;
        this.session.requireWritable(
          `watch cannot drive run ${runKey}, which no process drives (watch --no-advance only shows it)`,
        );
      }
      if (!this.hinted) {
        this.hinted = true;
        printWarning(`Driver: none; resume with: ${this.session.resumeHint(runKey)}`, {
          run_key: runKey,
          advancing: this.enabled,
        });
      }
      if (!this.enabled) return;
      this.lock = await this.session.locks.tryDriverLock(runKey);
      if (!this.lock) return;
      // Read again once held (see driveInForeground in start.ts): exit 3 for a run deleted meanwhile.
      this.driver = this.session.driver(this.session.runAgain(runKey), this.interrupted);
    }
    // Another process's write lock held past the busy timeout is waited out, refresh after refresh.
    await this.driver.advanceOrWait();
  }

  [Symbol.dispose](): void {
    this.lock?.[Symbol.dispose]();
  }
}
