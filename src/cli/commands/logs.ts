/** `logs`: what a step's attempt wrote, through the run's executor (orchesjob `logs`, or the built-in files). */
import {
  addFailedCall,
  type ExecutorFault,
  executorUnavailableLimit,
  isActiveJob,
  isTerminalRun,
  isTerminalStep,
  type Job,
  type RunRecord,
  stepRunKey,
  type StepState,
} from "../../domain/mod.ts";
import { ExitCode, UserError } from "../errors.ts";
import { type Executor, ExecutorError } from "../../executor/mod.ts";
import { type Backoff, concatBytes, nextPause, sleepUnless, stopPoint } from "../../shared/mod.ts";
import { type ParsedArgs, wholeNumberOption } from "../args.ts";
import type { Command, CommandContext } from "../command.ts";
import { listenForInterrupt } from "../interrupt.ts";
import { printWarning, stdoutGone, writeBytes, writeStderrBytes } from "../output.ts";
import { driverHolder } from "../../store/mod.ts";
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
      "2 for bad input; 1 when the executor could not be asked (with --follow: when its calls kept failing\n" +
      "for the flow's executor_unavailable_sec, default 600 s); 130 when --follow is interrupted.",
  },
  async run(context, args) {
    const runKey = runKeyOf(context, args);
    const stepId = args.options.step as string | undefined;
    if (stepId === undefined) throw new UserError("--step is required");
    const tail = args.options.tail === undefined ? undefined : wholeNumberOption(args, "tail", 0, 0);
    const wanted = args.options.stream ?? "both";
    const streams: Stream[] = wanted === "both" ? ["stdout", "stderr"] : [wanted as Stream];
    const follow = args.options.follow === true;
    // Listening before the state file is opened (see wait); once opened, a signal also kills a call to
    // orchesjob under way, which could otherwise hold this process for up to the call limit.
    using interrupt = listenForInterrupt();
    // What the built-in runner finds as it reads the job (its end) is recorded unless another process's
    // write lock stops it: then the output is printed all the same, and the next reader records it.
    using session = await Session.open(
      context,
      { readOnly: true, readIfReadOnly: true, recordUnlessLocked: true },
      interrupt,
    );
    let record = session.run(runKey);
    let attempt = attemptAsked(args, stepOf(record, stepId));
    const interval = Math.min(context.globals.pollInterval, 0.5);
    if (attempt === 0) {
      if (!follow) throw new UserError(`step ${stepId} has not started`, ExitCode.notFound);
      const started = await startOf(session, runKey, stepId, interval, interrupt.requested);
      if (typeof started === "number") return started;
      ({ record, attempt } = started);
    }
    const jobKey = stepRunKey(runKey, stepId, attempt);
    // The job the run recorded for this attempt, if any: its output was there once.
    const recorded = stepOf(record, stepId).job;
    // A follower rides out passing failures of the executor's calls (see followerPatience).
    const asker = new Asker(follow ? followerPatience(record, interval, context, interrupt.requested) : null);
    const ask: Ask = (call) => asker.ask(call);
    const executor = session.executorFor(record);
    const reader = new LogReader(executor, jobKey, ask, recorded?.run_key === jobKey ? recorded : null);
    const offsets: Record<Stream, number | undefined> = { stdout: undefined, stderr: undefined };
    // Once the attempt is over, one more pass reads what a pass that overlapped its end may have missed.
    let over = false;
    for (;;) {
      // The job's status is read before its output, so once it says "ended" this read has everything.
      const job = follow && !over ? await ask(() => executor.status(jobKey)) : null;
      for (const stream of streams) {
        // One stream goes to stdout (to pipe into grep); both keep them apart on stdout and stderr.
        const write = streams.length === 2 && stream === "stderr" ? writeStderrBytes : writeBytes;
        const offset = offsets[stream];
        // After the first read, only what was added since (the built-in runner reads just that).
        offsets[stream] = offset === undefined && tail !== undefined
          ? await reader.tail(stream, tail, write)
          : await reader.copy(stream, offset ?? 0, write, write === writeBytes ? stdoutGone : undefined);
      }
      // A closed pipe (`| head -2`) ends a follow, as it ends `tail -f`.
      if (!follow || over || stdoutGone()) return ExitCode.ok;
      over = ended(job, session.runs.runStatus(runKey));
      if (over) continue;
      await sleepUnless(interval, interrupt.requested);
      if (interrupt.requested()) return ExitCode.interrupted;
    }
  },
};

/** The attempt asked for (--attempt, which must have started), or the step's latest (0: none yet). */
function attemptAsked(args: ParsedArgs, step: StepState): number {
  if (args.options.attempt === undefined) return step.attemptNo;
  const attempt = wholeNumberOption(args, "attempt", 1, 1);
  if (attempt > step.attemptNo) {
    throw new UserError(
      `step ${step.id} has ${step.attemptNo === 0 ? "not started" : `attempts 1 to ${step.attemptNo}`}`,
      ExitCode.notFound,
    );
  }
  return attempt;
}

