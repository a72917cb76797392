/** `start`: create or resume a run, then drive it in the foreground or in a detached child. */
import { type FlowDefinition, isTerminalRun, type RunRecord } from "../../domain/mod.ts";
import { createRun, loadRun } from "../../engine/mod.ts";
import {
  CLOSE_INHERITED_FDS,
  epochNow,
  join,
  makeDirectory,
  parseTimeArgument,
  pathExists,
  readEnv,
  releaseGarbage,
  resolve,
  runQueueWaitMs,
  sleep,
  spawnDetachedChild,
  stopPoint,
} from "../../shared/mod.ts";
import { ExitCode, runExitCode, UserError } from "../errors.ts";
import { checkExecutorOptions, checkUsable, chooseExecutor } from "../../executor/mod.ts";
import { definitionHash } from "../../flow/mod.ts";
import {
  type DriverHolder,
  driverHolder,
  driverStateFile,
  lockFilePath,
  resolveDbPath,
  safeFileName,
  stateFileIdentity,
  stateHome,
} from "../../store/mod.ts";
import type { Command, GlobalOptions } from "../command.ts";
import { bindFlowFile, givenParams, PARAM_OPTION, readFlowFile, STDIN_NAME, workingDirectory } from "../flow_file.ts";
import { type Interrupt, listenForInterrupt } from "../interrupt.ts";
import { liveTable } from "../live_table.ts";
import { printJson } from "../output.ts";
import { runJson } from "../render/mod.ts";
import { selfCommand } from "../self.ts";
import { DETACH_OPTION, QUIET_OPTION, RUN_KEY_OPTION, runKeyOf, Session } from "../session.ts";
import { exitCodeOf, settledRun, waitUntilFinished, warnHalfCancelled } from "../follow.ts";

export const startCommand: Command = {
  spec: {
    name: "start",
    summary: "Start or resume a flow run: in the foreground until it ends, or detached (-d) in the background.",
    usage: "start --run-key KEY [-d|--detach] [-q|--quiet] [--param NAME=VALUE]... [--not-before TIME] FLOW_FILE",
    options: [
      RUN_KEY_OPTION,
      DETACH_OPTION,
      QUIET_OPTION,
      PARAM_OPTION,
      {
        name: "not-before",
        value: "string",
        metavar: "TIME",
        help: "Create the run SCHEDULED; it begins no earlier than TIME (ISO 8601, +DURATION such as +15m, or epoch).",
      },
    ],
    positionals: ["FLOW_FILE"],
    notes: "FLOW_FILE - reads the flow from standard input.\n" +
      "Exit codes: 0 SUCCEEDED, 1 FAILED, 4 CANCELLED, 2 usage/validation error, 130 interrupted.\n" +
      "With -d: 0 once the background driver holds the run (or another process already drives it); the\n" +
      "driver's own exit code if it failed at once; 75 if it neither took the run nor exited within 15 s.",
  },
  async run(context, args) {
    const runKey = runKeyOf(context, args);
    const detach = args.options.detach === true;
    // In the foreground, listening before anything is read or opened: a signal while the state file is
    // opened, or its write lock is waited for, is an interrupt (130), not the signal's default death.
    using interrupt = detach ? null : listenForInterrupt();
    // Before anything is read or opened: the two options contradict each other whether the run is new or not.
    checkExecutorOptions(context.globals.executor, context.globals.orchesjobBin);
    const file = args.positionals[0];
    let loaded: FlowDefinition | null = await readFlowFile(file);
    const given = givenParams(args);
    const now = epochNow();
    const notBefore = notBeforeOption(args.options["not-before"] as string | undefined, now);
    refuseUnbindable(context.globals, file, loaded, given);
    // A second foreground start of a run that another process drives follows it like `wait`: under a
    // held write lock it waits for the lock, as long as that lasts, rather than fail after the busy timeout.
    using session = await Session.open(context, {}, interrupt);
    await refuseForeignDriver(session, runKey);
    // A write lock taken since the file was opened is waited out before the run is created, in short
    // tries in which a signal is heard (130, nothing stored).
    // Let go of once the run is created: the flow as loaded is not what the driver uses (createRun keeps
    // the stored definition), and a closure holding it would keep it for the whole run.
    let creating: StartInput | null = { runKey, file, loaded, given, notBefore, now };
    loaded = null;
    const record = await session.writing(
      () => createOrFind(session, context.globals, creating!),
      {
        stop: () => interrupt?.requested() ?? false,
        interrupted: session.interruptedInLockWait("nothing was stored"),
      },
    );
    creating = null;
    return await continueRun(session, record, {
      detach,
      table: args.options.quiet !== true,
      pollInterval: context.globals.pollInterval,
      interrupt,
    });
  },
};

