/**
 * The supervisor of one built-in job: a small POSIX shell script, not a Deno process (a Deno process
 * costs ~45 MiB; a shell ~1-4 MiB). It is launched in a new session, so it outlives whoever started
 * it (an SSH session, a flow loop), and it
 *   1. writes its own PID to `<job>.worker`,
 *   2. checks the program can be executed (else: reason in the job's stderr file, exit status -1),
 *   3. starts the command with stdin /dev/null and stdout/stderr to the job's files,
 *   4. writes the command's PID to `<job>.target`, waits, and writes its exit status to `<job>.exit`.
 * Every file is written to a temporary name and renamed, so a reader sees all of it or none of it.
 * A write that fails (a full disk) is retried every second until it succeeds: the result is kept
 * by the living supervisor rather than lost, and a complete `.exit.tmp` left behind is read too.
 * Launching is idempotent: the supervisor first claims the job (`mkdir <job>.claim`, atomic), and a
 * second supervisor of the same job leaves at once, so a reader may relaunch a job whose launcher
 * died between committing the job row and spawning (see runner.ts).
 * A job aborted before its supervisor got going (`<job>.abort` exists) never starts its command.
 * SQLite is never touched here: the next status read reconciles these files into the database.
 * The command shares the supervisor's process group, so signalling the group reaches the command and
 * all its descendants; the supervisor survives SIGTERM (to record the result) but not SIGKILL.
 */
import { existsSync } from "node:fs";

export const SUPERVISOR_NAME = "orchesjob-flow-supervisor";

const SCRIPT = `
job=$1 dir=$2
shift 2
put() {
  until printf '%s\\n' "$2" > "$dir/$job.$1.tmp" && mv -f "$dir/$job.$1.tmp" "$dir/$job.$1"; do
    [ -d "$dir" ] || exit 1
    sleep 1
  done
}
crash_point() {
  [ "\${ORCHESJOB_FLOW_CRASH_AT-}" = "$1" ] || return 0
  [ -z "\${ORCHESJOB_FLOW_CRASH_LOG-}" ] || printf '%s %s\\n' "$1" "$$" >> "$ORCHESJOB_FLOW_CRASH_LOG"
  kill -9 $$
}
mkdir "$dir/$job.claim" 2> /dev/null || exit 0
put worker "$$"
trap 'terminated=1' TERM
[ -e "$dir/$job.abort" ] && exit 0
case $1 in
  */*) [ -f "$1" ] && [ -x "$1" ] ;;
  *) command -v "$1" > /dev/null 2>&1 ;;
esac || {
  printf '%s\\n' "orchesjob-flow: cannot execute '$1': not found or not executable" > "$dir/$job.stderr"
  : > "$dir/$job.stdout"
  put exit -1
  exit 0
}
(trap - INT QUIT TERM; exec "$@") < /dev/null > "$dir/$job.stdout" 2> "$dir/$job.stderr" &
pid=$!
put target "$pid"
while :; do
  wait "$pid"
  rc=$?
  kill -0 "$pid" 2> /dev/null || break
done
# A shell reports death by signal N as 128+N; orchesjob reports it as -N.
if [ "$rc" -gt 128 ] && [ "$rc" -le 192 ]; then rc=$((128 - rc)); fi
crash_point supervisor:before-exit-file
put exit "$rc"
`;

/** bash when present (it can un-ignore SIGINT/SIGQUIT for the command); otherwise sh. */
function shell(): string {
  return existsSync("/bin/bash") ? "/bin/bash" : "/bin/sh";
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
    /** The extra environment the job was started with (JSON), for a relaunch. */
    env: `${base}.env`,
  };
}

/** Starts the supervisor for `command`; returns its PID. It does not wait for the command to start. */
export function launchSupervisor(
  dir: string,
  jobId: string,
  command: readonly string[],
  env?: Record<string, string>,
): number {
  const child = new Deno.Command(shell(), {
    args: ["-c", SCRIPT, SUPERVISOR_NAME, jobId, dir, ...command],
    stdin: "null",
    stdout: "null",
    stderr: "null",
    env,
    detached: true,
  }).spawn();
  // Reap it if it ends while we live, and do not let it keep this process alive.
  child.status.catch(() => {});
  child.unref();
  return child.pid;
}

/** Reads a one-line integer file the supervisor wrote, or null if it is not there (yet). */
export function readIntFile(path: string): number | null {
  try {
    const text = Deno.readTextFileSync(path).trim();
    return /^-?\d+$/.test(text) ? Number(text) : null;
  } catch {
    return null;
  }
}
