/** `start`: create or resume a run, then drive it in the foreground or in a detached child. */
import { isTerminalRun, type RunRecord } from "../../domain/mod.ts";
import { createRun, loadRun } from "../../engine/mod.ts";
import { epochNow, join, makeDirectory, resolve, spawnDetached } from "../../shared/mod.ts";
import { ExitCode, runExitCode, UserError } from "../errors.ts";
import { checkUsable, chooseExecutor } from "../../executor/mod.ts";
import { definitionHash } from "../../flow/mod.ts";
import { safeFileName, stateHome } from "../../store/mod.ts";
import type { Command, GlobalOptions } from "../command.ts";
import { readFlowFile, STDIN_NAME } from "../flow_file.ts";
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
    usage: "start --run-key KEY [-d|--detach] [-q|--quiet] FLOW_FILE",
    options: [
      RUN_KEY_OPTION,
      { name: "detach", short: "d", help: "Drive the run in a background process and return at once." },
      { name: "quiet", short: "q", help: "No live table on stderr (shown only when stderr is a terminal)." },
    ],
    positionals: ["FLOW_FILE"],
    notes: "FLOW_FILE - reads the flow from standard input.\n" +
      "Exit codes: 0 SUCCEEDED, 1 FAILED, 4 CANCELLED, 2 usage/validation error, 130 interrupted.\n" +
      "With -d: 0 once the background process is launched (or the run is already being driven).",
  },
  async run(context, args) {
    const runKey = runKeyOf(args);
    const file = args.positionals[0];
    const flow = await readFlowFile(file);
    const hash = definitionHash(flow);
    using session = new Session(context);
    const existing = loadRun(session.runs, runKey);
    let record = existing ?? createRun(session.runs, {
      runKey,
      flow,
      definitionHash: hash,
      flowFile: file === "-" ? STDIN_NAME : resolve(file),
      executor: newRunExecutor(context.globals),
    }, epochNow());
    if (record.definitionHash !== hash) {
      throw new UserError(
        `run ${runKey} is bound to another definition: stored ${record.definitionHash}, ${file} is ${hash}; ` +
          "a run never continues from an edited file (use a new run key)",
      );
    }
    if (existing) record = session.rebind(record);
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

/**
 * The executor a new run is bound to, refused (exit 2) before the run exists when it cannot be used:
 * a run key is never spent on a run whose every step fails for want of orchesjob.
 */
function newRunExecutor(globals: GlobalOptions) {
  const env = (name: string) => Deno.env.get(name);
  const spec = chooseExecutor(globals.executor, globals.orchesjobBin, env);
  checkUsable(spec, env);
  return spec;
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
  makeDirectory(logs.dir);
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