/**
 * The flow bound to this run (parameters, directories) and the run created with it, or the existing
 * run, which must be bound to the same definition. A resumed start needs no --param again: without
 * any, the run's stored values are used.
 */
interface StartInput {
  runKey: string;
  file: string;
  loaded: FlowDefinition;
  given: Record<string, string>;
  notBefore: number | null;
  now: number;
}

function createOrFind(session: Session, globals: GlobalOptions, start: StartInput): RunRecord {
  const { runKey, file, given } = start;
  const existing = loadRun(session.runs, runKey);
  const stored = Object.keys(given).length === 0 ? existing?.state.flow.paramValues : undefined;
  const flow = bindFlowFile(start.loaded, file, stored ?? given);
  const hash = definitionHash(flow);
  // Reading a large file and hashing its flow left garbage: collected, its pages given back, before the
  // run is created on top of it (a 10k-step flow's start peaked 95 MiB here, then 76).
  releaseGarbage();
  const record = existing ?? createRun(session.runs, {
    runKey,
    flow,
    definitionHash: hash,
    flowFile: file === "-" ? STDIN_NAME : resolve(file),
    executor: newRunExecutor(globals),
    // Kept with the run so that every step runs here, with this environment, whoever resumes it.
    launch: { cwd: workingDirectory(), env: Deno.env.toObject() },
    notBefore: start.notBefore,
  }, start.now);
  if (record.definitionHash !== hash) {
    throw new UserError(
      `run ${runKey} is bound to another definition: stored ${record.definitionHash}, ${file} is ${hash}; ` +
        "a run never continues from an edited file (use a new run key)",
    );
  }
  return existing ? session.rebind(record) : record;
}

/**
 * Refuses to create a run whose key's driver lock a driver of another state file holds. Lock files and
 * a detached driver's logs are named by run key in the state file's directory, which every state file
 * there shares (`--db /tmp/a.db` and `--db /tmp/b.db`): created, the run would be reported as driven by
 * the other file's driver, and `start -d` would launch nothing. A driver notes its state file in the
 * lock file (Linux; see noteHolder in locks.ts); a holder without that note is taken to be of this file.
 */
async function refuseForeignDriver(session: Session, runKey: string): Promise<void> {
  // The lock file's note first, then the run's status alone: loading the whole run (every step of it)
  // here read a run that start resumes twice, createOrFind reading it again.
  if (!drivenFromAnotherFile(session, runKey) || session.runs.runStatus(runKey) !== undefined) return;
  throw await foreignDriverError(session, runKey, "nothing was stored");
}

/** Whether the holder of the run key's driver lock noted another state file than the session's (see noteHolder). */
function drivenFromAnotherFile(session: Session, runKey: string): boolean {
  const theirs = driverStateFile(session.dbPath, runKey);
  const own = stateFileIdentity(session.dbPath);
  return theirs !== null && own !== null && (theirs.dev !== own.dev || theirs.ino !== own.ino);
}

/** The refusal of a run key whose driver lock a driver of another state file holds; `outcome`: what became of this run. */
async function foreignDriverError(session: Session, runKey: string, outcome: string): Promise<UserError> {
  const holder = await driverHolder(session.dbPath, runKey);
  return new UserError(
    `run key ${runKey} is in use in ${stateHome(session.dbPath)} by another state file: ` +
      `${holder?.pid ? `process ${holder.pid}` : "a process"} drives its run there, holding the driver lock ` +
      `${lockFilePath(session.dbPath, runKey, "driver")} (state files in one directory share their lock files ` +
      "and detached logs by run key); use another run key, or give each state file a directory of its own; " +
      outcome,
  );
}

