/**
 * The supervisor of one built-in job: a small POSIX shell script, not a Deno process (a Deno process
 * costs ~45 MiB; a shell ~1-4 MiB). It is launched in a new session, so it outlives whoever started
 * it (an SSH session, a flow loop), and it
 *   1. writes its own PID to `<job>.worker`,
 *   2. checks the program can be executed (else: reason in the job's stderr file, exit status -1),
 *   3. starts the command with stdin /dev/null and stdout/stderr to the job's files,
 *   4. writes the command's PID to `<job>.target`, waits, and writes its exit status to `<job>.exit`.
 * Every file is written to a temporary name and renamed, so a reader sees all of it or none of it.
 * SQLite is never touched here: the next status read reconciles these files into the database.
 * The command shares the supervisor's process group, so signalling the group reaches the command and
 * all its descendants; the supervisor survives SIGTERM (to record the result) but not SIGKILL.
 */
import { existsSync } from "node:fs";

export const SUPERVISOR_NAME = "orchesjob-flow-supervisor";

export const SUPERVISOR_SCRIPT = `
job=$1 dir=$2
shift 2
put() { printf '%s\\n' "$2" > "$dir/$job.$1.tmp" && mv -f "$dir/$job.$1.tmp" "$dir/$job.$1"; }
put worker "$$"
trap 'terminated=1' TERM
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
    args: ["-c", SUPERVISOR_SCRIPT, SUPERVISOR_NAME, jobId, dir, ...command],
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
