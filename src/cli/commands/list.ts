/** `list`: the runs in the state file, newest first, filtered by status, flow and start time. */
import { DamagedRunError, isTerminalRun, RUN_STATUSES, type RunStatus } from "../../domain/mod.ts";
import { collectGarbageIfGrown, epochNow } from "../../shared/mod.ts";
import { driverHolder } from "../../store/mod.ts";
import { resolveDbPath, type RunSummary } from "../../store/mod.ts";
import type { Command } from "../command.ts";
import { printJson, printWarning, writeStdout } from "../output.ts";
import { damagedRunJson, listedRunJson, type ListEntry, renderRunListRows, runListRow } from "../render/mod.ts";
import { Session, stateFileMissing } from "../session.ts";
import { parseSince } from "../time_args.ts";
import { wholeNumberOption } from "../args.ts";
import { UserError } from "../errors.ts";

export const listCommand: Command = {
  spec: {
    name: "list",
    summary: "List runs, newest first: key, flow, status, start, elapsed, step counts, and whether a driver holds it.",
    usage: "list [--status S]... [--flow ID] [--since DURATION|TIME] [--limit N] [--format json|table] [--steps]",
    options: [
      {
        name: "status",
        value: "string",
        metavar: "S",
        multiple: true,
        choices: RUN_STATUSES,
        help: "Only runs in this status (repeatable, or comma-separated).",
      },
      { name: "flow", value: "string", metavar: "ID", help: "Only runs of this flow_id." },
      {
        name: "since",
        value: "string",
        metavar: "DURATION|TIME",
        help: "Only runs started in the last DURATION (90s, 15m, 6h, 7d) or since an ISO 8601 TIME.",
      },
      { name: "limit", value: "number", metavar: "N", help: "At most N runs (default 50; 0 for all)." },
      { name: "format", value: "string", choices: ["json", "table"], help: "json (default) or table." },
      { name: "steps", help: "Include each run's steps in the JSON, as status prints them (not with --format table)." },
    ],
    notes: "The JSON is an array of the objects status prints (without steps unless --steps), plus step_counts " +
      "(total, done, running, failed, cancelled) " +
      'and driver ({"pid": ...} while a process drives the run, else null). A run whose record in the state file ' +
      'is damaged is listed with its plain columns and "damaged" (why), with a warning on stderr. Exit 0, also ' +
      "when nothing matches.",
  },
  async run(context, args) {
    const now = epochNow();
    const limit = wholeNumberOption(args, "limit", 50, 0);
    const since = args.options.since === undefined
      ? undefined
      : parseSince(args.options.since as string, "--since", now);
    const table = args.options.format === "table";
    // The table has a line per run, not per step: --steps there would be silently ignored.
    if (table && args.options.steps === true) {
      throw new UserError("option --steps applies to the JSON output only (drop --format table, or use status)");
    }
    // Each run is loaded whole (its step counts), and made into its line or its JSON object at once,
    // so that only one run is held at a time: all of them, loaded together, held ~9 MiB a 10k-step run
    // (10 such runs: 136 MiB). Warnings of damaged runs still come before the output.
    const lines: string[][] = [];
    const objects: unknown[] = [];
    const withSteps = args.options.steps === true;
    // Listing never creates a state file: no file means no runs.
    const dbPath = resolveDbPath(context.globals.db, (name) => Deno.env.get(name));
    if (!stateFileMissing(dbPath)) {
      using session = new Session(context, { queryOnly: true });
      const summaries = session.list({
        statuses: args.options.status as RunStatus[] | undefined,
        flowId: args.options.flow as string | undefined,
        startedSince: since,
        limit: limit === 0 ? undefined : limit,
      });
      for (const summary of summaries) {
        const entry = await listEntry(session, summary);
        if (entry === null) continue;
        if ("damage" in entry) printWarning(`list: ${entry.damage}`);
        if (table) lines.push(runListRow(entry, now));
        else objects.push("damage" in entry ? damagedRunJson(entry) : listedRunJson(entry, withSteps));
        collectGarbageIfGrown();
      }
    }
    if (table) writeStdout(renderRunListRows(lines, now));
    else printJson(objects);
    return 0;
  },
};

/**
 * One run as `list` shows it: loaded whole, or, when its record is damaged, what its plain columns say;
 * null for a run deleted since it was selected (a `clean` ran meanwhile).
 */
async function listEntry(session: Session, summary: RunSummary): Promise<ListEntry | null> {
  // A run that has ended has no driver; asked before the run is loaded (see status).
  const driver = isTerminalRun(summary.status) ? null : await driverHolder(session.dbPath, summary.runKey);
  try {
    const record = session.load(summary.runKey);
    return record ? { record, driver: isTerminalRun(record.state.status) ? null : driver } : null;
  } catch (error) {
    if (!(error instanceof DamagedRunError)) throw error;
    return { summary, damage: error.message, driver };
  }
}
