/**
 * `wait`: block until a run ends and exit with its code, for sensors and scripts polling over SSH.
 * Prints one line of JSON at the end, never a table.
 */
import { isTerminalRun } from "../../domain/mod.ts";
import { collectGarbageIfGrown, MAX_TIMER_MS, sleepUnless } from "../../shared/mod.ts";
import { A_DAY_SEC, secondsOption } from "../args.ts";
import type { Command } from "../command.ts";
import { ExitCode } from "../errors.ts";
import { listenForInterrupt } from "../interrupt.ts";
import { exitCodeOf, seenRun, warnHalfCancelled } from "../follow.ts";
import { writeStdout } from "../output.ts";
import { RUN_KEY_OPTION, runKeyOf, Session } from "../session.ts";

export const waitCommand: Command = {
  spec: {
    name: "wait",
    summary: "Wait until the run ends and exit with its code: 0 SUCCEEDED, 1 FAILED, 4 CANCELLED, 124 timed out.",
    usage: "wait --run-key KEY [--timeout SECONDS] [--interval SECONDS] [--advance]",
    options: [
      RUN_KEY_OPTION,
      {
        name: "timeout",
        value: "number",
        metavar: "SECONDS",
        help: "Give up after this long (at least 0.01) with exit 124 (default: wait as long as it takes).",
      },
      {
        name: "interval",
        value: "number",
        metavar: "SECONDS",
        help: "How often to look (default 1.0, from 0.01 to 86400).",
      },
      { name: "advance", help: "Drive the run while no other process does (a run whose driver is gone)." },
    ],
    notes: [
      'Prints one line at the end: {"run_key": ..., "status": ..., "exit_code": ..., "timed_out": ...}.',
      "Without --advance it only reads the state: a run that nobody drives is waited for until the timeout.",
      "Exit codes: 0, 1, 4 as the run ended; 124 when --timeout passed first (the run goes on); 3 for an",
      "unknown run key; 2 for bad input; 130 when interrupted.",
    ].join("\n"),
  },
  async run(context, args) {
    const runKey = runKeyOf(context, args);
    const timeout = secondsOption(args, "timeout", Infinity);
    const interval = secondsOption(args, "interval", 1.0, { max: A_DAY_SEC, unit: "a day" });
    const advance = args.options.advance === true;
    // Listening before the state file is opened: a signal then, or while a write lock is waited for,
    // is an interrupt too (130), not the signal's default death. The session joins in once opened: a
    // signal also kills a call to orchesjob under way, which could otherwise hold this process for up
    // to the call limit.
    using interrupt = listenForInterrupt();
    // The deadline counts from the start: opening a state file of an older version waits for the write
    // lock to migrate it, which another process may hold past the deadline.
    const deadline = performance.now() + timeout * 1000;
    const timedOut = () => performance.now() >= deadline;
    const stop = () => interrupt.requested() || timedOut();
    // Read-only until the run must be driven (--advance): following it needs no write lock.
    using session = await Session.openUntil(context, { readOnly: true, follower: true }, interrupt, timedOut);
    // The run could not be read before the deadline: its status is not known.
    if (session === null) return printOutcome(runKey, null, ExitCode.timedOut);
    // The run as last read, with whether a cancel of it was under way then.
    let seen = seenRun(session, session.run(runKey));
    // At the deadline a call to orchesjob under way (--advance) is killed too: a hung one would
    // otherwise keep a sensor's `wait --timeout` going for up to the call limit past its time.
    const left = Math.max(0, deadline - performance.now());
    const limit = left <= MAX_TIMER_MS ? setTimeout(() => session.stopCalls(), left) : undefined;
    using _limit = { [Symbol.dispose]: () => clearTimeout(limit) };
    // A run being cancelled has not ended until the cancel has recorded its aborted steps.
    const ended = () => isTerminalRun(seen.record.state.status) && !seen.cancelling;
    while (!ended() && !stop()) {
      if (advance && !isTerminalRun(seen.record.state.status)) {
        // Whoever drove the run may be gone: take over while nobody holds it, until the deadline.
        using lock = await session.tryDriverLock(
          runKey,
          `wait --advance cannot drive run ${runKey}, which no process drives (without --advance, wait only reads)`,
          stop,
        );
        if (lock) {
          await session.driver(session.runAgain(runKey), stop, deadline).drive();
          seen = seenRun(session, session.runAgain(runKey));
          continue;
        }
      }
      const pause = isTerminalRun(seen.record.state.status) ? Math.min(interval, 0.1) : interval;
      await sleepUnless(Math.min(pause, Math.max(0, (deadline - performance.now()) / 1000)), stop);
      seen = seenRun(session, session.runAgain(runKey));
      // Each look reads the whole run anew, the last one then garbage (see waitUntilFinished).
      collectGarbageIfGrown();
    }
    const status = seen.record.state.status;
    // A deadline or a signal that came while a cancel was still under way is not the run's end.
    const code = ended() ? exitCodeOf(seen) : interrupt.requested() ? ExitCode.interrupted : ExitCode.timedOut;
    if (ended()) warnHalfCancelled(seen, session.givenDb);
    return printOutcome(runKey, status, code);
  },
};

/** Prints wait's one line of JSON; returns its exit code. */
function printOutcome(runKey: string, status: string | null, code: number): number {
  writeStdout(
    JSON.stringify({ run_key: runKey, status, exit_code: code, timed_out: code === ExitCode.timedOut }) + "\n",
  );
  return code;
}
