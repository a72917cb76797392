/** `start`: create or resume a run, then drive it in the foreground or in a detached child. */
import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { type FlowDefinition, isTerminalRun, type RunRecord } from "../../domain/mod.ts";
import { createRun } from "../../engine/mod.ts";
import { epochNow, parseTimeArgument, spawnDetached } from "../../shared/mod.ts";
import { ExitCode, runExitCode, UserError } from "../errors.ts";
import { chooseExecutor } from "../../executor/mod.ts";
import { definitionHash } from "../../flow/mod.ts";
import { safeFileName, stateHome } from "../../store/mod.ts";
import type { Command, CommandContext } from "../command.ts";
import { bindFlowFile, givenParams, PARAM_OPTION, readFlowFile, STDIN_NAME } from "../flow_file.ts";
import { listenForInterrupt } from "../interrupt.ts";
import { liveTable } from "../live_table.ts";
import { printJson } from "../output.ts";
import { runJson } from "../render/mod.ts";
import { selfCommand } from "../self.ts";
import { RUN_KEY_OPTION, runKeyOf, Session } from "../session.ts";
import { waitUntilFinished } from "../follow.ts";

export const startCommand: Command = {
  spec: {
    name: "start",
    summary: "Start or resume a flow run: in the foreground until it ends, or detached (-d) in the background.",
    usage: "start --run-key KEY [-d|--detach] [-q|--quiet] [--param NAME=VALUE]... [--not-before TIME] FLOW_FILE",
    options: [
      RUN_KEY_OPTION,
      { name: "detach", short: "d", help: "Drive the run in a background process and return at once." },
      { name: "quiet", short: "q", help: "No live table on stderr (shown only when stderr is a terminal)." },
      PARAM_OPTION,
      {
        name: "not-before",
        value: "string",
        metavar: "TIME",
        help: "Create the run SCHEDULED; it begins no earlier than TIME (ISO 8601, +DURATION such as +15m, or epoch).",
      },
    ],
    positionals: ["FLOW_FILE"],
    notes: "FLOW_FILE - reads the flow from standard input.\n" +
      "Exit codes: 0 SUCCEEDED, 1 FAILED, 4 CANCELLED, 2 usage/validation error, 130 interrupted.\n" +
      "With -d: 0 once the background process is launched (or the run is already being driven).",
  },
  async run(context, args) {
    const runKey = runKeyOf(args);
    const file = args.positionals[0];
    const loaded = readFlowFile(file);
    const given = givenParams(args);
    const now = epochNow();
    const notBefore = notBeforeOption(args.options["not-before"] as string | undefined, now);
    using session = new Session(context);
    const record = createOrFind(session, context, { runKey, file, loaded, given, notBefore, now });
    if (isTerminalRun(record.state.status)) {
      printJson(runJson(record));
      return runExitCode(record.state.status);
    }

    if (args.options.detach) {
      {
        using lock = await session.locks.tryDriverLock(runKey);
        if (!lock) {
          printJson({ ...runJson(session.run(runKey)), detached: false, driver: "already running" });
          return ExitCode.ok;
        }
      }
      const launched = launchDetached(session.dbPath, runKey, context.globals.pollInterval);
      printJson({ ...runJson(session.run(runKey)), detached: true, ...launched });
      return ExitCode.ok;
    }

    return await driveInForeground(session, record, context.globals.pollInterval, args.options.quiet !== true);
  },
};

/**
 * The flow bound to this run (parameters, directories) and the run created with it, or the existing
 * run, which must be bound to the same definition. A resumed start needs no --param again: without
 * any, the run's stored values are used.
 */
