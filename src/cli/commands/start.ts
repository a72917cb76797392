/** `start`: create or resume a run, then drive it in the foreground or in a detached child. */
import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { isTerminalRun } from "../../domain/mod.ts";
import { createRun } from "../../engine/mod.ts";
import { epochNow, spawnDetached } from "../../shared/mod.ts";
import { ExitCode, runExitCode, UserError } from "../errors.ts";
import { chooseExecutor } from "../../executor/mod.ts";
import { definitionHash } from "../../flow/mod.ts";
import { safeFileName, stateHome } from "../../store/mod.ts";
import type { Command } from "../command.ts";
import { readFlowFile } from "../flow_file.ts";
import { listenForInterrupt } from "../interrupt.ts";
import { printJson } from "../output.ts";
import { runJson } from "../render/mod.ts";
import { selfCommand } from "../self.ts";
import { RUN_KEY_OPTION, runKeyOf, Session } from "../session.ts";
import { waitUntilFinished } from "../follow.ts";

export const startCommand: Command = {
  spec: {
    name: "start",
    summary: "Start or resume a flow run: in the foreground until it ends, or detached (-d) in the background.",
    usage: "start --run-key KEY [-d|--detach] FLOW_FILE",
    options: [
      RUN_KEY_OPTION,
      { name: "detach", short: "d", help: "Drive the run in a background process and return at once." },
    ],
    positionals: ["FLOW_FILE"],
    notes: "Exit codes: 0 SUCCEEDED, 1 FAILED, 4 CANCELLED, 2 usage/validation error, 130 interrupted.\n" +
      "With -d: 0 once the background process is launched (or the run is already being driven).",
  },
  async run(context, args) {
    const runKey = runKeyOf(args);
    const file = args.positionals[0];
    const flow = readFlowFile(file);
    const hash = definitionHash(flow);
    using session = new Session(context);
    const executor = chooseExecutor(context.globals.executor, context.globals.orchesjobBin, (n) => Deno.env.get(n));
    const record = createRun(session.runs, {
      runKey,
      flow,
      definitionHash: hash,
      flowFile: resolve(file),
      executor,
    }, epochNow());
    if (record.definitionHash !== hash) {
      throw new UserError(
        `run ${runKey} is bound to another definition: stored ${record.definitionHash}, ${file} is ${hash}; ` +
          "a run never continues from an edited file (use a new run key)",
      );
    }
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

    using interrupt = listenForInterrupt();
    for (;;) {
      {
        using lock = await session.locks.tryDriverLock(runKey);
        if (lock) {
          const state = await session.driver(record, interrupt.requested).drive();
          printJson(runJson(session.run(runKey)));
          return isTerminalRun(state.status) ? runExitCode(state.status) : ExitCode.interrupted;
        }
      }
      // Someone else drives it: wait like `watch`, taking over if that driver goes away unfinished.
      const seen = await waitUntilFinished(session, runKey, context.globals.pollInterval, interrupt.requested, {
        rounds: 1,
      });
      const status = seen.state.status;
      if (interrupt.requested() || isTerminalRun(status)) {
        printJson(runJson(seen));
        return isTerminalRun(status) && !interrupt.requested() ? runExitCode(status) : ExitCode.interrupted;
      }
    }
  },
};

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
function launchDetached(dbPath: string, runKey: string, pollInterval: number) {
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
