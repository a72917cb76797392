/** What the run commands share: the state file, the run repository and locks, and each run's executor. */
import type { RunRecord } from "../domain/mod.ts";
import { Driver, type DriverLock, loadRun, type RunRepository, type StartGate } from "../engine/mod.ts";
import { ExitCode, UserError } from "./errors.ts";
import { createExecutor, type Executor } from "../executor/mod.ts";
import { type Database, FileLocks, jobsDirectory, openDatabase, resolveDbPath, RunStore } from "../store/mod.ts";
import type { OptionSpec, ParsedArgs } from "./args.ts";
import type { CommandContext } from "./command.ts";

export class Session implements Disposable {
  readonly dbPath: string;
  readonly db: Database;
  /** The engine's ports, wired to SQLite and the file locks. */
  readonly runs: RunRepository;
  readonly locks: DriverLock & StartGate;
  private executors = new Map<string, Executor>();

  constructor(readonly context: CommandContext) {
    this.dbPath = resolveDbPath(context.globals.db, (name) => Deno.env.get(name));
    this.db = openDatabase(this.dbPath);
    this.runs = new RunStore(this.db);
    this.locks = new FileLocks(this.dbPath);
  }

  /** The stored run, or exit code 3 when there is none. */
  run(runKey: string): RunRecord {
    const record = loadRun(this.runs, runKey);
    if (!record) throw new UserError(`run not found: ${runKey}`, ExitCode.notFound);
    return record;
  }

  /** The executor the run was started with (a resumed run keeps it, whatever today's flags say). */
  executorFor(record: RunRecord): Executor {
    const id = JSON.stringify(record.executor);
    let executor = this.executors.get(id);
    if (!executor) {
      executor = createExecutor(record.executor, this.db, jobsDirectory(this.dbPath));
      this.executors.set(id, executor);
    }
    return executor;
  }

  driver(record: RunRecord, interrupted?: () => boolean): Driver {
    return new Driver({
      runs: this.runs,
      gate: this.locks,
      executor: this.executorFor(record),
      pollIntervalSec: this.context.globals.pollInterval,
      interrupted,
    }, record.state.runKey);
  }

  [Symbol.dispose](): void {
    this.db.close();
  }
}

/** The `--run-key` option of every run command. */
export const RUN_KEY_OPTION: OptionSpec = {
  name: "run-key",
  value: "string",
  metavar: "KEY",
  help: "The flow run's key (required).",
};

/** The checked `--run-key` of a run command. */
export function runKeyOf(args: ParsedArgs): string {
  return checkRunKey(args.options["run-key"] as string | undefined);
}

/** Run keys are the caller's; they only need to be non-empty, printable and of sane length. */
export function checkRunKey(runKey: string | undefined): string {
  if (runKey === undefined) throw new UserError("--run-key is required");
  const control = [...runKey].some((ch) => ch.charCodeAt(0) < 0x20 || ch.charCodeAt(0) === 0x7f);
  if (runKey.trim() === "" || runKey.length > 256 || control) {
    throw new UserError(`invalid run key ${JSON.stringify(runKey)}: use 1-256 printable characters`);
  }
  return runKey;
}
