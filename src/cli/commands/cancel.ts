/** `cancel`: the run becomes CANCELLED; running steps are aborted through the executor. */
import { currentRound, isLiveRun, type RunRecord } from "../../domain/mod.ts";
import { cancelRun } from "../../engine/mod.ts";
import { A_DAY_SEC, secondsOption } from "../args.ts";
import type { Command } from "../command.ts";
import { ExitCode } from "../errors.ts";
import { listenForInterrupt } from "../interrupt.ts";
import { printError, printJson, printWarning } from "../output.ts";
import { runJson } from "../render/mod.ts";
import { RUN_KEY_OPTION, runKeyOf, Session } from "../session.ts";
import { timerDelay } from "../../shared/mod.ts";

/** How long cancel waits for the start gate before it says so. */
const GATE_NOTICE_MS = 3000;
/**
 * After a first Ctrl-C, how long past the grace an external orchesjob's abort call is still waited
 * for: orchesjob's `abort` sends its SIGKILL at the end of the grace and answers at once, so a call
 * still under way by then has hung, and waiting on it (up to the call limit) sends nothing.
 */
const ABORT_CALL_MARGIN_SEC = 5;

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
      "its step's error names the orchesjob run key). A run a retry reopened once the aborts were recorded\n" +
      "is left to that retry (a warning says so). --orchesjob-bin replaces the run's recorded binary.",
  },
  async run(context, args) {
    const runKey = runKeyOf(context, args);
    const grace = secondsOption(args, "grace-seconds", 5, { zero: true, max: A_DAY_SEC, unit: "a day" });
    // Once the cancel is committed, only this process sends the SIGKILL at the end of the grace (a
    // CANCELLED run has no driver to do it): a first Ctrl-C then waits for that, rather than leave a
    // job that ignores SIGTERM running; a second one stops at once and says what may still run.
    // Before the commit (waiting for the start gate) a Ctrl-C stops it at once: nothing changed yet.
    // Listening from the start, before the state file is opened, leaves no moment where a signal would
    // kill it with no word.
    let committed = false;
    // A signal heard while a write after the commit waits for another process's write lock: that write
    // stops at its next try. Not one heard before such a wait: a first Ctrl-C lets the aborts finish
    // (their SIGKILL needs no lock); taken for a stop, a write of another step that then met a lock
    // ended the cancel (130) before the SIGKILL, and a job that ignores SIGTERM ran on.
    let heardInLockWait = false;
    let session: Session | null = null;
    let giveUp: ReturnType<typeof setTimeout> | undefined;
    using _giveUp = { [Symbol.dispose]: () => clearTimeout(giveUp) };
    using interrupt = listenForInterrupt((count) => {
      // A write after the commit that another process's write lock holds up ends at its next try (130,
      // saying what is left for a second cancel): the aborts cannot be finished while the lock is held.
      if (committed && session?.waitingForLock) {
        heardInLockWait = true;
        return;
      }
      if (!committed || count > 1) {
        printError(
          committed
            ? `cancel: interrupted again; run ${runKey} is CANCELLED, but a job that ignores SIGTERM may still ` +
              "run: cancel again to send its SIGKILL"
            : `cancel: interrupted before the cancel was committed; run ${runKey} is unchanged`,
        );
        Deno.exit(ExitCode.interrupted);
      }
      printWarning(`cancel: interrupted; finishing the aborts first (SIGKILL after at most ${grace} s)`);
      // An abort call that hangs past the grace is given up (its step says the job may still run),
      // rather than held until the call limit after the operator asked to stop.
      giveUp = setTimeout(() => session?.stopCalls(), timerDelay(grace + ABORT_CALL_MARGIN_SEC));
      Deno.unrefTimer(giveUp);
    });
    // Another process's write lock (an admin's sqlite3 shell) is waited out in short tries, in which a
    // Ctrl-C is heard (the run unchanged), where opening failed with exit 70 after the busy timeout.
    using opened = await Session.open(context, { storedRuns: true }, null);
    session = opened;
    // A write lock taken since the file was opened is waited out as well, in short tries in which a
    // Ctrl-C is heard: before the commit (the run unchanged), and between the writes after it (see
    // cancelAndAbort). In SQLite's own wait, one taken after the commit held the process for the busy
    // timeout, deaf to signals.
    const record = await opened.rebindWaiting(opened.run(runKey), interrupt.requested);
    const undelivered = await opened.writing(
      () => cancelAndAbort(opened, record, grace, () => heardInLockWait, () => (committed = true)),
      { stop: interrupt.requested, interrupted: opened.interruptedInLockWait(`run ${runKey} is unchanged`) },
    );
    // Exit 3 for a run that a clean deleted meanwhile (it had ended), as for any run not found.
    printJson(runJson(opened.runAgain(runKey)));
    return undelivered > 0 ? ExitCode.abortFailed : ExitCode.ok;
  },
};

