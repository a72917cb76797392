/**
 * A run's table over time, for people following it: redrawn in place on a terminal, or, in a log
 * (CI, a pipe), appended only when something changed plus a short heartbeat at most once a minute.
 * Writes through the function it is given; prints nothing itself.
 */
import { isLiveRun, type RunRecord, type StepState } from "../../domain/mod.ts";
import { localDateTime } from "../../shared/mod.ts";
import { renderRunTable, stepCountsText } from "./run_table.ts";
import { visible } from "./visible.ts";
import { cutToWidth, displayWidth } from "./width.ts";

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

/**
 * Append mode prints a table of at most this many steps whole; a larger run's tables (but the first
 * and the last) show only the steps that changed: a 4000-step run printed 4000 lines at every change,
 * 40,000 lines in 20 s, which no CI log should hold.
 */
export const WHOLE_TABLE_STEPS = 50;

export class RunView {
  private lastSignature: string | null = null;
  /** Append mode: each step's signature in the last table printed. */
  private lastSteps: string[] | null = null;
  private lastPrintAt = -Infinity;
  private drawnLines = 0;

  constructor(private readonly write: (text: string) => void, private readonly options: RunViewOptions) {}

  /**
   * Shows the run as it is at `now` (epoch seconds). `at` paces the heartbeat: a monotonic time in
   * seconds (the CLI's), so that a step of the wall clock back does not silence a CI log for as long
   * (a CI that kills a job after minutes without output would kill it), or `now` by default.
   */
  show(record: RunRecord, now: number, at: number = now): void {
    if (this.options.mode === "screen") {
      return this.redraw(renderRunTable(record.state, now, this.options.color, record.rounds));
    }
    const signature = runSignature(record);
    if (signature !== this.lastSignature) {
      this.lastSignature = signature;
      this.lastPrintAt = at;
      const steps = record.state.steps.map(stepSignature);
      const only = isLiveRun(record.state.status) ? changedSteps(this.lastSteps, steps) : undefined;
      this.lastSteps = steps;
      this.write(renderRunTable(record.state, now, this.options.color, record.rounds, undefined, only) + "\n");
    } else if (at - this.lastPrintAt >= (this.options.heartbeatSec ?? 60)) {
      this.lastPrintAt = at;
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
      // Measured in terminal columns: a line of wide characters wraps sooner than its length says,
      // and a wrapped line would leave the cursor-up count short.
      width !== undefined && displayWidth(line) >= width ? cutToWidth(line, Math.max(1, width - 1)) : line
    );
    const up = this.drawnLines > 0 ? `\x1b[${this.drawnLines}A\r\x1b[J` : "";
    this.drawnLines = lines.length;
    this.write(up + lines.join("\n") + "\n");
  }
}

/** What a person following the run cares about; elapsed times alone do not count as a change. */
export function runSignature(record: RunRecord): string {
  const run = record.state;
  return JSON.stringify([run.status, run.error, run.steps.map(stepSignature)]);
}

function stepSignature(s: StepState): string {
  return JSON.stringify([s.id, s.status, s.attemptNo, s.job?.status ?? null, s.error, s.nextAttemptAt]);
}

/**
 * The positions of the steps whose signature changed since `last`, for a table of only those; none
 * (the whole table) for a first table, a run of at most WHOLE_TABLE_STEPS steps, or other steps.
 */
function changedSteps(last: readonly string[] | null, steps: readonly string[]): Set<number> | undefined {
  if (last === null || steps.length <= WHOLE_TABLE_STEPS || last.length !== steps.length) return undefined;
  const changed = new Set<number>();
  steps.forEach((step, position) => {
    if (step !== last[position]) changed.add(position);
  });
  return changed;
}

function heartbeat(record: RunRecord, now: number): string {
  const run = record.state;
  return `${localDateTime(now)} ${visible(`run ${run.runKey}: ${run.status}`)}, ${
    stepCountsText(run.steps)
  } (no change)\n`;
}
