/**
 * The supervisor of one built-in job: a small POSIX shell script, not a Deno process (a Deno process
 * costs ~45 MiB; a shell ~1-4 MiB). It is launched in a new session, so it outlives whoever started
 * it (an SSH session, a flow loop), and it
 *   1. writes its own PID to `<job>.worker`,
 *   2. changes to the job's directory and checks the program can be executed (else: reason in the
 *      job's stderr file, exit status -1),
 *   3. starts the command, with the step's environment variables (the supervisor keeps its own),
 *      stdin /dev/null and stdout/stderr to the job's files,
 *   4. writes the command's PID to `<job>.target`, waits, and writes its exit status to `<job>.exit`.
 * Each file is one short line written by one write() into a new file, and readers take a file only
 * once it ends with its newline, so a file being written reads as absent (no `mv` process per file:
 * three of them were most of a short job's cost). A write that fails (a full disk) is retried every
 * second until it succeeds: the result is kept by the living supervisor rather than lost. (Supervisors
 * of earlier versions wrote `<name>.tmp` and renamed it; a complete `.exit.tmp` is still read.)
 * Launching is idempotent: the supervisor first claims the job (`mkdir <job>.claim`, atomic), and a
 * second supervisor of the same job leaves at once, so a reader may relaunch a job whose launcher
 * died between committing the job row and spawning (see runner.ts).
 * A job aborted before its supervisor got going (`<job>.abort` exists) never starts its command.
 * SQLite is never touched here: the next status read reconciles these files into the database.
 * The command shares the supervisor's process group, so signalling the group reaches the command and
 * all its descendants; the supervisor survives SIGTERM (to record the result) but not SIGKILL.
 */
import { pathExists, resolve, spawnDetached } from "../../shared/mod.ts";

export const SUPERVISOR_NAME = "orchesjob-flow-supervisor";

/**
 * The script, run as
 * `sh -c SCRIPT orchesjob-flow-supervisor JOB_ID JOBS_DIR CWD STEP_PATH [K=V...] -- COMMAND...`
 * (CWD empty: stay where started; JOBS_DIR is absolute, as the script changes directory; the K=V
 * words are the step's environment variables, STEP_PATH its PATH among them or empty). Written with
 * String.raw so it reads here exactly as the shell sees it.
 */
export const SUPERVISOR_SCRIPT = String.raw`
job=$1 dir=$2 cwd=$3 path=$4
shift 4
# Writes one file: a line, by one write() (printf is a builtin and flushes once), into a new file.
# Readers take the file only once it ends with the newline, so they never act on half of it. A write
# that fails (a full disk) is retried every second: the result waits in this live process, not lost.
put() {
  until printf '%s\n' "$2" > "$dir/$job.$1"; do
    [ -d "$dir" ] || exit 1
    sleep 1
  done
}
# Test-only crash points (see src/shared/crash_point.ts): SIGKILL this shell at the named point.
crash_point() {
  [ "$ORCHESJOB_FLOW_CRASH_AT" = "$1" ] || return 0
  [ -z "$ORCHESJOB_FLOW_CRASH_LOG" ] || printf '%s %s\n' "$1" "$$" >> "$ORCHESJOB_FLOW_CRASH_LOG"
  kill -9 $$
}
# Claim the job (mkdir is atomic): a second supervisor of the same job leaves here, so launching is
# idempotent and a reader may relaunch a job whose launcher died before spawning.
mkdir "$dir/$job.claim" 2> /dev/null || exit 0
put worker "$$"
# An abort sends SIGTERM to the whole process group. Trapping it (with a no-op) keeps this shell
# alive to record how the command ended; SIGKILL still ends it, and then the job is LOST.
trap 'terminated=1' TERM
# Aborted before it got going: never start the command.
[ -e "$dir/$job.abort" ] && exit 0
# The command could not be started: say why in the job's stderr file and report exit status -1,
# as orchesjob does for a command it could not start.
fail() {
  printf '%s\n' "orchesjob-flow: $1" > "$dir/$job.stderr"
  : > "$dir/$job.stdout"
  put exit -1
  exit 0
}
# The job's working directory (a relative program path below is then relative to it).
if [ -n "$cwd" ]; then cd -- "$cwd" 2> /dev/null || fail "cannot change directory to '$cwd'"; fi
# The step's environment is the K=V words before "--". Only the command gets it (below), so a step
# that sets PATH cannot break this script; the program is still looked up with the step's PATH.
[ -n "$path" ] || path=$PATH
found=
for word in "$@"; do
  if [ -n "$found" ]; then program=$word; break; fi
  [ "$word" = -- ] && found=1
done
# Can the program be executed at all?
case $program in
  */*) [ -f "$program" ] && [ -x "$program" ] ;;
  *) (PATH=$path; command -v "$program" > /dev/null 2>&1) ;;
esac || fail "cannot execute '$program': not found or not executable"
# The command gets the default SIGINT, SIGQUIT and SIGTERM dispositions back (a background job of a
# non-interactive shell starts with SIGINT and SIGQUIT ignored; bash can undo that, sh may not).
# It takes the step's environment there, in its own subshell.
(
  trap - INT QUIT TERM
  # shellcheck disable=SC2163 # each word is NAME=VALUE: exporting it sets NAME
  while [ "$#" -gt 0 ] && [ "$1" != -- ]; do export "$1"; shift; done
  shift
  exec "$@"
) < /dev/null > "$dir/$job.stdout" 2> "$dir/$job.stderr" &
pid=$!
put target "$pid"
# A trapped signal makes 'wait' return early (with 128+N) although the command still runs: wait
# again until the command is really gone, and keep the status of the last wait.
while :; do
  wait "$pid"
  rc=$?
  kill -0 "$pid" 2> /dev/null || break
done
# The shell reports death by signal N as 128+N; orchesjob reports -N. A command that itself exits
# with 129-192 looks the same from here, so it is reported as a signal death too.
if [ "$rc" -gt 128 ] && [ "$rc" -le 192 ]; then rc=$((128 - rc)); fi
crash_point supervisor:before-exit-file
put exit "$rc"
`;

