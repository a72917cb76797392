/** What the run commands share: the state file, the run repository and locks, and each run's executor. */
import type { RunRecord, StepState } from "../domain/mod.ts";
import { Driver, loadRun, type RunRepository } from "../engine/mod.ts";
import { ExitCode, UserError } from "./errors.ts";
import { checkUsable, chooseExecutor, createExecutor, type Executor } from "../executor/mod.ts";
import { epochNow, pathExists } from "../shared/mod.ts";
import {
  checkStateFile,
  type Database,
  driverHolder,
  type FileIdentity,
  FileLocks,
  jobsDirectory,
  openDatabase,
  openDatabaseReadOnly,
  resolveDbPath,
  type RunFilter,
  RunStore,
  type RunSummary,
  stateFileIdentity,
  StateFileReadOnlyError,
  storeWaitReason,
} from "../store/mod.ts";
import { type OptionSpec, type ParsedArgs, suggestName } from "./args.ts";
import type { CommandContext } from "./command.ts";
import { runKeyProblem } from "../flow/mod.ts";
import { printError } from "./output.ts";
import { faultJson } from "./render/mod.ts";

export interface SessionOptions {
  /**
   * For commands that only read (status, watch, list, logs): a missing state file is not created
   * (nor its directory); an empty in-memory database stands in, so every run is unknown.
   */
  readOnly?: boolean;
  /**
   * For commands that never write (status, list): an existing state file is opened read-only, so they
   * work on a read-only home or a read-only copy of the file.
   */
  queryOnly?: boolean;
  /**
   * For commands that read and write only at need (wait, watch, logs): an existing state file this
   * process may not write is opened read-only instead of refused; what then needs to write says so
   * ({@link Session.requireWritable}, {@link Session.tryDriverLock}).
   */
  readIfReadOnly?: boolean;
}

export class Session implements Disposable {
  readonly dbPath: string;
  readonly db: Database;
  /** The state file as opened (null: none, an in-memory stand-in): a driver stops if the path comes to name another file. */
  readonly identity: FileIdentity | null;
  /** The engine's ports, wired to SQLite and the file locks. */
  readonly runs: RunRepository;
  readonly locks: FileLocks;
  /** The SQLite side of `runs`, for what only the CLI needs (listing, deleting). */
  readonly store: RunStore;
  private executors = new Map<string, Executor>();
  /** Aborted by {@link Session.stopCalls}: the executors' calls under way are killed. */
  private readonly calls = new AbortController();
  /** Why the state file was opened read-only under `readIfReadOnly`, or null. */
  private readonly refused: StateFileReadOnlyError | null;

  constructor(readonly context: CommandContext, options: SessionOptions = {}) {
    this.dbPath = resolveDbPath(context.globals.db, (name) => Deno.env.get(name));
    ({ db: this.db, refused: this.refused } = openState(this.dbPath, options));
    this.identity = stateFileIdentity(this.dbPath);
    this.store = new RunStore(this.db);
    this.runs = this.store;
    this.locks = new FileLocks(this.dbPath);
  }

  /** Refuses (exit 2, {@link StateFileReadOnlyError}) what `needs` to write a state file opened read-only. */
  requireWritable(needs: string): void {
    if (this.refused) throw new StateFileReadOnlyError(this.dbPath, this.refused.reason, needs);
  }

  /**
   * The run's driver lock when no process holds it, else null. From a state file opened read-only a
   * run is never driven: null while another process drives it, else the refusal saying `needs`.
   */
  async tryDriverLock(runKey: string, needs: string): Promise<Disposable | null> {
    if (this.refused === null) return await this.locks.tryDriverLock(runKey);
    if ((await driverHolder(this.dbPath, runKey)) !== null) return null;
    this.requireWritable(needs);
    return null;
  }

  /** The run, or undefined when the state file has no such run. */
  load(runKey: string): RunRecord | undefined {
    return loadRun(this.runs, runKey);
  }

  /**
   * The run a command has been following, read again: exit code 3 too when it is gone, saying that it
   * went meanwhile (a `clean` deletes a run once it has ended, so its outcome can no longer be read).
   */
  runAgain(runKey: string): RunRecord {
    const record = this.load(runKey);
    if (record) return record;
    throw new UserError(
      `run ${runKey} was deleted while this command followed it (a clean after it ended?); ` +
        `its outcome can no longer be read (state file ${this.dbPath})`,
      ExitCode.notFound,
    );
  }

  /** The stored run, or exit code 3 naming the state file searched when there is none. */
  run(runKey: string): RunRecord {
    const record = this.load(runKey);
    if (!record) throw new UserError(`run not found: ${runKey} (state file ${this.dbPath})`, ExitCode.notFound);
    return record;
  }

  /**
   * The run with its orchesjob binary replaced when `--orchesjob-bin` names another one (the kind
   * stays, the old path is kept in `executor.replaced`). Refused (exit 2) for a run on the built-in
   * runner and for a binary that cannot be run.
   */
  rebind(record: RunRecord): RunRecord {
    const bin = this.context.globals.orchesjobBin;
    if (!bin) return record;
    const runKey = record.state.runKey;
    if (record.executor.kind !== "orchesjob") {
      throw new UserError(`run ${runKey} uses the built-in runner; --orchesjob-bin does not apply to it`);
    }
    const executor = chooseExecutor("orchesjob", bin, () => undefined);
    if (executor.bin === record.executor.bin) return record;
    checkUsable(executor, (name) => Deno.env.get(name));
    this.requireWritable(`--orchesjob-bin would change run ${runKey}'s executor`);
    const replaced = [...(record.executor.replaced ?? []), { bin: record.executor.bin!, until: epochNow() }];
    this.store.setExecutor(runKey, { ...executor, replaced });
    return this.run(runKey);
  }