function createOrFind(
  session: Session,
  context: CommandContext,
  start: {
    runKey: string;
    file: string;
    loaded: FlowDefinition;
    given: Record<string, string>;
    notBefore: number | null;
    now: number;
  },
): RunRecord {
  const { runKey, file, given } = start;
  const stored = Object.keys(given).length === 0 ? session.runs.load(runKey)?.definition.param_values : undefined;
  const flow = bindFlowFile(start.loaded, file, stored ?? given);
  const hash = definitionHash(flow);
  const executor = chooseExecutor(context.globals.executor, context.globals.orchesjobBin, (n) => Deno.env.get(n));
  const record = createRun(session.runs, {
    runKey,
    flow,
    definitionHash: hash,
    flowFile: file === "-" ? STDIN_NAME : resolve(file),
    executor,
    notBefore: start.notBefore,
  }, start.now);
  if (record.definitionHash !== hash) {
    throw new UserError(
      `run ${runKey} is bound to another definition: stored ${record.definitionHash}, ${file} is ${hash}; ` +
        "a run never continues from an edited file (use a new run key)",
    );
  }
  return record;
}

/** `--not-before`, checked before anything is stored; it applies when the run is created. */
function notBeforeOption(text: string | undefined, now: number): number | null {
  if (text === undefined) return null;
  const at = parseTimeArgument(text, now);
  if (at === null) {
    throw new UserError(
      `--not-before needs an ISO 8601 time (2026-11-23T02:00:00+01:00), +DURATION (+90s, +15m, +1h30m) ` +
        `or epoch seconds, got ${JSON.stringify(text)}`,
    );
  }
  return at;
}

/**
 * Drives the run here until it ends (or an interrupt), with the live table on a terminal's stderr;
 * while another process drives it, waits like `watch`, taking over if that driver goes away unfinished.
 */
async function driveInForeground(
  session: Session,
  record: RunRecord,
  pollInterval: number,
  table: boolean,
): Promise<number> {
  const runKey = record.state.runKey;
  using interrupt = listenForInterrupt();
  using live = liveTable(session, runKey, table);
  for (;;) {
    {
      using lock = await session.locks.tryDriverLock(runKey);
      if (lock) {
        const state = await session.driver(record, interrupt.requested).drive();
        live.stop();
        printJson(runJson(session.run(runKey)));
        return isTerminalRun(state.status) ? runExitCode(state.status) : ExitCode.interrupted;
      }
    }
    const seen = await waitUntilFinished(session, runKey, pollInterval, interrupt.requested, { rounds: 1 });
    const status = seen.state.status;
    if (interrupt.requested() || isTerminalRun(status)) {
      live.stop();
      printJson(runJson(seen));
      return isTerminalRun(status) && !interrupt.requested() ? runExitCode(status) : ExitCode.interrupted;
    }
  }
}

/** Log files of a detached driver, named after the run key made safe for a file name. */
export function detachedLogs(dbPath: string, runKey: string) {
  const dir = join(stateHome(dbPath), "logs");
  const base = join(dir, `orchesjob-flow-${safeFileName(runKey)}`);
  return { dir, stdout: `${base}.stdout.log`, stderr: `${base}.stderr.log` };
}

/**
 * Starts `orchesjob-flow _drive` in a new session (it outlives the SSH session or terminal that ran
 * `start -d`), stdin from /dev/null and output appended to the run's log files. A shell does the
 * redirection and then `exec`s, so the PID reported is the driver's own.
 */
export function launchDetached(dbPath: string, runKey: string, pollInterval: number) {
  const logs = detachedLogs(dbPath, runKey);
  mkdirSync(logs.dir, { recursive: true, mode: 0o700 });
  const driver = [...selfCommand(), "--db", resolve(dbPath), "--poll-interval", String(pollInterval)];
  const pid = spawnDetached([
    "/bin/sh",
    "-c",
    'out=$1 err=$2; shift 2; exec "$@" < /dev/null >> "$out" 2>> "$err"',
    "orchesjob-flow-detach",
    logs.stdout,
    logs.stderr,
    ...driver,
    "_drive",
    "--run-key",
    runKey,
  ]);
  return { pid, stdout_log: logs.stdout, stderr_log: logs.stderr };
}