/**
 * Parameters that cannot bind are refused before the state file is opened, so a mistyped `--param`
 * leaves no state file (or directory) behind. Without any `--param`, an existing run may supply its
 * stored values, so the binding is left to {@link createOrFind} unless there is no state file yet.
 */
function refuseUnbindable(globals: GlobalOptions, file: string, loaded: FlowDefinition, given: Record<string, string>) {
  if (Object.keys(given).length > 0 || !pathExists(resolveDbPath(globals.db, (name) => Deno.env.get(name)))) {
    bindFlowFile(loaded, file, given);
  }
}

/** `--not-before`, checked before anything is stored; it applies when the run is created. */
function notBeforeOption(text: string | undefined, now: number): number | null {
  if (text === undefined) return null;
  const at = parseTimeArgument(text, now);
  if (at === null) {
    throw new UserError(
      `--not-before needs an ISO 8601 time (2026-11-23T02:00:00+01:00), +DURATION (+90s, +15m, +1h30m) ` +
        `or epoch seconds, got ${JSON.stringify(text)}`,
    );
  }
  if (typeof at !== "number") throw new UserError(`--not-before ${JSON.stringify(text)} ${at.problem}`);
  return at;
}

/**
 * What `start` and `resume` do with a stored run: print a finished one and exit with its code, or
 * drive it here, or launch a background driver and report truthfully whether it took the run.
 */
export async function continueRun(
  session: Session,
  record: RunRecord,
  options: { detach: boolean; table: boolean; pollInterval: number; interrupt: Interrupt | null },
): Promise<number> {
  if (isTerminalRun(record.state.status)) {
    // A run being cancelled is printed once the cancel has recorded its steps (see settledRun).
    using listening = options.interrupt ? null : listenForInterrupt();
    const interrupt = options.interrupt ?? listening!;
    const final = await settledRun(session, record, interrupt.requested);
    warnHalfCancelled(final, session.givenDb);
    // `-d` says, as for a run that ends while it waits for the launch gate, that it launched nothing:
    // a caller that reads `detached` finds it whatever the run's state.
    printJson(options.detach ? { ...runJson(final.record), detached: false, driver: null } : runJson(final.record));
    return exitCodeOf(final);
  }
  if (options.detach) return await detachConfirmed(session, record.state.runKey, options.pollInterval);
  return await driveInForeground(session, record, options.pollInterval, options.table, options.interrupt!);
}

/** How long `start -d` waits for its background driver to take the run (or to exit). */
const LAUNCH_WAIT_SECONDS = 15;

/** The wait; tests shorten it (ORCHESJOB_FLOW_TEST_LAUNCH_WAIT_SECONDS) rather than sit through 15 s. */
function launchWaitSeconds(): number {
  const raw = readEnv("ORCHESJOB_FLOW_TEST_LAUNCH_WAIT_SECONDS");
  const seconds = Number(raw);
  return raw && Number.isFinite(seconds) && seconds > 0 ? seconds : LAUNCH_WAIT_SECONDS;
}

/**
 * Launches a background driver and waits until it holds the run's driver lock (`detached: true`) or
 * has exited (`detached: false`, with its error and exit code if it failed). Concurrent `start -d`
 * of one run take turns under the launch gate, so exactly one of them launches the driver that
 * takes the run; the others find it driven and say so. `held`: the run's driver lock, which the
 * caller (`retry -d`) holds; let go once the driver is launched, for it to take.
 */
export async function detachConfirmed(
  session: Session,
  runKey: string,
  pollInterval: number,
  held: Disposable | null = null,
): Promise<number> {
  let holding = held;
  const letGo = () => {
    holding?.[Symbol.dispose]();
    holding = null;
  };
  try {
    return await launchUnderGate(session, runKey, pollInterval, held !== null, letGo);
  } finally {
    letGo();
  }
}

