/**
 * Exit codes of the orchesjob-flow CLI (documented in README.md): the codes, the CLI's own error that
 * carries one, and the one table that maps the errors of the other layers to codes.
 */
import { DamagedRunError, JobExit, type TerminalRunStatus } from "../domain/mod.ts";
import { FlowError, ParamError } from "../flow/mod.ts";
import { ExecutorChoiceError, JobError } from "../executor/mod.ts";
import { StateFileChangedError, StateFileError, StateFileUnavailableError, StateLocationError } from "../store/mod.ts";

export const ExitCode = {
  ok: 0,
  flowFailed: 1,
  usage: 2,
  notFound: 3,
  cancelled: 4,
  /** `cancel`: the run is CANCELLED, but an abort could not be delivered (its job may still run). */
  abortFailed: 5,
  /** `wait --timeout` ran out before the run ended (as timeout(1) exits). */
  timedOut: 124,
  /**
   * `start -d`: the background driver was launched but neither took the run nor exited within the
   * wait (EX_TEMPFAIL); also `_drive` finding the run driven by another process.
   */
  notConfirmed: 75,
  /**
   * A driver stopped because its state file was deleted or replaced under it (EX_IOERR): the run goes
   * on in no file, so it must not go on at all.
   */
  stateFileChanged: 74,
  /**
   * A run's stored record cannot be read back (EX_DATAERR): the error names the run and the column.
   * Other runs are unaffected.
   */
  damagedRun: 65,
  /** An internal error: a bug, or an environment failure (disk, permissions); EX_SOFTWARE of sysexits.h. */
  internal: 70,
  interrupted: 130,
} as const;
export type ExitCode = typeof ExitCode[keyof typeof ExitCode];

/** How `start`, `watch` and `_drive` exit for a run that ended. */
const RUN_EXIT_CODES: Readonly<Record<TerminalRunStatus, ExitCode>> = {
  SUCCEEDED: ExitCode.ok,
  FAILED: ExitCode.flowFailed,
  CANCELLED: ExitCode.cancelled,
};

export function runExitCode(status: TerminalRunStatus): ExitCode {
  return RUN_EXIT_CODES[status];
}

/**
 * A failure the user caused or must act on. The CLI boundary prints it as one line of JSON on stderr
 * and exits with `exitCode`; anything else that escapes is a bug.
 */
export class UserError extends Error {
  override name = "UserError";
  constructor(message: string, readonly exitCode: number = ExitCode.usage) {
    super(message);
  }
}

/**
 * The exit code for an error someone can act on, or null for anything else (a bug, or an environment
 * failure such as a disk error), which the CLI reports as an internal error.
 */
export function exitCodeFor(error: unknown): number | null {
  if (error instanceof UserError) return error.exitCode;
  if (error instanceof DamagedRunError) return ExitCode.damagedRun;
  if (error instanceof StateFileChangedError) return ExitCode.stateFileChanged;
  // A full disk or an I/O error: the environment, not the file or the command line.
  if (error instanceof StateFileUnavailableError) return ExitCode.internal;
  if (error instanceof FlowError || error instanceof ParamError || error instanceof StateFileError) {
    return ExitCode.usage;
  }
  if (error instanceof StateLocationError) return ExitCode.usage;
  if (error instanceof ExecutorChoiceError) return ExitCode.usage;
  if (error instanceof JobError) return JobExit[error.reason];
  return null;
}
