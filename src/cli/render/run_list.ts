/** `list`: runs as JSON objects (status's, steps optional) or as one table line each. Pure. */
import { isTerminalStep, type RunRecord } from "../../domain/mod.ts";
import { localDateTime, localZoneLabel } from "../../shared/time.ts";
import { runJson } from "./run_json.ts";
import { duration } from "./run_table.ts";

export interface ListedRun {
  record: RunRecord;
  /** Whether a process holds the run's driver lock. */
  driven: boolean;
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
export function listedRunJson({ record, driven }: ListedRun, withSteps: boolean) {
  const { steps, ...run } = runJson(record);
  return {
    ...run,
    ...(withSteps ? { steps } : {}),
    step_counts: stepCounts(record),
    // The shape of issue 9's `driver` field ({"pid": N} or null); the PID is not known from a lock probe.
    driver: driven ? { pid: null } : null,
  };
}

export function renderRunList(runs: readonly ListedRun[], now: number): string {
  const header = ["Run key", "Flow", "Status", "Started", "Elapsed", "Done", "Failed", "Driver"];
  const rows = runs.map(({ record, driven }) => {
    const run = record.state;
    const counts = stepCounts(record);
    return [
      run.runKey,
      run.flow.flowId,
      run.status,
      localDateTime(run.startedAt),
      duration((run.finishedAt ?? now) - run.startedAt),
      `${counts.done}/${counts.total}`,
      String(counts.failed),
      driven ? "yes" : "-",
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
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
