/**
 * `orchesjob-flow job …`: the built-in runner's own CLI, compatible with orchesjob 1.1 in flags, JSON
 * fields and exit codes, so `exec orchesjob-flow job "$@"` can stand in for `orchesjob`.
 */
import { JobExit } from "../../domain/mod.ts";
import { type CleanSelectable, JobAdmin, type JobRef, type JobRow } from "../../executor/mod.ts";
import { changesMade, jobsDirectory, RunStore } from "../../store/mod.ts";
import { LONGEST_DURATION_SEC, parsePythonIsoTime } from "../../shared/mod.ts";
import { LIMITS } from "../../flow/mod.ts";
import { ExitCode, UserError } from "../errors.ts";
import { A_DAY_SEC, type CommandSpec, formatHelp, parseArgs, type ParsedArgs, secondsOption } from "../args.ts";
import type { Command, CommandContext } from "../command.ts";
import { type Interrupt, listenForInterrupt } from "../interrupt.ts";
import { Session, type SessionOptions, writeWaiting } from "../session.ts";
import { GLOBALS_AFTER_COMMAND } from "../globals.ts";
import { printError, printJson, writeBytes, writeStdout } from "../output.ts";
import { VERSION } from "../version.ts";

// `job` answers as orchesjob does, so its values are passed on as given, empty ones too.
const runKey = { name: "run-key", value: "string", metavar: "KEY", help: "Run key.", allowEmpty: true } as const;
const jobId = { name: "job-id", value: "string", metavar: "ID", help: "Job id.", allowEmpty: true } as const;
const startTimeout = {
  name: "start-timeout",
  value: "number",
  metavar: "SECS",
  help: "Seconds an async start waits for the command to be running (default 10).",
} as const;
const sync = { name: "sync", help: "Wait until the job has finished." } as const;

const SUBCOMMANDS: Record<string, CommandSpec> = {
  start: {
    name: "job start",
    summary: "Start a job, or return the run key's active job (with --strict: its finished job too).",
    usage: "job start --run-key KEY [--sync] [--strict] [--start-timeout SECS] [--] COMMAND [ARGS...]",
    options: [runKey, sync, { name: "strict", help: "One execution per run key, unless unlocked." }, startTimeout],
    remainder: "COMMAND",
  },
  status: {
    name: "job status",
    summary: "Print a job as JSON: the run key's current job, a job by id, every running job, or a key's history.",
    usage: "job status (--run-key KEY | --job-id ID | --running) [--all]",
    options: [runKey, jobId, { name: "running", help: "All STARTING or RUNNING jobs." }, {
      name: "all",
      help: "Every job of the run key, newest attempt first.",
    }],
  },
  logs: {
    name: "job logs",
    summary: "Print a job's stdout or stderr file.",
    usage: "job logs (--run-key KEY | --job-id ID) [--stream stdout|stderr]",
    options: [runKey, jobId, {
      name: "stream",
      value: "string",
      choices: ["stdout", "stderr"],
      help: "Which stream (default stdout).",
    }],
  },
  abort: {
    name: "job abort",
    summary: "Stop a running job: SIGTERM to its process group, SIGKILL after the grace period.",
    usage: "job abort (--run-key KEY | --job-id ID) [--reason TEXT] [--grace-seconds SECS]",
    options: [runKey, jobId, {
      name: "reason",
      value: "string",
      metavar: "TEXT",
      help: "Stored as abort_reason.",
      allowEmpty: true,
    }, {
      name: "grace-seconds",
      value: "number",
      metavar: "SECS",
      help: "Seconds between SIGTERM and SIGKILL (default 5).",
    }],
  },
  rerun: {
    name: "job rerun",
    summary: "Run a finished job's command again under its run key, whatever strict says.",
    usage: "job rerun (--run-key KEY | --job-id ID) [--sync] [--start-timeout SECS] [--reason TEXT]",
    options: [runKey, jobId, sync, startTimeout, {
      name: "reason",
      value: "string",
      metavar: "TEXT",
      help: "Stored as rerun_reason.",
      allowEmpty: true,
    }],
  },
  unlock: {
    name: "job unlock",
    summary: "Let the next `start --strict` of a finished run key run once more.",
    usage: "job unlock --run-key KEY [--reason TEXT] [--ttl DURATION]",
    options: [runKey, { name: "reason", value: "string", metavar: "TEXT", help: "Why.", allowEmpty: true }, {
      name: "ttl",
      value: "string",
      metavar: "DURATION",
      help: "Expiry: seconds, or a number with s, m, h or d.",
    }],
  },
  clean: {
    name: "job clean",
    summary: "Delete finished jobs and their log files.",
    usage: "job clean (--before DT | --after DT | --all | --job-id ID) [--run-key KEY] [--dry-run] [--force]",
    options: [
      {
        name: "before",
        value: "string",
        metavar: "DT",
        help: "Finished strictly before (ISO 8601 as Python 3.11 reads it; local if no offset).",
      },
      { name: "after", value: "string", metavar: "DT", help: "Finished at or after." },
      { name: "all", help: "Every finished job." },
      jobId,
      runKey,
      { name: "dry-run", help: "Report, change nothing." },
      {
        name: "force",
        help: "Also delete jobs of flow runs that have not finished (they are skipped otherwise: their steps " +
          "would look never started). An aborted job whose processes still run (an abort in its grace) is always kept.",
      },
    ],
  },
};