/**
 * A follower's patience with failing executor calls: what the driver rides out (orchesjob's "database
 * is locked" under load) for as long as the driver would before failing the attempt (the flow's
 * executor_unavailable_sec), retried from the follow's own pause up to the poll interval.
 */
function followerPatience(
  record: RunRecord,
  interval: number,
  context: CommandContext,
  interrupted: () => boolean,
): Patience {
  return {
    limitSec: executorUnavailableLimit(record.state.flow),
    backoff: { first: interval, factor: 2, ceiling: Math.max(interval, context.globals.pollInterval) },
    interrupted,
  };
}

/**
 * Reads a job's output in pieces of at most {@link CHUNK_BYTES} from the built-in runner, each written
 * as it comes (a file of gigabytes is not read whole first); orchesjob's `logs` prints everything at
 * each call, so with it one call reads all.
 */
class LogReader {
  /**
   * `ask`: how each executor call is made ({@link Asker}). `recorded`: the job the run recorded for
   * this attempt (null: none, or not known for an earlier attempt).
   */
  constructor(
    readonly executor: Executor,
    readonly jobKey: string,
    readonly ask: Ask,
    readonly recorded: Job | null = null,
  ) {}

  /**
   * Writes the stream from `from` to its current end; returns the offset reached. `stop`: the reader
   * is gone (stdout a closed pipe), so what is left need not be read.
   */
  async copy(stream: Stream, from: number, write: Writer, stop = () => false): Promise<number> {
    let offset = from;
    for (;;) {
      const bytes = await this.read(stream, offset);
      if (bytes.length > 0) write(bytes);
      offset += bytes.length;
      if (this.whole || bytes.length < CHUNK_BYTES || stop()) return offset;
    }
  }

  /** Writes the last `lines` lines of the stream as it is now; returns the offset reached. */
  async tail(stream: Stream, lines: number, write: Writer): Promise<number> {
    // The last lines of a longer text lie in its last pieces: a piece is let go once the pieces after
    // it hold more than `lines` newlines (so a text of one long line keeps all of it, once).
    const pieces: { bytes: Uint8Array; newlines: number }[] = [];
    let newlines = 0;
    const offset = await this.copy(stream, 0, (bytes) => {
      const count = newlinesIn(bytes);
      pieces.push({ bytes, newlines: count });
      newlines += count;
      while (pieces.length > 1 && newlines - pieces[0].newlines > lines) newlines -= pieces.shift()!.newlines;
    });
    const kept = concatBytes(pieces.map((piece) => piece.bytes));
    const from = tailStart(kept, lines);
    if (kept.length > from) write(kept.subarray(from));
    return offset;
  }

  private get whole(): boolean {
    return this.executor.kind !== "builtin";
  }

  private async read(stream: Stream, from: number): Promise<Uint8Array> {
    const range = this.whole ? { from } : { from, max: CHUNK_BYTES };
    const bytes = await this.ask(() => this.executor.logs({ runKey: this.jobKey }, stream, range));
    if (bytes !== null) return bytes;
    // No output file: fine while the job is starting; an error once it has ended (removed by hand?).
    // A job aborted before its command started (or whose supervisor died first) never had files.
    const job = await this.ask(() => this.executor.status(this.jobKey));
    // The run saw this attempt's job, and the executor no longer knows it: it was cleaned (`job clean`
    // or orchesjob's own clean), and its output with it. Printing nothing would look like a step that
    // wrote nothing.
    if (job === null && this.recorded !== null) {
      throw new UserError(
        `cannot read the ${stream} of job ${this.recorded.job_id} (run key ${this.jobKey}): the executor no ` +
          "longer knows the job (it was cleaned), and its output went with it",
        1,
      );
    }
    const hadFiles = job !== null && !isActiveJob(job.status) && (job.target_pid !== null || job.exit_code !== null);
    if (!hadFiles) return new Uint8Array();
    throw new UserError(`cannot read the ${stream} of job ${job.job_id} (run key ${this.jobKey}): its file is gone`, 1);
  }
}

type Writer = (bytes: Uint8Array) => void;
type Ask = <T>(call: () => Promise<T>) => Promise<T>;

/** How many newlines `bytes` holds (indexOf scans natively: a byte loop in JS took seconds per 300 MB). */
function newlinesIn(bytes: Uint8Array): number {
  let count = 0;
  for (let at = bytes.indexOf(0x0a); at !== -1; at = bytes.indexOf(0x0a, at + 1)) count++;
  return count;
}

/** Whether the run is stored and has not ended, as read now. */
function runGoesOn(session: Session, runKey: string): boolean {
  const status = session.runs.runStatus(runKey);
  return status !== undefined && !isTerminalRun(status);
}

/** How much of a job's output is read at once. */
const CHUNK_BYTES = 4 << 20;

