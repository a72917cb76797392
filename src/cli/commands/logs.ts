/** `logs`: what a step's attempt wrote, through the run's executor (orchesjob `logs`, or the built-in files). */
import { isActiveJob, isTerminalRun, type Job, stepRunKey } from "../../domain/mod.ts";
import { ExitCode, UserError } from "../errors.ts";
import { type Executor, ExecutorError } from "../../executor/mod.ts";
import { sleepUnless } from "../../shared/mod.ts";
import { wholeNumberOption } from "../args.ts";
import type { Command } from "../command.ts";
import { listenForInterrupt } from "../interrupt.ts";
import { writeBytes, writeStderrBytes } from "../output.ts";
import { RUN_KEY_OPTION, runKeyOf, Session, stepOf } from "../session.ts";

type Stream = "stdout" | "stderr";

export const logsCommand: Command = {
  spec: {
    name: "logs",
    summary: "Print what a step's attempt wrote to stdout and stderr, through the run's executor.",
    usage: "logs --run-key KEY --step STEP [--attempt N] [--stream stdout|stderr|both] [--follow] [--tail N]",
    options: [
      RUN_KEY_OPTION,
      { name: "step", value: "string", metavar: "STEP", help: "The step's id (required)." },
      { name: "attempt", value: "number", metavar: "N", help: "Which attempt (default: the latest)." },
      {
        name: "stream",
        value: "string",
        choices: ["stdout", "stderr", "both"],
        help: "both (default): the job's stdout on stdout and its stderr on stderr; one stream: on stdout.",
      },
      { name: "follow", short: "f", help: "Keep printing new output until the attempt ends." },
      { name: "tail", value: "number", metavar: "N", help: "Only the last N lines of each stream." },
    ],
    notes: "Exit 0 when the output was printed; 3 for an unknown run key or an attempt that has not started;\n" +
      "2 for bad input; 1 when the executor could not be asked; 130 when --follow is interrupted.",
  },
  async run(context, args) {
    const runKey = runKeyOf(context, args);
    const stepId = args.options.step as string | undefined;
    if (stepId === undefined) throw new UserError("--step is required");
    const tail = args.options.tail === undefined ? undefined : wholeNumberOption(args, "tail", 0, 0);
    const wanted = args.options.stream ?? "both";
    const streams: Stream[] = wanted === "both" ? ["stdout", "stderr"] : [wanted as Stream];
    const follow = args.options.follow === true;
    using session = new Session(context, { readOnly: true, readIfReadOnly: true });
    let record = session.run(runKey);
    const step = stepOf(record, stepId);
    let attempt: number;
    if (args.options.attempt !== undefined) {
      attempt = wholeNumberOption(args, "attempt", 1, 1);
      if (attempt > step.attemptNo) {
        throw new UserError(
          `step ${stepId} has ${step.attemptNo === 0 ? "not started" : `attempts 1 to ${step.attemptNo}`}`,
          ExitCode.notFound,
        );
      }
    } else attempt = step.attemptNo;
    using interrupt = listenForInterrupt();
    const interval = Math.min(context.globals.pollInterval, 0.5);
    // With --follow, a step that has not started yet is waited for.
    while (attempt === 0) {
      if (!follow) throw new UserError(`step ${stepId} has not started`, ExitCode.notFound);
      if (isTerminalRun(record.state.status)) return ExitCode.ok;
      await sleepUnless(interval, interrupt.requested);
      if (interrupt.requested()) return ExitCode.interrupted;
      record = session.run(runKey);
      attempt = stepOf(record, stepId).attemptNo;
    }
    const jobKey = stepRunKey(runKey, stepId, attempt);
    const executor = session.executorFor(record);
    const offsets: Record<Stream, number | undefined> = { stdout: undefined, stderr: undefined };
    // Once the attempt is over, one more pass reads what a pass that overlapped its end may have missed.
    let over = false;
    for (;;) {
      // The job's status is read before its output, so once it says "ended" this read has everything.
      const job = follow && !over ? await ask(() => executor.status(jobKey)) : null;
      for (const stream of streams) {
        // After the first read, only what was added since (the built-in runner reads just that).
        const offset = offsets[stream];
        const bytes = await ask(() => readLog(executor, jobKey, stream, offset));
        const from = offset !== undefined || tail === undefined ? 0 : tailStart(bytes, tail);
        // One stream goes to stdout (to pipe into grep); both keep them apart on stdout and stderr.
        const write = streams.length === 2 && stream === "stderr" ? writeStderrBytes : writeBytes;
        if (bytes.length > from) write(bytes.subarray(from));
        offsets[stream] = (offset ?? 0) + bytes.length;
      }
      if (!follow || over) return ExitCode.ok;
      over = ended(job, session.runs.runStatus(runKey));
      if (over) continue;
      await sleepUnless(interval, interrupt.requested);
      if (interrupt.requested()) return ExitCode.interrupted;
    }
  },
};

/** The attempt is over: its job ended, or it never got a job and the run is over. */
function ended(job: Job | null, runStatus: string | undefined): boolean {
  if (job) return !isActiveJob(job.status);
  return runStatus === undefined || isTerminalRun(runStatus as never);
}

async function readLog(executor: Executor, jobKey: string, stream: Stream, from?: number): Promise<Uint8Array> {
  return await executor.logs({ runKey: jobKey }, stream, from === undefined ? undefined : { from }) ??
    new Uint8Array();
}

/** Executor failures are the operator's to see, as one JSON line with exit 1. */
async function ask<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (error instanceof ExecutorError) throw new UserError(`cannot read the job: ${error.message}`, 1);
    throw error;
  }
}

/** Where the last `lines` lines of `bytes` begin (a final newline does not start an empty line). */
export function tailStart(bytes: Uint8Array, lines: number): number {
  if (lines <= 0) return bytes.length;
  let end = bytes.length;
  if (end > 0 && bytes[end - 1] === 0x0a) end--;
  let seen = 0;
  for (let i = end - 1; i >= 0; i--) {
    if (bytes[i] === 0x0a && ++seen === lines) return i + 1;
  }
  return 0;
}