const JOB_SPEC: CommandSpec = {
  name: "job",
  summary: 'The built-in job runner, with orchesjob\'s CLI (use `exec orchesjob-flow job "$@"` as ORCHESJOB_BIN).',
  usage: "job [--version] {start|status|logs|abort|rerun|unlock|clean} ...",
  options: [{
    name: "version",
    help: "Print `orchesjob VERSION` (this program's version), as orchesjob --version does.",
  }],
  remainder: "SUBCOMMAND",
  notes: Object.values(SUBCOMMANDS).map((s) => `  ${s.usage}`).join("\n"),
};

/** `status` and `logs` only read: they read a state file this process may not write, as it is. */
const READING = new Set(["status", "logs"]);

/**
 * What may be run again from the start when a write lock taken after the state file was opened cut it
 * short after it had changed something: an abort resumes (its deadline is stored), a clean finds what
 * is left, an unlock is put again, a reader (which then reads read-only) only recorded what it found.
 * A start or a rerun only until its job is stored (before, it recorded at most what it read of jobs):
 * after, it would start the command a second time; its later writes (what the job's files show, while they wait for it to start or end) are tried
 * again at their next look instead (see BuiltinRunner.waitFor).
 */
const RERUNNABLE = new Set(["abort", "clean", "unlock", "status", "logs"]);

/**
 * The state file's session for a `job` subcommand. Another process's write lock (an admin's sqlite3
 * shell) is waited out in short tries, where `job` failed with exit 1 after the busy timeout: to open
 * the file for a subcommand that changes it, or for a reader whose file must first be migrated. The
 * readers (`status`, `logs`) do not wait: they read the file read-only then, and answer at once from
 * the jobs' files (not recorded), as they read a file this process may not write.
 */
function openSession(
  context: CommandContext,
  db: string | undefined,
  subcommand: string,
  interrupt: Interrupt,
  options: SessionOptions = READING.has(subcommand) ? { readIfReadOnly: true, readIfLocked: true } : {},
): Promise<Session> {
  return Session.open({ ...context, globals: { ...context.globals, db } }, options, interrupt);
}

