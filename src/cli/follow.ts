/** Following a run another process drives (`watch`, a second foreground `start`). */
import { isTerminalRun, type RunRecord } from "../domain/mod.ts";
import { sleepUnless } from "../shared/mod.ts";
import type { Session } from "./session.ts";

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
    const record = round === 0 ? session.run(runKey) : session.runAgain(runKey);
    await options.onRefresh?.(record);
    if (isTerminalRun(record.state.status) || interrupted() || round === options.rounds) return record;
    await sleepUnless(interval, interrupted);
  }
}
