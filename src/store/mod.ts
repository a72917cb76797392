/**
 * The state file and what lives beside it: SQLite (connection, migrations, the flow-run tables that
 * implement the engine's RunRepository), per-run file locks, and the state directory's layout.
 */
export { changed, sqlList } from "./sql.ts";
export {
  busyTimeoutMs,
  changesMade,
  checkMigrated,
  checkStateFile,
  type Database,
  type FileIdentity,
  isLockHeld,
  isReadOnly,
  limitLockWait,
  LOCK_HELD_REASON,
  migrate,
  openDatabase,
  openDatabaseReadOnly,
  openOlderReadOnly,
  openStandIn,
  prepared,
  probeWriteLock,
  refuseFileOnPath,
  type SchemaPart,
  StateFileBehindError,
  StateFileChangedError,
  StateFileError,
  stateFileIdentity,
  StateFileReadOnlyError,
  StateFileUnavailableError,
  storeWaitReason,
  transaction,
} from "./db.ts";
export {
  type DriverHolder,
  driverHolder,
  driverStateFile,
  FileLocks,
  type HeldLock,
  isCancelHeld,
  isDriverHeld,
  isLaunchHeld,
  LOCK_KINDS,
  lockFilePath,
  unlinkFreeLockFile,
} from "./locks.ts";
export { jobsDirectory, resolveDbPath, safeFileName, stateHome, StateLocationError } from "./paths.ts";
export { type RunFilter, RunStore, type RunSummary, type StepAttempts } from "./runs.ts";