export const jobCommand: Command = {
  spec: JOB_SPEC,
  async run(context, args) {
    // `orchesjob --version` answers before any subcommand, so the wrapper script passes that check too.
    if (args.options.version) {
      writeStdout(`orchesjob ${VERSION}\n`);
      return ExitCode.ok;
    }
    const [name, ...rest] = args.remainder;
    const spec = name === undefined ? undefined : SUBCOMMANDS[name];
    if (!spec) {
      // As a missing command: one JSON line on stderr and nothing on stdout, where a caller of the
      // orchesjob contract reads JSON (the help went there, before the error).
      if (name === undefined) throw new UserError(`job: missing subcommand (see ${context.program} job --help)`);
      throw new UserError(`job: unknown subcommand ${JSON.stringify(name)}`);
    }
    const parsed = parseArgs(spec, rest, GLOBALS_AFTER_COMMAND);
    if (parsed.help) {
      writeStdout(formatHelp(context.program, spec));
      return ExitCode.ok;
    }
    const db = (parsed.options.db as string | undefined) ?? context.globals.db;
    // A signal ends `job` at once, as its default action did, but with one JSON line: at an await, so
    // never inside a transaction (what was committed stays; a job stored and not yet launched is
    // launched by the next read of it). In a wait for another process's write lock nothing was stored,
    // or, for a start or rerun, only its job: the line names it, and what to do next.
    let session: Session | null = null;
    let admin: JobAdmin | null = null;
    let changes = 0;
    using interrupt = listenForInterrupt(() => {
      printInterrupted(name, admin, session !== null && changesMade(session.db) !== changes);
      Deno.exit(ExitCode.interrupted);
    });
    using opened = await openSession(context, db, name, interrupt);
    session = opened;
    changes = changesMade(opened.db);
    // A write lock taken after the file was opened is waited out too; a reader whose recording meets
    // one does not wait: it answers from a read-only look. The wait's first look comes before its first
    // try, so a reader stops at the second, after one try met the lock: the probe of the lock before
    // the work (a lock taken right after the file was opened) as well as the work's own writes. Every
    // statement waits for the lock one slice (sliced), then the try is lost and made again, so a
    // signal is heard between tries: in SQLite's wait for the busy timeout it went unheard.
    let looks = 0;
    // One JobAdmin for every try: what an earlier try began (an abort whose file it wrote and whose
    // record met the lock, a relaunch, a re-sent SIGTERM) is known to the next.
    const work = () => HANDLERS[name](admin ??= new JobAdmin(opened.db, jobsDirectory(opened.dbPath)), parsed);
    const stop = () => READING.has(name) && looks++ > 0;
    // A start or rerun whose job is not stored is made again (a rerun that had recorded its source's
    // end, as it read it, exited 1 "database is locked" after a slice of the wait, having started nothing).
    const rerunnable = () => RERUNNABLE.has(name) || (admin?.runner.admitted ?? null) === null;
    const done = await writeWaiting(opened.db, opened.dbPath, work, stop, rerunnable, true);
    if (done === null) {
      using reader = await openSession(context, db, name, interrupt, { queryOnly: true });
      await HANDLERS[name](new JobAdmin(reader.db, jobsDirectory(reader.dbPath)), parsed);
    }
    return ExitCode.ok;
  },
};

/**
 * What `job start` or `job rerun` says when a signal stops it once its job is stored: the job is
 * launched (or, had this process died first, the next read of it launches it), so it is followed,
 * not started again; a second rerun would run the command once more.
 */
function interruptedAfterJob(name: string, job: JobRow): string {
  const what = job.rerun_of_job_id !== null && name === "rerun"
    ? `job ${job.job_id}, a rerun of ${job.rerun_of_job_id},`
    : `job ${job.job_id}`;
  const again = name === "rerun"
    ? "do not rerun again, which would run the command once more"
    : `\`job start --run-key ${job.run_key}\` again returns it while it is active`;
  return `job ${name}: interrupted; ${what} of run key ${job.run_key} is stored: ` +
    `\`job status --job-id ${job.job_id}\` reports it (and launches it if it was not launched); ${again}`;
}

/**
 * The one line a `job` subcommand that a signal stops prints: the job its start or rerun stored, the abort
 * it began and did not record, or whether it `stored` anything.
 */
function printInterrupted(name: string, admin: JobAdmin | null, stored: boolean): void {
  const job = admin?.runner.admitted ?? null;
  const aborting = admin?.runner.abortUnrecorded ?? null;
  if (job !== null) {
    printError(interruptedAfterJob(name, job), { job_id: job.job_id, run_key: job.run_key });
  } else if (aborting !== null) {
    printError(interruptedAbort(aborting), { job_id: aborting.job_id, run_key: aborting.run_key });
  } else {
    printError(`job ${name}: interrupted; ${stored ? "what it stored stays stored" : "nothing was stored"}`);
  }
}

/**
 * What `job abort` says when a signal stops it once it wrote the job's abort file (its SIGKILL deadline)
 * and before its ABORTED record was committed: a supervisor not going yet finds that file and quits
 * before the command (the job then ends ABORTED, with this abort's reason, see BuiltinRunner.reconcile);
 * a command already running was not signalled (signals come after the record) and runs on.
 */
