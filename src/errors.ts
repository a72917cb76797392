/** Exit codes of the orchesjob-flow CLI (documented in README.md). */
export const ExitCode = {
  ok: 0,
  flowFailed: 1,
  usage: 2,
  notFound: 3,
  cancelled: 4,
  interrupted: 130,
} as const;
export type ExitCode = typeof ExitCode[keyof typeof ExitCode];

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
