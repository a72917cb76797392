/** `retry`: reopen an ended run (its failures, or one step and what waits on it) and drive it again. */
import { isLiveRun, type RunRecord } from "../../domain/mod.ts";
import { abortUndelivered, reopenRun, type RetryScope, stepsToRetry } from "../../engine/mod.ts";
import { ExitCode, UserError } from "../errors.ts";
import { crashPoint, epochNow } from "../../shared/mod.ts";
import type { Command } from "../command.ts";
import { listenForInterrupt } from "../interrupt.ts";
import { liveTable } from "../live_table.ts";
import { printJson } from "../output.ts";
import { exitCodeOf, settledRun } from "../follow.ts";
import { runJson } from "../render/mod.ts";
import { DETACH_OPTION, QUIET_OPTION, RUN_KEY_OPTION, runKeyOf, Session, stepOf } from "../session.ts";
import { isCancelHeld, isDriverHeld, isLaunchHeld } from "../../store/mod.ts";
import { unusableBecause } from "../../executor/mod.ts";
import { detachConfirmed } from "./start.ts";

/** How long `retry` waits for the driver lock of an ended run (see its use). */
const RETRY_LOCK_WAIT_SECONDS = 5;

export const retryCommand: Command = {
  spec: {
    name: "retry",
    summary: "Reopen a FAILED or CANCELLED run and drive it again: failed steps get new attempts.",
    usage: "retry --run-key KEY [--step STEP [--downstream]] [-d|--detach] [-q|--quiet]",
    options: [
      RUN_KEY_OPTION,
      {
        name: "step",
        value: "string",
        metavar: "STEP",
        help: "Reopen only this step (any ended step, also one that SUCCEEDED).",
      },
      { name: "downstream", help: "With --step: also every step that waits on it, directly or not." },
      DETACH_OPTION,
      QUIET_OPTION,
    ],
    notes: [
      "By default FAILED and CANCELLED steps, and the steps SKIPPED because of them, return to PENDING.",
      "Attempt numbers go on (:3 after :2), so no orchesjob run key is used twice, and each step's",
      "retries apply afresh. The retry is recorded in the run's rounds (time, steps, $USER). The run",
      "keeps its stored definition and executor; a run that SUCCEEDED can be retried only with --step.",
      "Exit codes as for start: 0 SUCCEEDED, 1 FAILED, 4 CANCELLED, 2 usage or a run that cannot be",
      "retried now, 3 unknown run key, 130 interrupted; with -d, as for start -d.",
    ].join("\n"),
  },
  async run(context, args) {
    const runKey = runKeyOf(context, args);
    const stepId = args.options.step as string | undefined;
    const downstream = args.options.downstream === true;
    if (downstream && stepId === undefined) throw new UserError("--downstream needs --step");
    // Listening before the state file is opened (see start); once opened, a signal also kills a call to
    // orchesjob under way, which could otherwise hold this process for up to the call limit.
    using interrupt = listenForInterrupt();
    using session = await Session.open(context, { storedRuns: true }, interrupt);
    // Refused at once, before the wait for the lock, when the run cannot be retried as it is now.
    await retryPlan(session, session.run(runKey), context.program, stepId, downstream);

    let lock: Disposable | null = await driverLock(session, runKey, interrupt.requested);
    try {
      // Read again and chosen again under the lock: the holder waited for may have been another retry
      // of the run, which ran it to its end meanwhile. The steps chosen from the first read would run
      // again steps that have SUCCEEDED since (a second `retry` of failures reran the fixed step).
      // `--orchesjob-bin` replaces the run's binary as for `resume`; whichever binary the run then has
      // must be usable, or the reopened attempts would only fail on it.
      const record = session.run(runKey);
      const steps = await retryPlan(session, record, context.program, stepId, downstream);
      requireUsable(await session.rebindWaiting(record, interrupt.requested), context.program);
      // The reopening commits before any job starts (intent before action): if this process dies
      // right after it, the run is PENDING with its steps reopened, no attempt started, and
      // `wait --advance` (or `watch --advance`, or `start` with the same file) carries it on.
      // A write lock taken since the file was opened is waited out first, in short tries in which a
      // signal is heard (130, nothing reopened).
      const round = await session.writing(
        () => reopenRun(session.runs, record.state, steps, Deno.env.get("USER") || null, epochNow()),
        {
          stop: interrupt.requested,
          interrupted: session.interruptedInLockWait(`run ${runKey} is unchanged`),
        },
      );
      if (!round) throw new UserError(`run ${runKey} changed while it was being reopened; look at it and try again`);
      crashPoint("retry:reopened");
      if (args.options.detach) {
        // As `start -d`: `detached: true` only once the background driver holds the run. The lock is
        // handed over (let go once the driver is launched), so the run is never left free in between.
        const handed = lock;
        lock = null;
        return await detachConfirmed(session, runKey, context.globals.pollInterval, handed);
      }
      using live = liveTable(session, runKey, args.options.quiet !== true);
      await session.driver(session.run(runKey), interrupt.requested).drive();
      // A cancel ends the drive at its commit: its aborts are seen to their end before the final JSON.
      const final = await settledRun(session, session.run(runKey), interrupt.requested);
      live.stop();
      printJson(runJson(final.record));
      return exitCodeOf(final);
    } finally {
      lock?.[Symbol.dispose]();
    }
  },
};