function interruptedAbort(job: JobRow): string {
  return `job abort: interrupted; the abort of job ${job.job_id} of run key ${job.run_key} is begun but not ` +
    "recorded: its SIGKILL deadline is written, so a job not yet starting its command never starts it (it then " +
    "ends ABORTED), but the job is not ABORTED in the state file and this abort sent no signal: " +
    `\`job abort --job-id ${job.job_id}\` again records the abort and stops the command`;
}

/** Each subcommand prints its answer; refusals are thrown (JobError or UserError) and mapped to codes. */
type Handler = (admin: JobAdmin, args: ParsedArgs) => Promise<void> | void;

const str = (args: ParsedArgs, name: string) => args.options[name] as string | undefined;

/** The job named by --run-key or --job-id (exactly one). */
function jobRef(args: ParsedArgs, command: string): JobRef {
  const key = str(args, "run-key");
  const id = str(args, "job-id");
  if ((key === undefined) === (id === undefined)) {
    throw new UserError(`${command}: exactly one of --run-key or --job-id is required`, JobExit.usage);
  }
  if (id !== undefined) {
    if (/[/\\]/.test(id)) throw new UserError("Invalid job_id: contains path separator", JobExit.usage);
    return { jobId: id };
  }
  if (key === "") throw new UserError("Either --run-key or --job-id is required", JobExit.usage);
  return { runKey: key! };
}

const HANDLERS: Record<string, Handler> = {
  async start(admin, args) {
    const key = str(args, "run-key");
    if (key === undefined) throw new UserError("job start: --run-key is required", JobExit.usage);
    if (args.remainder.length === 0) throw new UserError("command is required (provide it after --)", JobExit.usage);
    printJson(
      await admin.runner.run({ kind: "start", runKey: key, command: args.remainder }, {
        strict: args.options.strict === true,
        sync: args.options.sync === true,
        startTimeoutSec: startTimeoutOf(args),
      }),
    );
  },

  async status(admin, args) {
    if (args.options.running) {
      if (str(args, "run-key") !== undefined || str(args, "job-id") !== undefined) {
        throw new UserError("status: --running cannot be combined with --run-key or --job-id", JobExit.usage);
      }
      printJson(await admin.runner.running());
      return;
    }
    if (args.options.all) {
      const key = str(args, "run-key");
      if (key === undefined) throw new UserError("status --all requires --run-key", JobExit.usage);
      if (str(args, "job-id") !== undefined) throw new UserError("status --all requires --run-key", JobExit.usage);
      const jobs = admin.history(key);
      if (jobs.length === 0) throw new UserError(`No jobs found for run_key: ${key}`, JobExit.notFound);
      printJson(jobs);
      return;
    }
    printJson(admin.job(jobRef(args, "status")));
  },

  async logs(admin, args) {
    const job = admin.job(jobRef(args, "logs"));
    const stderr = str(args, "stream") === "stderr";
    const bytes = await admin.runner.logs({ jobId: job.job_id }, stderr ? "stderr" : "stdout");
    if (bytes === null) {
      throw new UserError(`Log file not found: ${stderr ? job.stderr_file : job.stdout_file}`, JobExit.notFound);
    }
    writeBytes(bytes);
  },

  async abort(admin, args) {
    const ref = jobRef(args, "abort");
    printJson(
      await admin.abort(ref, {
        graceSeconds: secondsOption(args, "grace-seconds", 5, { zero: true, max: A_DAY_SEC, unit: "a day" }),
        reason: str(args, "reason"),
      }),
    );
  },

  async rerun(admin, args) {
    const ref = jobRef(args, "rerun");
    printJson(
      await admin.rerun(ref, {
        sync: args.options.sync === true,
        startTimeoutSec: startTimeoutOf(args),
        reason: str(args, "reason"),
      }),
    );
  },

  unlock(admin, args) {
    const key = str(args, "run-key");
    if (key === undefined) throw new UserError("job unlock: --run-key is required", JobExit.usage);
    const ttl = str(args, "ttl");
    printJson(admin.unlock(key, str(args, "reason") ?? null, ttl === undefined ? null : parseTtl(ttl)));
  },

  clean(admin, args) {
    const { select, runKey } = cleanSelection(args);
    // The unfinished runs are read when `keep` is first asked, after the clean has chosen its finished
    // jobs, not before: a run a retry reopened between the two looks, and whose new attempt's job
    // ended before its driver recorded it, was taken as finished, and that job deleted under its
    // RUNNING step (which then failed as "cleaned while running", or started again). Read after, a
    // job chosen finished whose run is not live now was recorded by its step; a later reopening
    // uses new attempts, under new run keys.
    let prefixes: string[] | undefined;
    const keep = (jobRunKey: string) => {
      prefixes ??= new RunStore(admin.runner.db).unfinishedStepKeyPrefixes();
      const prefix = prefixes.find((p) => jobRunKey.startsWith(p));
      return prefix === undefined
        ? null
        : `its flow run ${
          prefix.slice(0, prefix.lastIndexOf(":", prefix.length - 2))
        } has not finished (--force deletes it)`;
    };
    printJson(admin.clean(select, runKey, args.options["dry-run"] === true, keep, args.options.force === true));
  },
};

