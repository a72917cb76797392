/** `list`: runs as JSON objects (status's, steps optional) or as one table line each. Pure. */
import { isTerminalStep, type RunRecord } from "../../domain/mod.ts";
import { localDateTime, localZoneLabel } from "../../shared/mod.ts";
import type { DriverHolder } from "../../store/mod.ts";
import { runJson } from "./run_json.ts";
import { duration } from "./run_table.ts";
import { visible } from "./visible.ts";

export interface ListedRun {
  record: RunRecord;
  /** The process that holds the run's driver lock (its PID when known), or null. */
  driver: DriverHolder | null;
}

export function stepCounts(record: RunRecord) {
  const steps = record.state.steps;
  return {
    total: steps.length,
    done: steps.filter((s) => isTerminalStep(s.status)).length,
    running: steps.filter((s) => s.status === "RUNNING").length,
    failed: steps.filter((s) => s.status === "FAILED").length,
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

export function renderRunList(runs: readonly ListedRun[], now: number): string {
  const header = ["Run key", "Flow", "Status", "Started", "Elapsed", "Done", "Failed", "Driver"];
  const rows = runs.map(({ record, driver }) => {
    const run = record.state;
    const counts = stepCounts(record);
    return [
      run.runKey,
      run.flow.flowId,
      // A deferred run says when it begins, so the table needs no second look at `status`.
      run.status === "SCHEDULED" ? `SCHEDULED until ${localDateTime(run.notBefore)}` : run.status,
      localDateTime(run.startedAt),
      duration((run.finishedAt ?? now) - run.startedAt),
      `${counts.done}/${counts.total}`,
      String(counts.failed),
      driver ? driver.pid === null ? "yes" : `pid ${driver.pid}` : "-",
    ].map(visible);
  });
  // A loop, not Math.max(...rows): spreading 100k arguments overflows the stack.
  const widths = header.map((h) => h.length);
  for (const row of rows) row.forEach((cell, i) => widths[i] = Math.max(widths[i], cell.length));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i])).join("  ").trimEnd();
  const lines = [
    `Runs: ${runs.length}  Times: ${localZoneLabel(now)}`,
    "",
    line(header),
    line(widths.map((w) => "-".repeat(w))),
  ];
  for (const row of rows) lines.push(line(row));
  return lines.join("\n") + "\n";
}