/** Looks at the run's driver lock after the first: a holder must still hold it after each pause. */
const HOLDER_LOOKS = 3;
const HOLDER_LOOK_PAUSE_SECONDS = 0.05;

/**
 * The run's driver, believed only while it holds the lock look after look over ~0.15 s. A process
 * that takes the lock for an instant (the try-lock probe of `status` or `list` outside Linux, a
 * `retry` or `clean` reading the run) is no driver: taken for one, it made `start -d` or `resume -d`
 * launch none, and the run stayed undriven. A real driver holds the lock for as long as it drives.
 */
async function lastingHolder(dbPath: string, runKey: string): Promise<DriverHolder | null> {
  let holder = await driverHolder(dbPath, runKey);
  if (holder !== null) stopPoint("launch:holder-seen");
  for (let look = 0; holder !== null && look < HOLDER_LOOKS; look++) {
    await sleep(HOLDER_LOOK_PAUSE_SECONDS);
    holder = await driverHolder(dbPath, runKey);
  }
  return holder;
}

/** {@link detachConfirmed} under the launch gate; `letGo` lets go of the caller's driver lock, if it holds one. */
function launchUnderGate(
  session: Session,
  runKey: string,
  pollInterval: number,
  holdsLock: boolean,
  letGo: () => void,
): Promise<number> {
  return session.locks.withLaunchGate(runKey, async () => {
    stopPoint("launch:gate-taken");
    const holder = holdsLock ? null : await lastingHolder(session.dbPath, runKey);
    // A driver of another state file (one that created the run key at the same time, after this start's
    // refuseForeignDriver): it drives its own run, and nothing can drive this one while it holds the lock.
    if (holder !== null && drivenFromAnotherFile(session, runKey)) {
      throw await foreignDriverError(
        session,
        runKey,
        `this state file's run ${runKey} cannot be driven until that driver lets go (then resume it with ` +
          `'orchesjob-flow resume -d --run-key ${runKey}', or cancel it)`,
      );
    }
    const now = session.run(runKey);
    if (holder !== null || isTerminalRun(now.state.status)) {
      printJson({ ...runJson(now), detached: false, driver: holder });
      return isTerminalRun(now.state.status) ? runExitCode(now.state.status) : ExitCode.ok;
    }
    const launched = launchDriver(session.dbPath, runKey, pollInterval);
    // Let go only now: the driver waits for the lock, while a process that took it in a gap between
    // the reopening and this launch (a second retry that reads the run, refuses it and leaves) was
    // taken for the run's driver, no driver was launched, and the reopened run stayed undriven.
    letGo();
    const outcome = await confirmLaunch(session.dbPath, runKey, launched);
    const shown = launched.report;
    const state = runJson(session.run(runKey));
    if (outcome.kind === "driving") {
      printJson({ ...state, detached: true, ...shown });
      return ExitCode.ok;
    }
    if (outcome.kind === "elsewhere") {
      printJson({ ...state, detached: false, driver: await driverHolder(session.dbPath, runKey), ...shown });
      return ExitCode.ok;
    }
    printJson({ ...state, detached: false, ...shown, exit_code: outcome.code, error: outcome.error });
    return outcome.kind === "failed" ? (outcome.code || ExitCode.internal) : ExitCode.notConfirmed;
  });
}

type LaunchOutcome =
  | { kind: "driving" }
  /** Another process drives the run (the child found the driver lock taken). */
  | { kind: "elsewhere" }
  | { kind: "failed"; code: number; error: string }
  | { kind: "unconfirmed"; code: null; error: string };

