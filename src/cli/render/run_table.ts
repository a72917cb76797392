/** The operator's table of a run (`status --format table`, `watch`). Returns a string; prints nothing. */
import {
  isLiveRun,
  isTerminalStep,
  type RetryRound,
  type RunState,
  stepDefinitionAt,
  stepRunKey,
  type StepState,
  type StepStatus,
} from "../../domain/mod.ts";
import { localDateTime, localZoneLabel } from "../../shared/mod.ts";
import type { DriverHolder } from "../../store/mod.ts";
import { visible } from "./visible.ts";
import { displayWidth, padToWidth } from "./width.ts";

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

/**
 * The table; `driver` (when known) is who drives the run now: a live run without one gets a line
 * saying how to resume it. `only`: the positions of the steps to show rows for (the others are
 * counted on one line); the status line still counts every step.
 */
export function renderRunTable(
  run: RunState,
  now: number,
  color: boolean,
  rounds: readonly RetryRound[] = [],
  driver?: DriverHolder | null,
  only?: ReadonlySet<number>,
  db?: string,
): string {
  const lines = headLines(run, now, color, rounds, driver, db);
  const header = ["Step", "Status", "Attempt", "Elapsed", "orchesjob", "Run key", "Error"];
  const rows = run.steps.flatMap((step, position) =>
    only === undefined || only.has(position) ? [{ step, position }] : []
  )
    .map(({ step, position }) => {
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
          // Attempts made / attempts allowed so far (each retry round allows retries + 1 more).
          `${step.attemptNo}/${step.attemptBase + stepDefinitionAt(run, position).retries + 1}`,
          duration(elapsed),
          step.job?.status ?? "-",
          step.attemptNo === 0 ? "-" : stepRunKey(run.runKey, step.id, step.attemptNo),
          [step.error, executorTrouble(step, now), waiting].filter(Boolean).join("; "),
        ].map(visible),
      };
    });
  // A loop, not Math.max(...rows): spreading 100k arguments overflows the stack.
  const widths = header.map((h) => h.length);
  // Columns are measured in terminal columns: a step id in Japanese takes two a character.
  for (const row of rows) row.cells.forEach((cell, i) => widths[i] = Math.max(widths[i], displayWidth(cell)));
  const format = (cells: string[], status?: string) =>
    cells.map((cell, i) => {
      const padded = i === cells.length - 1 ? cell : padToWidth(cell, widths[i]);
      return i === 1 && status ? paint(padded, status, color) : padded;
    }).join("  ").trimEnd();
  lines.push(format(header));
  lines.push(format(widths.map((w, i) => "-".repeat(i === widths.length - 1 ? Math.max(5, header[i].length) : w))));
  for (const row of rows) lines.push(format(row.cells, row.status));
  const hidden = run.steps.length - rows.length;
  if (hidden > 0) lines.push(`(${hidden} other step${hidden === 1 ? "" : "s"}: no change since the last table)`);
  return lines.join("\n") + "\n";
}

/** The lines above the steps: the flow and run, status, times, driver, warning, retries. */
function headLines(
  run: RunState,
  now: number,
  color: boolean,
  rounds: readonly RetryRound[],
  driver: DriverHolder | null | undefined,
  db: string | undefined,
): string[] {
  // Everything taken from the state is passed through visible() before colour codes are added.
  return [
    visible(`Flow: ${run.flow.flowId}  Run: ${run.runKey}`),
    statusLine(run, color),
    timesLine(run, now),
    ...driverLine(run, driver, db).map(visible),
    // A live run's error is a passing trouble of its driver's (a store fault waited out, a failing
    // orchesjob list call): the run goes on, but whoever watches it should know.
    ...(isLiveRun(run.status) && run.error !== null ? [visible(`Warning: ${run.error}`)] : []),
    ...rounds.slice(-1).map((last) =>
      visible(
        `Retried: ${rounds.length} time${rounds.length === 1 ? "" : "s"}, last ${localDateTime(last.at)}` +
          `${last.user ? ` by ${last.user}` : ""}: ${last.steps.join(", ")}`,
      )
    ),
    "",
  ];
}

/**
 * When the run started and ended. A run that has not begun shows no start (its started_at is when it
 * was created); its status line says when it begins.
 */
