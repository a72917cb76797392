/** The operator's table of a run (`status --format table`, `watch`). Returns a string; prints nothing. */
import { isTerminalStep, type RunState, stepDefinition, stepRunKey, type StepStatus } from "../../domain/mod.ts";
import { localDateTime } from "../../shared/mod.ts";

const MARKERS: Record<StepStatus | "CANCELLED", string> = {
  PENDING: ".",
  DELAYED: "~",
  RUNNING: ">",
  SUCCEEDED: "OK",
  FAILED: "X",
  SKIPPED: "-",
  CANCELLED: "!",
};

const COLORS: Record<string, string> = {
  SUCCEEDED: "\x1b[32m",
  FAILED: "\x1b[31m",
  CANCELLED: "\x1b[35m",
  RUNNING: "\x1b[33m",
  DELAYED: "\x1b[36m",
  SKIPPED: "\x1b[2m",
};

function paint(text: string, status: string, color: boolean): string {
  return color && COLORS[status] ? `${COLORS[status]}${text}\x1b[0m` : text;
}

/** A duration as `HH:MM:SS`, or `-`. */
export function duration(seconds: number | null): string {
  if (seconds === null || seconds < 0) return "-";
  const s = Math.floor(seconds);
  const p = (n: number) => String(n).padStart(2, "0");
  return `${p(Math.floor(s / 3600))}:${p(Math.floor((s % 3600) / 60))}:${p(s % 60)}`;
}

export function renderRunTable(run: RunState, now: number, color: boolean): string {
  const done = run.steps.filter((s) => isTerminalStep(s.status)).length;
  const running = run.steps.filter((s) => s.status === "RUNNING").length;
  const failed = run.steps.filter((s) => s.status === "FAILED").length;
  const runMarker = MARKERS[run.status as StepStatus] ?? ".";
  const lines = [
    `Flow: ${run.flow.flowId}  Run: ${run.runKey}`,
    `Status: ${
      paint(`${runMarker} ${run.status}`, run.status, color)
    }  Steps: ${done}/${run.steps.length} done, ${running} running, ${failed} failed`,
    `Started: ${localDateTime(run.startedAt)}  Finished: ${localDateTime(run.finishedAt)}  Elapsed: ${
      duration((run.finishedAt ?? now) - run.startedAt)
    }`,
    "",
  ];
  const header = ["Step", "Status", "Attempt", "Elapsed", "orchesjob", "Run key", "Error"];
  const rows = run.steps.map((step) => {
    const end = step.finishedAt ?? (isTerminalStep(step.status) ? null : now);
    const elapsed = step.startedAt === null || end === null ? null : end - step.startedAt;
    const waiting = step.status === "DELAYED" && step.nextAttemptAt !== null
      ? `retry in ${Math.max(0, Math.ceil(step.nextAttemptAt - now))} s`
      : null;
    return {
      status: step.status,
      cells: [
        step.id,
        `${MARKERS[step.status]} ${step.status}`,
        `${step.attemptNo}/${stepDefinition(run, step.id).retries}`,
        duration(elapsed),
        step.job?.status ?? "-",
        stepRunKey(run.runKey, step.id, step.attemptNo),
        [step.error, waiting].filter(Boolean).join("; "),
      ],
    };
  });
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r.cells[i].length)));
  const format = (cells: string[], status?: string) =>
    cells.map((cell, i) => {
      const padded = i === cells.length - 1 ? cell : cell.padEnd(widths[i]);
      return i === 1 && status ? paint(padded, status, color) : padded;
    }).join("  ").trimEnd();
  lines.push(format(header));
  lines.push(format(widths.map((w, i) => "-".repeat(i === widths.length - 1 ? Math.max(5, header[i].length) : w))));
  for (const row of rows) lines.push(format(row.cells, row.status));
  return lines.join("\n") + "\n";
}