async function confirmLaunch(
  dbPath: string,
  runKey: string,
  launched: ReturnType<typeof launchDriver>,
): Promise<LaunchOutcome> {
  let exit: number | null = null;
  let signal: Deno.Signal | null = null;
  // A driver killed by a signal it cannot catch (SIGKILL: an OOM kill, an operator's kill -9) has no
  // code of its own; Deno's 128+N (137) is no exit code of this program: it counts as interrupted.
  launched.status.then((status) => {
    signal = status.signal;
    exit = signal === null ? status.code : ExitCode.interrupted;
  }, () => exit = -1);
  const waitSeconds = launchWaitSeconds();
  const clock = driverClock(launched.report.pid, waitSeconds * 1000);
  for (;;) {
    // One look after the deadline too: this process may have been stopped (SIGSTOP, a paused VM, a
    // loaded host) past it while the driver took the run.
    const late = clock.late();
    const holder = await driverHolder(dbPath, runKey);
    // Without /proc/locks the holder's PID is unknown; under the launch gate it is most likely ours.
    if (holder !== null && (holder.pid === launched.report.pid || (holder.pid === null && exit === null))) {
      return { kind: "driving" };
    }
    if (exit !== null) {
      // The driver exits with the run's code (0, 1, 4) once it drove it to the end; 75 means another
      // process holds the run. 130 (a signal) is a driver gone before it was seen holding the run:
      // stopped in its wait for the driver lock, or as it began; either way nothing drives the run.
      const code: number = exit;
      if ([ExitCode.ok, ExitCode.flowFailed, ExitCode.cancelled].includes(code as never)) return { kind: "driving" };
      if (code === ExitCode.notConfirmed) return { kind: "elsewhere" };
      if (signal !== null) {
        return {
          kind: "failed",
          code,
          error: `the background driver was killed by ${signal} before it was seen holding the run; nothing drives it`,
        };
      }
      return { kind: "failed", code, error: lastError(launched.report.stderr_log, launched.stderrOffset, code) };
    }
    if (late) break;
    await sleep(0.05);
  }
  return {
    kind: "unconfirmed",
    code: null,
    error: `the background driver (pid ${launched.report.pid}) neither took the run nor exited within ` +
      `${waitSeconds} s; see ${launched.report.stderr_log}`,
  };
}

/** At most this many times the launch wait passes on the wall clock, however starved the driver. */
const STARVED_WAIT_FACTOR = 20;

/**
 * The launch wait's clock: wall time less the time the driver's threads spent waiting for a CPU (on
 * Linux; elsewhere wall time), up to {@link STARVED_WAIT_FACTOR} times the wait. On a host where a cron
 * storm starts a hundred Deno processes at once, a sound driver waited over 15 s of wall time for the
 * CPU to load its modules, and `start -d` exited 75 while its driver then took the run (`deno task
 * storm`). A driver that is stuck (stopped, waiting for a lock) waits for no CPU: its wait passes as before.
 */
function driverClock(pid: number, waitMs: number): { late(): boolean } {
  const started = performance.now();
  // The sum drops when a thread ends: keep the most seen.
  let starved = 0;
  return {
    late() {
      const wall = performance.now() - started;
      if (wall >= waitMs * STARVED_WAIT_FACTOR) return true;
      starved = Math.max(starved, runQueueWaitMs(pid) ?? 0);
      return wall - Math.min(wall, starved) >= waitMs;
    },
  };
}

/** The last error line the background driver wrote to its stderr log after `offset`. */
function lastError(path: string, offset: number, code: number): string {
  let text = "";
  try {
    text = new TextDecoder().decode(Deno.readFileSync(path).subarray(offset));
  } catch { /* no log */ }
  const line = text.trim().split("\n").at(-1) ?? "";
  let message = line;
  try {
    message = JSON.parse(line).error ?? line;
  } catch { /* not JSON */ }
  return message ? `the background driver exited ${code}: ${message}` : `the background driver exited ${code}`;
}

/**
 * Drives the run here until it ends (or an interrupt), with the live table on a terminal's stderr;
 * while another process drives it, waits like `watch`, taking over if that driver goes away unfinished.
 */
