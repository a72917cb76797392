/** Following a run another process drives or cancels (`watch`, `wait`, a foreground `start`). */
import { isTerminalRun, type RunRecord } from "../domain/mod.ts";
import { collectGarbageIfGrown, sleepUnless, stopPoint } from "../shared/mod.ts";
import { isCancelHeld } from "../store/mod.ts";
import type { Session } from "./session.ts";
import { ExitCode, runExitCode } from "./errors.ts";
import { printWarning } from "./output.ts";
import { runCommandHint } from "./render/mod.ts";

/** How often a reader looks again while a cancel of the run is under way. */
const CANCEL_SETTLE_SECONDS = 0.1;

/** A run as a reader last read it, and whether a cancel of it was under way as it did. */
export interface SeenRun {
  record: RunRecord;
  cancelling: boolean;
}

/**
 * Polls the stored run until it ends (or an interrupt, or after `rounds` pauses); returns the last
 * record read. A run being cancelled ends once the cancel has recorded its aborted steps.
 */
export async function waitUntilFinished(
  session: Session,
  runKey: string,
  interval: number,
  interrupted: () => boolean,
  options: {
    onRefresh?: (record: RunRecord) => void | Promise<void>;
    rounds?: number;
    /** The run as the caller has just read it: the first refresh's, not read again (dropped once used). */
    first?: RunRecord;
  } = {},
): Promise<RunRecord> {
  for (let round = 0;; round++) {
    const read = round === 0 ? options.first ?? session.run(runKey) : session.runAgain(runKey);
    options.first = undefined;
    const { record, cancelling } = seenRun(session, read);
    await options.onRefresh?.(record);
    // Each refresh reads the whole run anew (10k steps: ~4 MiB of objects), and the last one is garbage
    // at the next: left to V8, a `watch` of a live 10k-step run let its heap grow to ~50 MiB between
    // collections and its RSS to 105-117 MiB. The driver's bound keeps it to the live data plus 4 MiB;
    // its first check gives back what the first read left.
    collectGarbageIfGrown();
    if ((isTerminalRun(record.state.status) && !cancelling) || interrupted() || round === options.rounds) return record;
    await sleepUnless(cancelling ? Math.min(interval, CANCEL_SETTLE_SECONDS) : interval, interrupted);
  }
}

/**
 * The run as a reader sees it: `record` (just read), or the run read again when a cancel let go
 * meanwhile (below), and whether a cancel of it is under way: `cancel` commits CANCELLED first (so no
 * job starts after it), then aborts the steps it found RUNNING, whose commands may live through their
 * grace, and records how each ended (a job that had finished may even turn the run SUCCEEDED). A
 * cancel that died half done holds no lock any more: its steps stay RUNNING until a cancel is run
 * again, and readers do not wait for that.
 *
 * The lock is looked at after the run was read: a cancel that recorded its steps and let go of its lock
 * in between left `record` stale, its steps RUNNING though they ended. So once the lock is seen free,
 * the run is read again, which then holds all such a cancel recorded (it records before it lets go).
 */
export function seenRun(session: Session, record: RunRecord): SeenRun {
  const { state } = record;
  if (state.status !== "CANCELLED" || !state.steps.some((step) => step.status === "RUNNING")) {
    return { record, cancelling: false };
  }
  stopPoint("follow:cancel-probe");
  if (isCancelHeld(session.dbPath, state.runKey)) return { record, cancelling: true };
  return { record: session.runAgain(state.runKey), cancelling: false };
}

/** The run once a cancel under way has recorded how its aborted steps ended (or an interrupt). */
export async function settledRun(session: Session, record: RunRecord, interrupted: () => boolean): Promise<SeenRun> {
  for (;;) {
    const seen = seenRun(session, record);
    if (!seen.cancelling || interrupted()) return seen;
    await sleepUnless(CANCEL_SETTLE_SECONDS, interrupted);
    record = session.runAgain(record.state.runKey);
  }
}

/**
 * The exit code for a run as last seen: its own once it has ended, and 130 (interrupted, resumable)
 * while it has not, or while a cancel of it was still under way (the reader was stopped first).
 */
export function exitCodeOf({ record, cancelling }: SeenRun): number {
  const status = record.state.status;
  return isTerminalRun(status) && !cancelling ? runExitCode(status) : ExitCode.interrupted;
}

/**
 * Says on stderr (once) that a run read as ended was CANCELLED by a cancel that stopped half done (a
 * kill, a reboot) before it ended its RUNNING steps: their commands may still run, and nothing but a
 * second `cancel` ends them. `resume` and `wait` of such a run exited 4 and said nothing, so a script
 * took the run for over while a step of it ran on.
 */
export function warnHalfCancelled({ record, cancelling }: SeenRun, db: string | undefined): void {
  const { state } = record;
  const running = state.steps.filter((step) => step.status === "RUNNING").map((step) => step.id);
  if (state.status !== "CANCELLED" || cancelling || running.length === 0) return;
  printWarning(
    `run ${state.runKey} is CANCELLED, but its cancel stopped before it ended step(s) ${running.join(", ")}, ` +
      `which may still run: '${runCommandHint("cancel", state.runKey, db)}' ends them`,
    { run_key: state.runKey, running },
  );
}
