/**
 * Executors: the one interface the engine starts, polls and aborts jobs through, the external
 * orchesjob adapter, the built-in runner, and the built-in runner's operator verbs (JobAdmin).
 */
export {
  type AbortOptions,
  type Executor,
  ExecutorChoiceError,
  ExecutorError,
  JobError,
  type JobRef,
  type LogRange,
  logWindow,
  type StartOptions,
  type UnlockOptions,
} from "./executor.ts";
export { ExternalExecutor } from "./external.ts";
export {
  checkExecutorOptions,
  checkUsable,
  chooseExecutor,
  createExecutor,
  type ExecutorChoice,
  findOnPath,
  unusableBecause,
} from "./select.ts";
export {
  ABORT_NOT_DONE,
  BuiltinRunner,
  type CleanSelectable,
  JOB_TABLES,
  JobAdmin,
  type JobRow,
} from "./builtin/mod.ts";