  /** The runs `filter` selects, newest first, from their plain columns (load each with `run`). */
  list(filter: RunFilter): RunSummary[] {
    return this.store.list(filter);
  }

  /** The executor the run was started with (a resumed run keeps it, whatever today's flags say). */
  executorFor(record: RunRecord): Executor {
    // An external orchesjob is called with the run's own environment, so runs differ by it too.
    const runEnv = record.executor.kind === "orchesjob" ? record.state.launch?.env : undefined;
    const id = JSON.stringify([record.executor, runEnv ?? null]);
    let executor = this.executors.get(id);
    if (!executor) {
      executor = createExecutor(
        record.executor,
        this.db,
        jobsDirectory(this.dbPath),
        callTimeoutSec(),
        runEnv,
        this.calls.signal,
      );
      this.executors.set(id, executor);
    }
    return executor;
  }

  /**
   * Kills every call to an external orchesjob under way, and refuses later ones: for a command that
   * was interrupted, or ran out of its own time, while a call hangs (up to the call limit, a minute by
   * default). What a killed call did is unknown, as after a crash, and the next driver finds out.
   */
  stopCalls(): void {
    this.calls.abort();
  }

  driver(record: RunRecord, interrupted?: () => boolean): Driver {
    return new Driver({
      runs: this.runs,
      gate: this.locks,
      executor: this.executorFor(record),
      pollIntervalSec: this.context.globals.pollInterval,
      interrupted,
      checkStore: () => {
        if (this.identity) checkStateFile(this.dbPath, this.identity);
      },
      storeWaitReason,
      onStoreWait: ({ runKey, reason, since, retryInSec }) =>
        printError(`state database unusable, retrying: ${reason}`, {
          run_key: runKey,
          since,
          retry_in_sec: retryInSec,
        }),
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
    // A call still under way is one nobody waits for any more (a stderr line given up on): it must
    // not outlive the command, orphaned with whatever it started.
    this.stopCalls();
    this.db.close();
  }
}

/** The state file's connection as `options` ask (see {@link SessionOptions}), and why it is read-only if it is. */
function openState(path: string, options: SessionOptions): { db: Database; refused: StateFileReadOnlyError | null } {
  if ((options.readOnly || options.queryOnly) && !pathExists(path)) {
    return { db: openDatabase(":memory:"), refused: null };
  }
  if (options.queryOnly) return { db: openDatabaseReadOnly(path), refused: null };
  try {
    return { db: openDatabase(path), refused: null };
  } catch (error) {
    if (!options.readIfReadOnly || !(error instanceof StateFileReadOnlyError)) throw error;
    return { db: openDatabaseReadOnly(path), refused: error };
  }
}

/** The run's step called `stepId`, or a usage error that suggests the nearest id. */
export function stepOf(record: RunRecord, stepId: string): StepState {
  const step = record.state.steps.find((s) => s.id === stepId);
  if (step) return step;
  const near = suggestName(stepId, record.state.steps.map((s) => s.id));
  throw new UserError(
    `run ${record.state.runKey} has no step ${JSON.stringify(stepId)}` +
      (near ? `; did you mean ${JSON.stringify(near)}?` : ""),
  );
}

/** The `--run-key` option of every run command. */
/** `-d`: start, resume and retry drive the run in a background process. */
export const DETACH_OPTION: OptionSpec = {
  name: "detach",
  short: "d",
  help: "Drive the run in a background process and return at once.",
};

/** `-q`: no live table while a run is driven in the foreground. */
export const QUIET_OPTION: OptionSpec = {
  name: "quiet",
  short: "q",
  help: "No live table on stderr (shown only when stderr is a terminal).",
};

export const RUN_KEY_OPTION: OptionSpec = {
  name: "run-key",
  value: "string",
  metavar: "KEY",
  help: "The flow run's key (required).",
  // runKeyOf refuses an empty key with the run-key rule.
  allowEmpty: true,
};

/**
 * The `--run-key` of a run command, checked by the run-key rule (README "Run keys"). A key the rule
 * refuses is taken only when the state file already holds a run of that key (one stored before the
 * rule refused it): a stored run stays readable, and no new run gets such a key.
 */
export function runKeyOf(context: CommandContext, args: ParsedArgs): string {
  const runKey = args.options["run-key"] as string | undefined;
  if (runKey === undefined) throw new UserError("--run-key is required");
  const problem = runKeyProblem(runKey);
  if (problem === null || isStoredRun(context, runKey)) return runKey;
  throw new UserError(problem);
}

/** True when the state file exists and holds a run of `runKey` (read only: nothing is created). */
function isStoredRun(context: CommandContext, runKey: string): boolean {
  try {
    using session = new Session(context, { queryOnly: true });
    return session.runs.runStatus(runKey) !== undefined;
  } catch {
    // A state file that cannot be read holds no run to keep readable: the key's own error is the one to see.
    return false;
  }
}

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
