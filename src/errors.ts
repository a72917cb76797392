/** Exit codes of the orchesjob-flow CLI (documented in README.md), and the error that carries one. */
import type { TerminalRunStatus } from "./domain/mod.ts";

export const ExitCode = {
  ok: 0,
  flowFailed: 1,
  usage: 2,
  notFound: 3,
  cancelled: 4,
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
