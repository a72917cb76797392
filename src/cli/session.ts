/** What the run commands share: the state file, the run repository and locks, and each run's executor. */
import { existsSync } from "node:fs";
import type { RunRecord } from "../domain/mod.ts";
import { Driver, type DriverLock, loadRun, type RunRepository, type StartGate } from "../engine/mod.ts";
import { ExitCode, UserError } from "./errors.ts";
import { createExecutor, type Executor } from "../executor/mod.ts";
import { type Database, FileLocks, jobsDirectory, openDatabase, resolveDbPath, RunStore } from "../store/mod.ts";
import type { OptionSpec, ParsedArgs } from "./args.ts";
import type { CommandContext } from "./command.ts";
import { printError } from "./output.ts";
import { faultJson } from "./render/mod.ts";

export interface SessionOptions {
  /**
   * For commands that only read (status, watch, list, logs): a missing state file is not created
   * (nor its directory); every run is then unknown.
   */
  readOnly?: boolean;
}

export class Session implements Disposable {
  readonly dbPath: string;
  /** The engine's ports, wired to SQLite and the file locks. */
  readonly runs: RunRepository;
  readonly locks: DriverLock & StartGate;
  private readonly database: Database | null;
  private executors = new Map<string, Executor>();

  constructor(readonly context: CommandContext, options: SessionOptions = {}) {
    this.dbPath = resolveDbPath(context.globals.db, (name) => Deno.env.get(name));
    this.database = options.readOnly && !existsSync(this.dbPath) ? null : openDatabase(this.dbPath);
    this.runs = this.database ? new RunStore(this.database) : NO_RUNS;
    this.locks = new FileLocks(this.dbPath);
  }

  /** The SQLite connection; a read-only session without a state file has none. */
  get db(): Database {
    if (!this.database) throw new Error(`no state file at ${this.dbPath}`);
    return this.database;
  }

  /** The stored run, or exit code 3 naming the state file searched when there is none. */
  run(runKey: string): RunRecord {
    const record = loadRun(this.runs, runKey);
    if (!record) throw new UserError(`run not found: ${runKey} (state file ${this.dbPath})`, ExitCode.notFound);
    return record;
  }

  /** The executor the run was started with (a resumed run keeps it, whatever today's flags say). */
  executorFor(record: RunRecord): Executor {
    const id = JSON.stringify(record.executor);
    let executor = this.executors.get(id);
    if (!executor) {
      executor = createExecutor(record.executor, this.db, jobsDirectory(this.dbPath), callTimeoutSec());
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
      // The driver's stderr: the terminal of a foreground start, the stderr log of a detached one.
      onExecutorError: ({ runKey, stepId, attemptNo, fault }) =>
        printError(`executor call failed: ${fault.message}`, {
          run_key: runKey,
          step: stepId,
          attempt_no: attemptNo,
          executor_error: faultJson(fault),
        }),
    }, record.state.runKey);
  }

  [Symbol.dispose](): void {
    this.database?.close();
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

/** The runs of a state file that does not exist: none, and nothing can be written. */
const NO_RUNS: RunRepository = {
  load: () => undefined,
  runStatus: () => undefined,
  create: () => {
    throw new Error("read-only session");
  },
  updateRun: () => false,
  updateStep: () => false,
  cancel: () => false,
};

/**
 * The time limit of one call to an external orchesjob: 60 s, or `ORCHESJOB_FLOW_CALL_TIMEOUT` seconds
 * (for tests of a hanging orchesjob, and hosts where orchesjob is known to be slow).
 */
function callTimeoutSec(): number {
  const raw = Deno.env.get("ORCHESJOB_FLOW_CALL_TIMEOUT");
  if (!raw) return 60;
  const seconds = Number(raw);
  if (!Number.isFinite(seconds) || seconds <= 0) {
    throw new UserError(`ORCHESJOB_FLOW_CALL_TIMEOUT must be a number of seconds > 0, got ${JSON.stringify(raw)}`);
  }
  return seconds;
}
