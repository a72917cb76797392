/** Hidden commands: `tick` (advance a run once) and `_drive` (the detached driver's entry point). */
import { isTerminalRun } from "../../domain/mod.ts";
import { ExitCode, UserError } from "../errors.ts";
import { sleepUnless, stopPoint } from "../../shared/mod.ts";
import type { Command } from "../command.ts";
import { listenForInterrupt } from "../interrupt.ts";
import { printJson } from "../output.ts";
import { exitCodeOf, settledRun } from "../follow.ts";
import { runJson } from "../render/mod.ts";
import { RUN_KEY_OPTION, runKeyOf, Session } from "../session.ts";

/** How long tick waits before it tries again a round that another process's write lock cut short. */
const LOCK_RETRY_SECONDS = 0.25;

/** How long the background driver tries for the run's driver lock before it leaves the run to its holder. */
const DRIVER_LOCK_WAIT_SECONDS = 2;

export const tickCommand: Command = {
  spec: {
    name: "tick",
    summary: "Advance the run once (poll, decide, act) and print its state. For tests, recovery and external drivers.",
    usage: "tick --run-key KEY",
    options: [RUN_KEY_OPTION],
    hidden: true,
    notes: "If another process is driving the run, nothing is advanced; the state is printed all the same.",
  },
  async run(context, args) {
    const runKey = runKeyOf(context, args);
    // Another process's write lock (an admin's sqlite3 shell) is waited out, to open the state file
    // and for each write of the advance, in short tries in which a signal is heard (130), where tick
    // failed with exit 70 after the busy timeout. What it stored before a signal stays: each write is
    // whole, and the run is advanced again by the next tick (or any driver) from what is stored.
    using interrupt = listenForInterrupt();
    using session = await Session.open(context, { storedRuns: true }, interrupt);
    const record = session.run(runKey);
    {
      using lock = await session.locks.tryDriverLock(runKey);
      // Read again once held (see driveInForeground in start.ts): exit 3 for a run deleted meanwhile.
      if (lock && !isTerminalRun(session.runAgain(runKey).state.status)) {
        const driver = session.driver(record, interrupt.requested);
        // A round a held lock cut short is retried (the driver reloads the run from what is stored).
        while ((await driver.advanceOrWait()) === null) {
          await sleepUnless(LOCK_RETRY_SECONDS, interrupt.requested);
          if (interrupt.requested()) break;
        }
      }
    }
    if (interrupt.requested()) {
      throw new UserError(`interrupted; run ${runKey} is as stored (tick it again)`, ExitCode.interrupted);
    }
    printJson(runJson(session.run(runKey)));
    return ExitCode.ok;
  },
};

export const driveCommand: Command = {
  spec: {
    name: "_drive",
    summary: "Drive a stored run to its end (what `start -d` runs in the background).",
    usage: "_drive --run-key KEY",
    options: [RUN_KEY_OPTION],
    hidden: true,
  },
  async run(context, args) {
    const runKey = runKeyOf(context, args);
    // Listening before the state file is opened, which waits out another process's write lock (taken
    // since the start -d that launched this driver opened it) in short tries, where it failed with exit
    // 70 after the busy timeout and left the run undriven. Once opened, a signal also kills a call to
    // orchesjob under way, which could otherwise hold this process for up to the call limit.
    using interrupt = listenForInterrupt();
    using session = await Session.open(context, {}, interrupt);
    const record = session.run(runKey);
    // Made before the driver lock is taken: a driver that cannot be made (a bad setting) exits without
    // ever holding the run, so the `start -d` that launched it never takes it for a working driver.
    const driver = session.driver(record, interrupt.requested);
    stopPoint("drive:lock-wait");
    // A holder may be only passing (a tick, another start -d looking): tried for 2 s. A signal ends
    // the wait at once: it was heard only at the wait's end, which then said another process drives
    // the run (75), to a driver asked to stop before it ever held it.
    using lock = await session.locks.waitForDriverLock(runKey, DRIVER_LOCK_WAIT_SECONDS, interrupt.requested);
    if (interrupt.requested()) {
      throw new UserError(
        `interrupted while waiting for run ${runKey}'s driver lock; run ${runKey} is unchanged`,
        ExitCode.interrupted,
      );
    }
    // Another driver holds the run: it will finish the job. The distinct code tells the `start -d`
    // that launched this process that it is not the one driving.
    if (!lock) return ExitCode.notConfirmed;
    // Read again once held (see driveInForeground in start.ts): exit 3 for a run deleted meanwhile.
    session.runAgain(runKey);
    await driver.drive();
    // A cancel ends the drive at its commit: its aborts are seen to their end before the final JSON.
    const final = await settledRun(session, session.run(runKey), interrupt.requested);
    printJson(runJson(final.record));
    return exitCodeOf(final);
  },
};