async function driveInForeground(
  session: Session,
  record: RunRecord,
  pollInterval: number,
  table: boolean,
  interrupt: Interrupt,
): Promise<number> {
  const runKey = record.state.runKey;
  // Made before the driver lock is taken, so a driver that cannot be made (a bad setting) fails without
  // ever holding the run: `start -d` then reports it failed, never that it drives.
  const driver = session.driver(record, interrupt.requested);
  using live = liveTable(session, runKey, table);
  for (;;) {
    {
      using lock = await session.locks.tryDriverLock(runKey);
      if (lock) {
        // Read again once held: until then the run could end (a cancel) and be deleted (a clean), and a
        // driver of a run that is gone failed with an internal error (70). Held, nothing deletes it.
        session.runAgain(runKey);
        await driver.drive();
        // A cancel ends the drive at its commit: its aborts are seen to their end before the final JSON.
        const final = await settledRun(session, session.run(runKey), interrupt.requested);
        live.stop();
        printJson(runJson(final.record));
        return exitCodeOf(final);
      }
    }
    const seen = await waitUntilFinished(session, runKey, pollInterval, interrupt.requested, { rounds: 1 });
    const status = seen.state.status;
    if (interrupt.requested() || isTerminalRun(status)) {
      const final = await settledRun(session, seen, interrupt.requested);
      live.stop();
      printJson(runJson(final.record));
      return interrupt.requested() ? ExitCode.interrupted : exitCodeOf(final);
    }
  }
}

/**
 * The executor a new run is bound to, refused (exit 2) before the run exists when it cannot be used:
 * a run key is never spent on a run whose every step fails for want of orchesjob.
 */
function newRunExecutor(globals: GlobalOptions) {
  const env = (name: string) => Deno.env.get(name);
  const spec = chooseExecutor(globals.executor, globals.orchesjobBin, env);
  checkUsable(spec, env);
  return spec;
}

/** Log files of a detached driver, named after the run key made safe for a file name. */
export function detachedLogs(dbPath: string, runKey: string) {
  const dir = join(stateHome(dbPath), "logs");
  const base = join(dir, `orchesjob-flow-${safeFileName(runKey)}`);
  return { dir, stdout: `${base}.stdout.log`, stderr: `${base}.stderr.log` };
}

/**
 * Starts `orchesjob-flow _drive` in a new session (it outlives the SSH session or terminal that ran
 * `start -d`), stdin from /dev/null, output appended to the run's log files, and no other descriptor
 * of the caller's. A shell does the redirection and then `exec`s, so the PID reported is the driver's
 * own. Returns, besides the report, what confirming the launch needs: how the child ends, and where
 * its new stderr starts.
 */
function launchDriver(dbPath: string, runKey: string, pollInterval: number) {
  const logs = detachedLogs(dbPath, runKey);
  makeDirectory(logs.dir);
  let stderrOffset = 0;
  try {
    stderrOffset = Deno.statSync(logs.stderr).size;
  } catch { /* a new log */ }
  const driver = [...selfCommand(), "--db", resolve(dbPath), "--poll-interval", String(pollInterval)];
  const { pid, status } = spawnDetachedChild([
    // bash where there is one: only bash closes an inherited descriptor above 9 (CLOSE_INHERITED_FDS);
    // -p, so that no BASH_ENV or exported function of the caller's runs in it.
    ...(pathExists("/bin/bash") ? ["/bin/bash", "-p"] : ["/bin/sh"]),
    "-c",
    // A log that cannot be opened fails the exec, and the wrapper exits 127. Never 1, which a driver that
    // took the run returns for a FAILED run (confirmLaunch counts it as driving). `command` keeps the
    // shell going past the failed redirection: without it sh exits 2, and bash in POSIX mode (the
    // caller's POSIXLY_CORRECT, which -p does not ignore) exits 1.
    `${CLOSE_INHERITED_FDS}\nout=$1 err=$2; shift 2; command exec "$@" < /dev/null >> "$out" 2>> "$err" || exit 127`,
    "orchesjob-flow-detach",
    logs.stdout,
    logs.stderr,
    ...driver,
    "_drive",
    "--run-key",
    runKey,
  ]);
  return { report: { pid, stdout_log: logs.stdout, stderr_log: logs.stderr }, status, stderrOffset };
}