/** bash when present (it can un-ignore SIGINT/SIGQUIT for the command); otherwise sh. */
function shell(): string {
  return pathExists("/bin/bash") ? "/bin/bash" : "/bin/sh";
}

/** Job file paths under the jobs directory. */
export function jobFiles(dir: string, jobId: string) {
  const base = `${dir}/${jobId}`;
  return {
    stdout: `${base}.stdout`,
    stderr: `${base}.stderr`,
    worker: `${base}.worker`,
    target: `${base}.target`,
    exit: `${base}.exit`,
    /** The claim (a directory): present once a supervisor owns the job. */
    claim: `${base}.claim`,
    /** An abort's SIGKILL deadline (epoch seconds): present once the job was aborted. */
    abort: `${base}.abort`,
    /** How the job was launched (environment, directory; JSON, mode 0600), for a relaunch. */
    launch: `${base}.launch`,
  };
}

/** Where and with what environment a job's command starts. */
export interface Launch {
  /** Variables added for the command only (a step's env and the ORCHESJOB_FLOW_* ones). */
  env?: Record<string, string>;
  /** The whole environment of the supervisor and the command, instead of this process's. */
  baseEnv?: Record<string, string>;
  /** The command's working directory. */
  cwd?: string;
}

/** Starts the supervisor for `command`; returns its PID. It does not wait for the command to start. */
export function launchSupervisor(dir: string, jobId: string, command: readonly string[], launch: Launch = {}): number {
  // The supervisor starts in the job's environment and changes to its directory itself, so a missing
  // directory is reported in the job's stderr; `dir` is made absolute first for that reason. The
  // command's own variables are K=V words: the supervisor never runs with a step's PATH.
  const assignments = Object.entries(launch.env ?? {}).map(([name, value]) => `${name}=${value}`);
  const args = [jobId, resolve(dir), launch.cwd ?? "", launch.env?.PATH ?? "", ...assignments, "--", ...command];
  return spawnDetached([shell(), "-c", SUPERVISOR_SCRIPT, SUPERVISOR_NAME, ...args], {
    env: launch.baseEnv,
    clearEnv: launch.baseEnv !== undefined,
  });
}

/**
 * Reads a one-line integer file (`<n>\n`) the supervisor or the runner wrote, or null if it is not
 * there yet: missing, or still being written (no newline yet).
 */
export function readIntFile(path: string): number | null {
  try {
    const line = /^(-?\d+)\n$/.exec(Deno.readTextFileSync(path));
    return line ? Number(line[1]) : null;
  } catch {
    return null;
  }
}
