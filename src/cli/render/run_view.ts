/**
 * A run's table over time, for people following it: redrawn in place on a terminal, or, in a log
 * (CI, a pipe), appended only when something changed plus a short heartbeat at most once a minute.
 * Writes through the function it is given; prints nothing itself.
 */
import { isTerminalStep, type RunRecord } from "../../domain/mod.ts";
import { localDateTime } from "../../shared/mod.ts";
import { renderRunTable } from "./run_table.ts";
import { visible } from "./visible.ts";

export type ViewMode = "screen" | "append";

/** Clears the screen and homes the cursor (watch on a terminal owns the screen). */
export const CLEAR_SCREEN = "\x1b[H\x1b[2J";

export interface RunViewOptions {
  mode: ViewMode;
  color: boolean;
  /** Screen mode: redraw below the previous table (cursor up, clear down) rather than clearing the screen. */
  inPlace?: boolean;
  /** Screen mode with inPlace: cut lines to this width so that none wraps (and the redraw stays exact). */
  columns?: number;
  /** Append mode: the longest silence before a one-line heartbeat, in seconds. */
  heartbeatSec?: number;
}

export class RunView {
  private lastSignature: string | null = null;
  private lastPrintAt = -Infinity;
  private drawnLines = 0;

  constructor(private readonly write: (text: string) => void, private readonly options: RunViewOptions) {}

  /** Shows the run as it is at `now` (epoch seconds). */
  show(record: RunRecord, now: number): void {
    const table = renderRunTable(record.state, now, this.options.color, record.rounds);
    if (this.options.mode === "screen") return this.redraw(table);
    const signature = runSignature(record);
    if (signature !== this.lastSignature) {
      this.lastSignature = signature;
      this.lastPrintAt = now;
      this.write(table + "\n");
    } else if (now - this.lastPrintAt >= (this.options.heartbeatSec ?? 60)) {
      this.lastPrintAt = now;
      this.write(heartbeat(record, now));
    }
  }

  private redraw(table: string): void {
    if (!this.options.inPlace) {
      this.write(CLEAR_SCREEN + table);
      return;
    }
    const width = this.options.columns;
    const lines = table.replace(/\n$/, "").split("\n").map((line) =>
      width !== undefined && line.length >= width ? line.slice(0, Math.max(1, width - 1)) : line
    );
    const up = this.drawnLines > 0 ? `\x1b[${this.drawnLines}A\r\x1b[J` : "";
    this.drawnLines = lines.length;
    this.write(up + lines.join("\n") + "\n");
  }
}

/** What a person following the run cares about; elapsed times alone do not count as a change. */
export function runSignature(record: RunRecord): string {
  const run = record.state;
  return JSON.stringify([
    run.status,
    run.error,
    run.steps.map((s) => [s.id, s.status, s.attemptNo, s.job?.status ?? null, s.error, s.nextAttemptAt]),
  ]);
}

function heartbeat(record: RunRecord, now: number): string {
  const run = record.state;
  const done = run.steps.filter((s) => isTerminalStep(s.status)).length;
  const running = run.steps.filter((s) => s.status === "RUNNING").length;
  const failed = run.steps.filter((s) => s.status === "FAILED").length;
  return `${localDateTime(now)} ${
    visible(`run ${run.runKey}: ${run.status}`)
  }, ${done}/${run.steps.length} done, ${running} running, ` +
    `${failed} failed (no change)\n`;
}
