/** What the run commands share: the state file, the run store, and the executor a run is bound to. */
import { Driver } from "../engine/driver.ts";
import { ExitCode, UserError } from "../errors.ts";
import { jobsDirectory } from "../executor/builtin/runner.ts";
import type { Executor } from "../executor/executor.ts";
import { createExecutor } from "../executor/select.ts";
import { type Database, openDatabase } from "../store/db.ts";
import { resolveDbPath } from "../store/paths.ts";
import type { RunRecord } from "../domain/mod.ts";
import { RunStore } from "../store/runs.ts";
import type { CommandContext } from "./command.ts";

export class Session implements Disposable {
  readonly dbPath: string;
  readonly db: Database;
  readonly store: RunStore;
  private executors = new Map<string, Executor>();

  constructor(readonly context: CommandContext) {
    this.dbPath = resolveDbPath(context.globals.db, (name) => Deno.env.get(name));
    this.db = openDatabase(this.dbPath);
    this.store = new RunStore(this.db);
  }

  /** The stored run, or exit code 3 when there is none. */
  run(runKey: string): RunRecord {
    const record = this.store.get(runKey);
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
      store: this.store,
      executor: this.executorFor(record),
      dbPath: this.dbPath,
      pollIntervalSec: this.context.globals.pollInterval,
      interrupted,
    }, record.state.runKey);
  }

  [Symbol.dispose](): void {
    for (const executor of this.executors.values()) executor.close();
    this.db.close();
  }
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