/**
 * Commits the cancel and aborts the run's running steps, as {@link cancelRun} does, with what the
 * command says meanwhile; `onCommitted` once it is committed. Returns how many aborts were not delivered.
 * Each write after the commit waits out another process's write lock in short tries; when
 * `interrupted` (a signal heard in such a wait) says so: 130, the run CANCELLED, and a second cancel finishes the rest
 * (it aborts the steps still RUNNING, records their ends, and the run's end time).
 */
async function cancelAndAbort(
  session: Session,
  record: RunRecord,
  grace: number,
  interrupted: () => boolean,
  onCommitted: () => void,
) {
  const runKey = record.state.runKey;
  const left = session.interruptedInLockWait(
    `run ${runKey} is CANCELLED, but its aborts may not all be done or recorded: cancel it again to finish them`,
  );
  // The commit waits for the run's start gate, which a driver holds while it starts a batch of jobs
  // (a stopped one, Ctrl-Z, holds it until it is continued): a long wait is said, not silent.
  const slow = setTimeout(
    () => printWarning("cancel: waiting for the run's start gate, held by a driver starting jobs (a stopped one?)"),
    GATE_NOTICE_MS,
  );
  using _slow = { [Symbol.dispose]: () => clearTimeout(slow) };
  let undelivered = 0;
  // Held from before the commit until the aborted steps are recorded: `wait`, `watch` and a
  // foreground `start` see the CANCELLED run to that end rather than leave while its commands
  // still run; if this process dies half done, the lock goes with it and they stop waiting.
  await session.locks.withCancelLock(runKey, () =>
    cancelRun(
      {
        runs: session.runs,
        gate: session.locks,
        // The run's executor as recorded once the cancel is committed, not as read before its waits.
        executor: (committed) => session.executorFor(committed),
        onCommitted: () => {
          onCommitted();
          clearTimeout(slow);
        },
        onAbortFailed: (stepId, error) => {
          undelivered++;
          printError(error, { run_key: runKey, step: stepId });
        },
        // This cancel did all it had to (the commit, the aborts) before the retry: the retry's round
        // stands, and the command completes (exit 0). Said, as its JSON no longer shows CANCELLED.
        onReopened: (run) => printWarning(reopenedWarning(run)),
        write: (work) => session.laterWrite(work, { stop: interrupted, interrupted: left }),
      },
      runKey,
      grace,
    ));
  return undelivered;
}

/** What `cancel` says of a run a `retry` reopened once the cancel had ended its steps. */
function reopenedWarning(run: RunRecord): string {
  const { runKey, status } = run.state;
  const said = `cancel: run ${runKey} was reopened by a retry (round ${currentRound(run.rounds)}) after this ` +
    "cancel had ended its steps; ";
  return said +
    (isLiveRun(status) ? `it is ${status} again: cancel it again to stop that round` : `it is ${status} now`);
}
