/** Following a run another process drives or cancels (`watch`, `wait`, a foreground `start`). */
import { isTerminalRun, type RunRecord } from "../domain/mod.ts";
import { sleepUnless } from "../shared/mod.ts";
import { isCancelHeld } from "../store/mod.ts";
import type { Session } from "./session.ts";
import { ExitCode, runExitCode } from "./errors.ts";

/** How often a reader looks again while a cancel of the run is under way. */
const CANCEL_SETTLE_SECONDS = 0.1;

/**
 * Polls the stored run until it ends (or an interrupt, or after `rounds` pauses); returns the last
 * record read. A run being cancelled ends once the cancel has recorded its aborted steps.
 */
export async function waitUntilFinished(
  session: Session,
  runKey: string,
  interval: number,
  interrupted: () => boolean,
  options: { onRefresh?: (record: RunRecord) => void | Promise<void>; rounds?: number } = {},
): Promise<RunRecord> {
  for (let round = 0;; round++) {
    const record = round === 0 ? session.run(runKey) : session.runAgain(runKey);
    await options.onRefresh?.(record);
    const cancelling = cancelUnderWay(session, record);
    if ((isTerminalRun(record.state.status) && !cancelling) || interrupted() || round === options.rounds) return record;
    await sleepUnless(cancelling ? Math.min(interval, CANCEL_SETTLE_SECONDS) : interval, interrupted);
  }
}

/**
 * Whether a run that reads as ended is still being cancelled: `cancel` commits CANCELLED first (so no
 * job starts after it), then aborts the steps it found RUNNING, whose commands may live through their
 * grace, and records how each ended (a job that had finished may even turn the run SUCCEEDED). A
 * cancel that died half done holds no lock any more: its steps stay RUNNING until a cancel is run
 * again, and readers do not wait for that.
 */
export function cancelUnderWay(session: Session, record: RunRecord): boolean {
  const { state } = record;
  return state.status === "CANCELLED" && state.steps.some((step) => step.status === "RUNNING") &&
    isCancelHeld(session.dbPath, state.runKey);
}

/** The run once a cancel under way has recorded how its aborted steps ended (or an interrupt). */
export async function settledRun(session: Session, record: RunRecord, interrupted: () => boolean): Promise<RunRecord> {
  while (cancelUnderWay(session, record) && !interrupted()) {
    await sleepUnless(CANCEL_SETTLE_SECONDS, interrupted);
    record = session.runAgain(record.state.runKey);
  }
  return record;
}

/**
 * The exit code for a run as last read: its own once it has ended, and 130 (interrupted, resumable)
 * while it has not, or while a cancel of it is still under way (the reader was stopped first).
 */
export function exitCodeOf(session: Session, record: RunRecord): number {
  const status = record.state.status;
  return isTerminalRun(status) && !cancelUnderWay(session, record) ? runExitCode(status) : ExitCode.interrupted;
}