/** `clean`'s options as a predicate over finished jobs; exactly one way of choosing is allowed. */
function cleanSelection(args: ParsedArgs): { select: (job: CleanSelectable) => boolean; runKey: string | undefined } {
  const before = str(args, "before");
  const after = str(args, "after");
  const all = args.options.all === true;
  const id = str(args, "job-id");
  const runKey = str(args, "run-key");
  if (before === undefined && after === undefined && !all && id === undefined) {
    throw new UserError("clean: one of --before, --after, --all, or --job-id is required", JobExit.usage);
  }
  if (id !== undefined && (before !== undefined || after !== undefined || all || runKey !== undefined)) {
    throw new UserError(
      "clean: --job-id cannot be combined with --before, --after, --all, or --run-key",
      JobExit.usage,
    );
  }
  if (all && (before !== undefined || after !== undefined)) {
    throw new UserError("clean: --all cannot be combined with --before or --after", JobExit.usage);
  }
  const beforeAt = before === undefined ? undefined : parseDateTime(before, "--before");
  const afterAt = after === undefined ? undefined : parseDateTime(after, "--after");
  const select = (job: CleanSelectable) => {
    if (id !== undefined) return job.job_id === id;
    const at = job.finished_at ?? job.started_at;
    return (beforeAt === undefined || at < beforeAt) && (afterAt === undefined || at >= afterAt);
  };
  return { select, runKey };
}

/** `--start-timeout`: 0 (do not wait), or 0.01 s to a year, the longest `start_timeout_sec` of a flow. */
function startTimeoutOf(args: ParsedArgs): number {
  return secondsOption(args, "start-timeout", 10, { zero: true, max: LIMITS.seconds, unit: "a year" });
}

/** orchesjob's TTL: whole seconds, or a whole number with s, m, h or d. */
export function parseTtl(text: string): number {
  if (text.trim() === "") throw new UserError("Invalid ttl: empty", JobExit.usage);
  const match = /^(\d+)([smhd]?)$/i.exec(text.trim());
  if (!match) throw new UserError(`Invalid ttl: '${text}'. Use seconds or suffix s/m/h/d`, JobExit.usage);
  const seconds = Number(match[1]) * ({ "": 1, s: 1, m: 60, h: 3600, d: 86400 }[match[2].toLowerCase()] ?? 1);
  if (seconds <= 0) throw new UserError("ttl must be positive", JobExit.usage);
  if (seconds > LONGEST_DURATION_SEC) throw new UserError("ttl must be at most 100 years", JobExit.usage);
  return seconds;
}

/**
 * A date or date-time as orchesjob's Python reads it (`datetime.fromisoformat` of Python 3.11: basic and
 * extended ISO 8601, week dates, `Z` and offsets), to whole epoch seconds; without an offset it is local time.
 */
export function parseDateTime(text: string, option: string): number {
  const at = parsePythonIsoTime(text);
  if (typeof at !== "number") {
    throw new UserError(
      `Invalid ${option}: '${text}'` +
        (at === null ? ". Use ISO 8601 format, e.g. 2026-01-01 or 2026-01-01T12:00:00+09:00" : ` ${at.problem}`),
      JobExit.usage,
    );
  }
  return Math.floor(at);
}
