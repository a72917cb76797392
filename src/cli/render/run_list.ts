/** `list`: runs as JSON objects (status's, steps optional) or as one table line each. Pure. */
import type { RunRecord } from "../../domain/mod.ts";
import { localDateTime, localZoneLabel } from "../../shared/mod.ts";
import type { DriverHolder, RunSummary } from "../../store/mod.ts";
import { runJson } from "./run_json.ts";
import { countSteps, duration } from "./run_table.ts";
import { visible } from "./visible.ts";
import { displayWidth, padToWidth } from "./width.ts";

export interface ListedRun {
  record: RunRecord;
  /** The process that holds the run's driver lock (its PID when known), or null. */
  driver: DriverHolder | null;
}

/** A run whose record could not be read back: what its plain columns say, and why the rest cannot be read. */
export interface DamagedRun {
  summary: RunSummary;
  damage: string;
  driver: DriverHolder | null;
}

export type ListEntry = ListedRun | DamagedRun;

/** `step_counts`: total, done, running, failed, and (added later, so last) cancelled. */
export function stepCounts(record: RunRecord) {
  return countSteps(record.state.steps);
}

/** A damaged run as `list` prints it: its plain columns, `damaged` (why the rest cannot be read), the driver. */
export function damagedRunJson({ summary, damage, driver }: DamagedRun) {
  return {
    run_key: summary.runKey,
    flow_id: summary.flowId,
    status: summary.status,
    started_at: summary.startedAt,
    finished_at: summary.finishedAt,
    damaged: damage,
    driver,
  };
}

/** The object `status` prints, without `steps` unless asked, plus step counts and the driver. */
export function listedRunJson({ record, driver }: ListedRun, withSteps: boolean) {
  const { steps, ...run } = runJson(record);
  return {
    ...run,
    ...(withSteps ? { steps } : {}),
    step_counts: stepCounts(record),
    driver,
  };
}

export function renderRunList(runs: readonly ListEntry[], now: number): string {
  return renderRunListRows(runs.map((entry) => runListRow(entry, now)), now);
}

/** One run's line of the table, its cells unpadded: `list` makes it as it loads each run, then lets the run go. */
export function runListRow(entry: ListEntry, now: number): string[] {
  if ("damage" in entry) return damagedRow(entry).map(visible);
  const { record, driver } = entry;
  const run = record.state;
  const counts = stepCounts(record);
  return [
    run.runKey,
    run.flow.flowId,
    // A deferred run says when it begins, so the table needs no second look at `status`.
    run.status === "SCHEDULED" ? `SCHEDULED until ${localDateTime(run.notBefore)}` : run.status,
    // A run that has not begun has no start to show: its started_at is when it was created.
    run.status === "SCHEDULED" ? "-" : localDateTime(run.startedAt),
    run.status === "SCHEDULED" ? "-" : duration((run.finishedAt ?? now) - run.startedAt),
    `${counts.done}/${counts.total}`,
    String(counts.failed),
    String(counts.cancelled),
    driverCell(driver),
  ].map(visible);
}

/** The table of the runs' lines ({@link runListRow}). */
export function renderRunListRows(rows: readonly string[][], now: number): string {
  const header = ["Run key", "Flow", "Status", "Started", "Elapsed", "Done", "Failed", "Cancelled", "Driver"];
  // A loop, not Math.max(...rows): spreading 100k arguments overflows the stack.
  const widths = header.map((h) => h.length);
  // Columns are measured in terminal columns: a run key in Japanese takes two a character.
  for (const row of rows) row.forEach((cell, i) => widths[i] = Math.max(widths[i], displayWidth(cell)));
  const line = (cells: string[]) => cells.map((c, i) => padToWidth(c, widths[i])).join("  ").trimEnd();
  const lines = [
    `Runs: ${rows.length}  Times: ${localZoneLabel(now)}`,
    "",
    line(header),
    line(widths.map((w) => "-".repeat(w))),
  ];
  for (const row of rows) lines.push(line(row));
  return lines.join("\n") + "\n";
}

function driverCell(driver: DriverHolder | null): string {
  if (driver?.unknown !== undefined) return "unknown";
  return driver ? driver.pid === null ? "yes" : `pid ${driver.pid}` : "-";
}

/** A damaged run's line: what its plain columns say; `status` of the run shows why it is damaged. */
function damagedRow({ summary, driver }: DamagedRun): string[] {
  return [
    summary.runKey,
    summary.flowId,
    `DAMAGED (${summary.status})`,
    localDateTime(summary.startedAt),
    "-",
    "-",
    "-",
    "-",
    driverCell(driver),
  ];
}