/**
 * The ended run's driver lock, or a refusal. The run has ended, so a holder is on its way out: the
 * driver of a run just cancelled lets go within a slice of its pause, a passing `tick` at once.
 * Waiting a little spares the operator a refusal for `cancel` followed at once by `retry`. A signal
 * ends the wait at once (130, nothing reopened): it went unheard for the whole wait, which then ended
 * in exit 2 (held).
 */
async function driverLock(session: Session, runKey: string, interrupted: () => boolean): Promise<Disposable> {
  const lock = await session.locks.waitForDriverLock(runKey, RETRY_LOCK_WAIT_SECONDS, interrupted);
  if (interrupted()) {
    lock?.[Symbol.dispose]();
    throw new UserError(
      `interrupted while waiting for run ${runKey}'s driver lock; run ${runKey} is unchanged`,
      ExitCode.interrupted,
    );
  }
  if (!lock) throw new UserError(`run ${runKey} is held by another process; try again when it has let go`);
  return lock;
}

/** The steps to reopen in `record`, or a refusal: the run's (see {@link refuseUnretryable}), or none to retry. */
async function retryPlan(
  session: Session,
  record: RunRecord,
  program: string,
  stepId: string | undefined,
  downstream: boolean,
): Promise<string[]> {
  await refuseUnretryable(session, record, program, stepId);
  const scope: RetryScope = stepId === undefined
    ? { kind: "failures" }
    : { kind: "step", stepId: stepOf(record, stepId).id, downstream };
  const steps = stepsToRetry(record.state, scope);
  if (steps.length === 0) throw new UserError(`run ${record.state.runKey} has no FAILED or CANCELLED step to retry`);
  return steps;
}

/** Refuses a run that cannot be retried now: live, SUCCEEDED without --step, or with a step still RUNNING. */
async function refuseUnretryable(session: Session, record: RunRecord, program: string, stepId: string | undefined) {
  const runKey = record.state.runKey;
  const status = record.state.status;
  // A driver being launched (start -d, resume -d, retry -d) holds the launch gate, not yet the driver lock.
  const whoDrives = async () =>
    await isDriverHeld(session.dbPath, runKey)
      ? ""
      : isLaunchHeld(session.dbPath, runKey)
      ? `; its driver is being launched: follow it with '${program} wait --run-key ${runKey}'`
      : `; nobody drives it: carry it on with '${program} wait --run-key ${runKey} --advance'`;
  if (isLiveRun(status)) {
    throw new UserError(`run ${runKey} is ${status}: only a run that has ended can be retried${await whoDrives()}`);
  }
  if (status === "SUCCEEDED" && stepId === undefined) {
    throw new UserError(`run ${runKey} SUCCEEDED: name the step to run again with --step`);
  }
  const stillRunning = record.state.steps.find((step) => step.status === "RUNNING");
  if (stillRunning) {
    // A cancel in its grace holds the step so until the SIGKILL: "cancel the run first" had it cancel
    // a run whose cancel was under way.
    const why = isCancelHeld(session.dbPath, runKey)
      ? "its cancel is still aborting it (SIGKILL at the end of the grace); retry once the cancel has ended"
      : "cancel the run first";
    throw new UserError(`run ${runKey}: step ${stillRunning.id} is still RUNNING (its job may be alive); ${why}`);
  }
  // A cancel that could not deliver its abort left the job perhaps running: a retry would run the step
  // beside it. Cancelling again tries that abort again.
  const unreached = record.state.steps.find(abortUndelivered);
  if (unreached) {
    throw new UserError(
      `run ${runKey}: step ${unreached.id}'s job may still be running (its cancel could not abort it); ` +
        `cancel the run again first`,
    );
  }
}

/** Refuses (exit 2) a run whose orchesjob binary cannot be run, saying how to give another one. */
function requireUsable(record: RunRecord, program: string): void {
  const runEnv = record.state.launch?.env;
  const problem = unusableBecause(record.executor, (name) => runEnv === undefined ? Deno.env.get(name) : runEnv[name]);
  if (problem === null) return;
  const runKey = record.state.runKey;
  throw new UserError(
    `run ${runKey}'s orchesjob ${record.executor.bin} cannot be run (${problem}): ` +
      `give another with '${program} --orchesjob-bin PATH retry --run-key ${runKey}'`,
  );
}