/**
 * `--follow` of a step that has not started: waits until it has (its run and attempt), or returns the
 * exit code when the wait is interrupted; a run that ends first is exit 3, as for a step not started.
 */
async function startOf(
  session: Session,
  runKey: string,
  stepId: string,
  interval: number,
  interrupted: () => boolean,
): Promise<{ record: RunRecord; attempt: number } | number> {
  let warned = false;
  for (;;) {
    const record = session.run(runKey);
    const step = stepOf(record, stepId);
    if (step.attemptNo > 0) return { record, attempt: step.attemptNo };
    // The run ended without it, or it ended unstarted (SKIPPED) while the run goes on: what `logs` says
    // of a step that has not started, not a follow that printed nothing and exit 0 (which a script
    // takes for an attempt that succeeded) once the run ended, however long that took.
    if (isTerminalRun(record.state.status)) {
      throw new UserError(
        `step ${stepId} has not started, and will not: run ${runKey} ended ${record.state.status} ` +
          `(step ${stepId} is ${step.status})`,
        ExitCode.notFound,
      );
    }
    if (isTerminalStep(step.status)) {
      throw new UserError(
        `step ${stepId} has not started, and will not: it is ${step.status} (run ${runKey} is ${record.state.status})`,
        ExitCode.notFound,
      );
    }
    stopPoint("follow:run-read");
    if (!warned && !await driverHolder(session.dbPath, runKey) && runGoesOn(session, runKey)) {
      // Nothing will start it until someone drives the run: said once, as `watch` does. Unless the driver
      // ended the run and let go of its lock since the run was read: the next look says how it ended.
      printWarning(`Driver: none; step ${stepId} starts once the run is resumed: ${session.resumeHint(runKey)}`);
      warned = true;
    }
    await sleepUnless(interval, interrupted);
    if (interrupted()) return ExitCode.interrupted;
  }
}

/** The attempt is over: its job ended, or it never got a job and the run is over. */
function ended(job: Job | null, runStatus: string | undefined): boolean {
  if (job) return !isActiveJob(job.status);
  return runStatus === undefined || isTerminalRun(runStatus as never);
}

/** How long a follower goes on asking an executor whose calls fail, and how it paces the retries. */
type Patience = { limitSec: number; backoff: Backoff; interrupted: () => boolean };

/**
 * Makes the executor calls. A failure is the operator's to see, as one JSON line with exit 1. A
 * follower (with `patience`) first rides out the failures that pass (a non-zero exit such as
 * orchesjob's "database is locked", an unreadable answer, a call past its limit, a death by a
 * signal): it says so once per streak of failures, as one JSON warning, and tries the call again
 * with backoff; only a streak that lasts `limitSec` ends it with exit 1. A missing binary or an
 * unreadable file does not pass by waiting, and an interrupt ends it at once (130).
 */
class Asker {
  /**
   * The current streak of failed calls, counted as a step's executor_error is (in performance.now()
   * seconds), and its last pause.
   */
  private streak: { fault: ExecutorFault; pause: number } | null = null;

  constructor(private readonly patience: Patience | null) {}

  async ask<T>(call: () => Promise<T>): Promise<T> {
    for (;;) {
      try {
        const result = await call();
        this.streak = null;
        return result;
      } catch (error) {
        if (!(error instanceof ExecutorError)) throw error;
        // A call killed by an interrupt is the interrupt's exit, not a failure of the executor.
        if (error.kind === "stopped") throw new UserError(`interrupted: ${error.message}`, ExitCode.interrupted);
        // An output file this process may not read says so itself ("cannot read F: permission denied").
        if (error.kind === "unreadable") throw new UserError(error.message, 1);
        if (this.patience === null || error.kind === "missing") {
          throw new UserError(`cannot read the job: ${error.message}`, 1);
        }
        await this.wait(this.patience, error);
      }
    }
  }

  /** Counts a failed call of a follower, and waits before the next one; throws once the streak lasted too long. */
  private async wait({ limitSec, backoff, interrupted }: Patience, error: ExecutorError): Promise<void> {
    const now = performance.now() / 1000;
    const fault = addFailedCall(this.streak?.fault ?? null, error, now);
    const streak = this.streak = { fault, pause: nextPause(backoff, this.streak?.pause) };
    const failingSec = now - fault.firstAt;
    if (failingSec >= limitSec) {
      const calls = fault.count === 1 ? "1 failed call" : `${fault.count} failed calls`;
      throw new UserError(
        `cannot read the job: orchesjob unusable for ${Math.round(failingSec)} s (${calls}; limit ${limitSec} s): ` +
          error.message,
        1,
      );
    }
    if (fault.count === 1) {
      printWarning(`cannot read the job, retrying: ${error.message}`, { retry_for_sec: limitSec });
    }
    await sleepUnless(Math.min(streak.pause, limitSec - failingSec), interrupted);
    if (interrupted()) throw new UserError(`interrupted while retrying: ${error.message}`, ExitCode.interrupted);
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
