/** `list`: the runs in the state file, newest first, filtered by status, flow and start time. */
import { isTerminalRun, RUN_STATUSES, type RunStatus } from "../../domain/mod.ts";
import { epochNow, pathExists } from "../../shared/mod.ts";
import { driverHolder } from "../../store/mod.ts";
import { resolveDbPath } from "../../store/mod.ts";
import type { Command } from "../command.ts";
import { printJson, writeStdout } from "../output.ts";
import { type ListedRun, listedRunJson, renderRunList } from "../render/mod.ts";
import { Session } from "../session.ts";
import { parseSince } from "../time_args.ts";
import { wholeNumberOption } from "../args.ts";

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
      { name: "steps", help: "Include each run's steps in the JSON, as status prints them." },
    ],
    notes: "The JSON is an array of the objects status prints (without steps unless --steps), plus step_counts " +
      'and driver ({"pid": ...} while a process drives the run, else null). Exit 0, also when nothing matches.',
  },
  async run(context, args) {
    const now = epochNow();
    const limit = wholeNumberOption(args, "limit", 50, 0);
    const since = args.options.since === undefined
      ? undefined
      : parseSince(args.options.since as string, "--since", now);
    const table = args.options.format === "table";
    let listed: ListedRun[] = [];
    // Listing never creates a state file: no file means no runs.
    const dbPath = resolveDbPath(context.globals.db, (name) => Deno.env.get(name));
    if (pathExists(dbPath)) {
      using session = new Session(context, { queryOnly: true });
      const records = session.list({
        statuses: args.options.status as RunStatus[] | undefined,
        flowId: args.options.flow as string | undefined,
        startedSince: since,
        limit: limit === 0 ? undefined : limit,
      });
      listed = await Promise.all(
        records.map(async (record) => ({
          record,
          // A run that has ended has no driver (see status).
          driver: isTerminalRun(record.state.status) ? null : await driverHolder(session.dbPath, record.state.runKey),
        })),
      );
    }
    if (table) writeStdout(renderRunList(listed, now));
    else printJson(listed.map((run) => listedRunJson(run, args.options.steps === true)));
    return 0;
  },
};