function timesLine(run: RunState, now: number): string {
  const zone = `Times: ${localZoneLabel(now)}`;
  if (run.status === "SCHEDULED") return `Created: ${localDateTime(run.startedAt)}  ${zone}`;
  const elapsed = duration((run.finishedAt ?? now) - run.startedAt);
  return `Started: ${localDateTime(run.startedAt)}  Finished: ${
    localDateTime(run.finishedAt)
  }  Elapsed: ${elapsed}  ${zone}`;
}

/**
 * A run's steps counted: `done` (ended: SUCCEEDED, FAILED, SKIPPED or CANCELLED), `running`, `failed`,
 * `cancelled`. CANCELLED steps are counted apart from failed ones: a run that a `retry --step` of a
 * cancelled run leaves FAILED may have no FAILED step, only the CANCELLED ones it did not run again.
 */
export function countSteps(steps: readonly StepState[]) {
  const count = (status: StepStatus) => steps.filter((s) => s.status === status).length;
  return {
    total: steps.length,
    done: steps.filter((s) => isTerminalStep(s.status)).length,
    running: count("RUNNING"),
    failed: count("FAILED"),
    cancelled: count("CANCELLED"),
  };
}

/** `N/M done, N running, N failed`, and `, N cancelled` when there are any (the table and the heartbeat). */
export function stepCountsText(steps: readonly StepState[]): string {
  const { total, done, running, failed, cancelled } = countSteps(steps);
  return `${done}/${total} done, ${running} running, ${failed} failed${
    cancelled > 0 ? `, ${cancelled} cancelled` : ""
  }`;
}

/** The run's status, step counts, and for a deferred run when it begins. */
function statusLine(run: RunState, color: boolean): string {
  const runMarker = MARKERS[run.status as StepStatus] ?? ".";
  const begins = run.status === "SCHEDULED" ? `  Begins: ${localDateTime(run.notBefore)}` : "";
  return `Status: ${paint(visible(`${runMarker} ${run.status}`), run.status, color)}  Steps: ${
    stepCountsText(run.steps)
  }${begins}`;
}

/** The Error cell's note about an executor that stopped answering for this step. */
function executorTrouble(step: StepState, now: number): string | null {
  const fault = step.executorError;
  if (fault === null || step.status !== "RUNNING") return null;
  const calls = fault.count === 1 ? "1 failed call" : `${fault.count} failed calls`;
  return `orchesjob failing for ${duration(now - fault.firstAt)} (${calls}): ${fault.message}`;
}

/**
 * `Driver: pid N`, or for a live run nobody drives, how to resume it; `unknown` with why when this
 * process cannot look at the run's lock; nothing for an ended run.
 */
function driverLine(run: RunState, driver: DriverHolder | null | undefined, db: string | undefined): string[] {
  if (driver === undefined || !isLiveRun(run.status)) return [];
  if (driver === null) return [`Driver: none; resume with: ${resumeHint(run.runKey, db)}`];
  if (driver.unknown !== undefined) return [`Driver: unknown (${driver.unknown})`];
  return [`Driver: ${driver.pid === null ? "yes" : `pid ${driver.pid}`}`];
}

/**
 * The command that continues a run nobody drives (the run key and state file quoted for a POSIX shell
 * when needed). `db`: the state file, when the command that says so was given one with `--db`; without
 * it the hint, copied as it is, looked for the run in the default state file (exit 3), as the runs of
 * the systemd unit and the crontab line of the README are not there.
 */
export function resumeHint(runKey: string, db?: string): string {
  return runCommandHint("resume", runKey, db);
}

/** `orchesjob-flow [--db F] COMMAND --run-key K`, quoted for a POSIX shell: see {@link resumeHint}. */
export function runCommandHint(command: string, runKey: string, db?: string): string {
  return `orchesjob-flow${db === undefined ? "" : ` --db ${shellWord(db)}`} ${command} --run-key ${shellWord(runKey)}`;
}

function shellWord(text: string): string {
  return /^[A-Za-z0-9_.:@%+=,\/-]+$/.test(text) ? text : `'${text.replaceAll("'", "'\\''")}'`;
}
