/**
 * The supervisors of built-in jobs: a small POSIX shell script, not a Deno process (a Deno process
 * costs ~45 MiB; a shell ~1-4 MiB). One script launches a batch of jobs (every job a driver starts in
 * one round: a fan-out of 100 is one spawn, not 100). It is launched in a new session, so it and its
 * jobs outlive whoever started it (an SSH session, a flow loop). For each job it
 *   1. claims the job: creates `<job>.claim` with O_EXCL (noclobber), atomic; a job already claimed
 *      is skipped, so launching is idempotent and a reader may relaunch a job whose launcher died
 *      between committing the job row and spawning (see runner.ts);
 *   2. starts the job's own supervisor: the script itself for a batch of one, else a subshell that
 *      job control (`set -m`) makes the leader of a new process group; the supervisor writes its
 *      PID (= the group's id) into the claim file (earlier versions: `<job>.worker`),
 *   3. changes to the job's directory and checks the program can be executed (else: reason in the
 *      job's stderr file, exit status -1),
 *   4. starts the command, with the step's environment variables (the supervisor keeps its own),
 *      stdin /dev/null and stdout/stderr to the job's files,
 *   5. writes the command's PID to `<job>.target`, waits, and writes its exit status to `<job>.exit`,
 *      then makes the empty `ended/<job>.exit`, the hint that drivers watch for.
 * Nothing is forked or executed that the job does not need (no `mkdir`, no subshell to look the
 * program up): on a small VM each process costs 1-2 ms, which was most of a short job's cost.
 * Each file is one short line written by one write() into a new file, and readers take a file only
 * once it ends with its newline, so a file being written reads as absent. A write that fails (a full
 * disk) is retried every second until it succeeds: the result is kept by the living supervisor rather
 * than lost. (Supervisors of earlier versions wrote `<name>.tmp` and renamed it, and claimed with a
 * directory; both are still read.)
 * A job aborted before its supervisor got going (`<job>.abort` exists) never starts its command (its
 * supervisor makes `<job>.unstarted` as it quits); one aborted while it was starting the command has
 * the command ended by its supervisor at once.
 * SQLite is never touched here: the next status read reconciles these files into the database.
 * The command shares its supervisor's process group, so signalling the group reaches the command and
 * all its descendants; the supervisor survives SIGTERM (to record the result) but not SIGKILL. The
 * batch's own shell is in no job's group and exits once every job is under way.
 */
import { CLOSE_INHERITED_FDS, pathExists, resolve, spawnDetached } from "../../shared/mod.ts";

export const SUPERVISOR_NAME = "orchesjob-flow-supervisor";

/** The shell functions of both scripts below (put, supervise, claim, launch_jobs...). */
/** The first `$size` arguments, in bash (written apart: `${` would be a placeholder in String.raw). */
const JOB_WORDS = '"${@:1:$size}"';
/** A /proc stat line's fields after the process's name (which may hold spaces and parentheses). */
const STAT_FIELDS = '${started##*") "}';
/** The claim's " @START", when the supervisor's start could be read. */
const CLAIM_START = "${started:+ @$started}";

const SUPERVISOR_FUNCTIONS = String.raw`
# Writes one file: a line, by one write() (printf is a builtin and flushes once), into a new file.
# Readers take the file only once it ends with the newline, so they never act on half of it. A write
# that fails (a full disk) is retried every second: the result waits in this live process, not lost.
put() {
  until printf '%s\n' "$3" >| "$dir/$1.$2"; do
    [ -d "$dir" ] || exit 1
    sleep 1
  done
}
# Test-only crash points (see src/shared/crash_point.ts): SIGKILL this job's supervisor at the point.
crash_point() {
  [ "$ORCHESJOB_FLOW_CRASH_AT" = "$1" ] || return 0
  [ -z "$ORCHESJOB_FLOW_CRASH_LOG" ] || printf '%s %s\n' "$1" "$worker" >> "$ORCHESJOB_FLOW_CRASH_LOG"
  kill -9 "$worker"
}
# Test-only stop points: SIGSTOP this job's supervisor at the point, for a test to act in that window
# (it logs like crash_point, and the test sends SIGCONT). ORCHESJOB_FLOW_STOP_AT may name several,
# separated by commas, as for the CLI's own (a test stops a driver and its launch server together).
stop_point() {
  case ",$ORCHESJOB_FLOW_STOP_AT," in *",$1,"*) ;; *) return 0 ;; esac
  [ -z "$ORCHESJOB_FLOW_CRASH_LOG" ] || printf '%s %s\n' "$1" "$worker" >> "$ORCHESJOB_FLOW_CRASH_LOG"
  kill -STOP "$worker"
}
# Sets started to the 20th of its arguments (the stat fields after the name: the start is field 22),
# or to nothing when there are fewer (a shift too far would end a POSIX shell).
start_ticks() {
  [ "$#" -ge 20 ] || { started=; return 0; }
  shift 19
  started=$1
}
# Supervises one job, as the leader of its process group. Arguments: the job's words.
supervise() {
  job=$1 cwd=$2 path=$3 envs=$4 terminated=
  # The claim file holds the supervisor's PID (= the group's id), the mark to look for on its command
  # line when that is not the job id, and, where there is /proc, its start ("@" and field 22 of its
  # stat, clock ticks after boot): with the PID, that names this process alone, also once another of
  # the server's jobs (whose command line shows the same mark) took the PID over. No separate file.
  started=
  { read -r started < "/proc/$worker/stat"; } 2> /dev/null || started=
  # shellcheck disable=SC2086 # the fields after the name, split (numbers and a state letter)
  [ -z "$started" ] || start_ticks ${STAT_FIELDS}
  put "$job" claim "$worker$mark${CLAIM_START}"
  # An abort sends SIGTERM to the whole process group. Trapping it (with a no-op) keeps this shell
  # alive to record how the command ended; SIGKILL still ends it, and then the job is LOST.
  trap 'terminated=1' TERM
  # Aborted before it got going: never start the command.
  aborted && unstarted
  # The job's working directory (a relative program path below is then relative to it).
  if [ -n "$cwd" ]; then cd -- "$cwd" 2> /dev/null || fail "cannot change directory to '$cwd'"; fi
  # Can the program be executed at all? It is looked up with the step's PATH, set here only for the
  # lookup (the supervisor itself keeps its own PATH, so a step's PATH cannot break this script).
  program=
  eval "program=\${$((envs + 6))}"
  [ -n "$path" ] || path=$PATH
  case $program in
    */*) [ -f "$program" ] && [ -x "$program" ] ;;
    *) own=$PATH; PATH=$path; command -v "$program" > /dev/null 2>&1; found=$?; PATH=$own; [ "$found" -eq 0 ] ;;
  esac || fail "cannot execute '$program': not found or not executable"
  crash_point supervisor:before-output-files
  # The output files are made here first, retried like put() while that fails (a full disk, no inodes
  # left): a redirection that failed in the command's subshell below would end it with status 1 before
  # the command ran, and that 1 would be taken for the command's own exit status. 'true', not ':': a
  # failed redirection of a special builtin ends sh, and bash in POSIX mode (a POSIXLY_CORRECT in the
  # environment, which -p does not ignore), and the job was then LOST.
  until { true >| "$dir/$job.stdout" && true >| "$dir/$job.stderr"; } 2> /dev/null; do
    [ -d "$dir" ] || exit 1
    # Aborted while it waited: the command never starts.
    aborted && unstarted
    sleep 1
  done
  # Aborted since the first look (its abort file, or its SIGTERM caught by the trap above): the
  # command must not start now, when the abort may already have found no command to kill.
  aborted && unstarted
  # Cleaned: the job's launch file (written before its row) is gone. job clean removes it before the abort
  # file and the claim, so a supervisor that claims the job after a clean (its starter stopped between
  # its commit and its spawn, or a second launch of it), or that found the abort file gone just above,
  # finds it gone here: the command of a job recorded ended, then deleted, never runs.
  [ -e "$dir/$job.launch" ] || exit 0
  stop_point supervisor:before-command
  # The command gets the default SIGINT, SIGQUIT and SIGTERM dispositions back (a background job of a
  # non-interactive shell starts with SIGINT and SIGQUIT ignored; bash can undo that, sh may not).
  # It takes the step's environment there, in its own subshell.
  (
    trap - INT QUIT TERM
    shift 4
    # shellcheck disable=SC2163 # each word is NAME=VALUE: exporting it sets NAME
    while [ "$envs" -gt 0 ]; do export "$1"; shift; envs=$((envs - 1)); done
    shift
    exec "$@"
  ) < /dev/null >| "$dir/$job.stdout" 2>| "$dir/$job.stderr" &
  pid=$!
  stop_point supervisor:before-target
  put "$job" target "$pid"
  # An abort that came after the look above found no command to signal, or signalled the group before
  # the command was in it: the command is ended here (the abort's SIGKILL of the group, at the end of
  # its grace, still follows for one that ignores this).
  aborted && kill -TERM "$pid" 2> /dev/null
  # A trapped signal makes 'wait' return early (with 128+N) although the command still runs: wait
  # again until the command is really gone, and keep the status of the last wait. A status of 128 or
  # less is the command's own exit: it is gone, and no kill (whose failure costs an error message and
  # a locale lookup) is needed to say so.
  while :; do
    wait "$pid"
    rc=$?
    [ "$rc" -gt 128 ] || break
    kill -0 "$pid" 2> /dev/null || break
  done
  # The shell reports death by signal N as 128+N; orchesjob reports -N. A command that itself exits
  # with 129-192 looks the same from here, so it is reported as a signal death too.
  if [ "$rc" -gt 128 ] && [ "$rc" -le 192 ]; then rc=$((128 - rc)); fi
  crash_point supervisor:before-exit-file
  put "$job" exit "$rc"
  ended "$job"
  exit 0
}
# Quits at an abort, before the command: says so first (an empty file, best effort, before the exit).
# A reader that finds this supervisor gone, no command PID and no result takes the job for ABORTED only
# with that file: a supervisor killed between forking the command and writing its PID leaves no PID
# either, and that command ran (the job is LOST). 'true', as in ended().
unstarted() {
  { true >| "$dir/$job.unstarted"; } 2> /dev/null
  exit 0
}
# The job was aborted: its abort file is there, or the trap in supervise() caught its SIGTERM.
aborted() {
  [ -e "$dir/$job.abort" ] || [ -n "$terminated" ]
}
# The command could not be started: say why in the job's stderr file and report exit status -1,
# as orchesjob does for a command it could not start.
fail() {
  printf '%s\n' "orchesjob-flow: $1" >| "$dir/$job.stderr"
  true >| "$dir/$job.stdout"
  put "$job" exit -1
  ended "$job"
  exit 0
}
# Says that the job ended, once its exit file is complete: an empty file in ended/, the directory
# that drivers watch. Not the exit file itself: in the jobs directory every write() of every job's
# output is an event, which would wake every driver of the state file. Best effort (no ended/ yet:
# polling finds the end); 'true', not ':', whose failed redirection could end a POSIX shell.
ended() {
  { true >| "$dir/ended/$1.exit"; } 2> /dev/null
}
# Claims a job: creates its claim file, or fails if anything is there already (O_EXCL fails on any
# existing path, an earlier version's claim directory too): another supervisor owns the job. 'true',
# as above: the claim's failure is an answer, not the end of the shell.
claim() {
  { true > "$dir/$1.claim"; } 2> /dev/null
}
# Launches the jobs whose words are the arguments: "inline" (one job: this shell leads its session
# and process group already, and supervises it), or "fork" (bash only: each job in a subshell that
# job control makes the leader of a process group of its own; sh cannot, without a terminal).
launch_jobs() {
  how=$1
  shift
  while [ "$#" -gt 0 ]; do
    job=$1 words=
    eval "words=\${$(($4 + 5))}"
    size=$(($4 + words + 5))
    if [ "$how" = inline ]; then
      worker=$$
      claim "$job" && supervise "$@"
    else
      (
        # Not the server's pipe: only the server reads it.
        exec 3<&-
        # This subshell's PID: bash 4 knows it; bash 3 (macOS) asks a child for its parent's.
        # shellcheck disable=SC3028 # bash only (see above)
        worker=$BASHPID
        [ -n "$worker" ] || worker=$(exec sh -c 'echo "$PPID"')
        # shellcheck disable=SC3057 # bash only: the job's own words, in linear time
        claim "$job" && supervise ${JOB_WORDS}
      ) &
    fi
    # A shift that fails (words that do not add up) must end the loop, not spin in it.
    shift "$size" || exit 1
  done
}
`;

/**
 * The script that launches one batch, run as `sh -c SCRIPT orchesjob-flow-supervisor JOBS_DIR COUNT
 * JOB...`, where each of the COUNT JOBs is the words `JOB_ID CWD STEP_PATH N K=V... M ARG...`: N
 * environment words for the command only, then the command's M words (CWD empty: stay where started;
 * JOBS_DIR is absolute, as the supervisor changes directory; STEP_PATH is the step's PATH, or empty).
 * Every job id is thus on the command line of each of the batch's processes, which is how a reader
 * tells a supervisor from a process that reused its PID. Written with String.raw so it reads here
 * exactly as the shell sees it.
 */
export const SUPERVISOR_SCRIPT = SUPERVISOR_FUNCTIONS + String.raw`
# Nothing of the caller's (a lock, a pipe its caller waits on) stays open in the jobs.
${CLOSE_INHERITED_FDS}
dir=$1 count=$2 mark=
shift 2
# noclobber: '>' now creates a new file or fails (O_EXCL), which makes the claim atomic; every other
# write says '>|'.
set -C
if [ "$count" -eq 1 ]; then launch_jobs inline "$@"; else set -m; launch_jobs fork "$@"; fi
`;

/**
 * A launch server (bash only: it reads NUL-separated words): run as `bash -c SCRIPT
 * orchesjob-flow-supervisor JOBS_DIR MARK`, it reads jobs from its stdin and launches each as it
 * arrives, as a batch supervisor would, until its stdin ends (its driver exited or died). A job's
 * record is its number of words, then the words (as above), each ended by a NUL byte. The jobs' ids
 * are not on the server's command line, so each claim also holds MARK, a token that is.
 */
export const SERVER_SCRIPT = SUPERVISOR_FUNCTIONS + String.raw`
dir=$1 mark=" $2" read_one=
# Nothing of the caller's (a lock, a pipe its caller waits on) stays open in the jobs.
${CLOSE_INHERITED_FDS}
set -C -m
exec 3<&0 0< /dev/null
while IFS= read -r -d '' -u 3 left; do
  set --
  while [ "$left" -gt 0 ] && IFS= read -r -d '' -u 3 word; do
    set -- "$@" "$word"
    left=$((left - 1))
  done
  # A record cut short: whoever wrote it is gone.
  [ "$left" -eq 0 ] || exit 0
  # Test-only: the server stops (itself), or dies, before it launches the first jobs it read (it took
  # them off the pipe, and claimed none): see stop_point and crash_point.
  [ -n "$read_one" ] || { read_one=1 worker=$$; stop_point server:before-launch; crash_point server:before-launch; }
  launch_jobs fork "$@"
done
`;

/**
 * How to run the scripts: bash when present (it can un-ignore SIGINT/SIGQUIT for the command, and
 * lead each job of a batch in a process group of its own), otherwise sh. bash runs with -p
 * (privileged mode): it then ignores functions exported in the environment (a `BASH_FUNC_set%%`
 * could redefine the script's own builtins), BASH_ENV, SHELLOPTS, BASHOPTS and CDPATH, while the
 * command still gets all of them in its environment.
 */
export function scriptShell(): string[] {
  const bash = bashPath();
  return bash === null ? ["/bin/sh"] : [bash, "-p"];
}

/**
 * Where supervisors say that a job ended, and the one directory drivers watch: the jobs directory
 * itself has an event for every write() to a job's output, of every run of the state file.
 */
export function endedDirectory(jobsDir: string): string {
  return `${jobsDir}/ended`;
}

/** Job file paths under the jobs directory. */
export function jobFiles(dir: string, jobId: string) {
  const base = `${dir}/${jobId}`;
  return {
    stdout: `${base}.stdout`,
    stderr: `${base}.stderr`,
    /** The supervisor's PID, from supervisors of earlier versions (now in the claim file). */
    worker: `${base}.worker`,
    target: `${base}.target`,
    exit: `${base}.exit`,
    /**
     * The claim: present once a supervisor owns the job; then holds the supervisor's PID. (A directory
     * from earlier versions, which wrote the PID to `worker`.)
     */
    claim: `${base}.claim`,
    /** An abort's SIGKILL deadline (epoch seconds): present once the job was aborted. */
    abort: `${base}.abort`,
    /**
     * What the abort will record (JSON: aborted_at, reason), written just before `abort`: for a reader
     * that finds the abort file with the job still active (the aborting process stopped before its record).
     */
    abortRecord: `${base}.abort-record`,
    /**
     * Made (empty) by a supervisor that quit at an abort before starting the command, as it quit: what
     * tells that job, without a command PID, from one whose supervisor died after starting the command.
     */
    unstarted: `${base}.unstarted`,
    /** How the job was launched (environment, directory; JSON, mode 0600), for a relaunch. */
    launch: `${base}.launch`,
    /** An empty file made once `exit` is complete: the hint that drivers watch for (see endedDirectory). */
    ended: `${endedDirectory(dir)}/${jobId}.exit`,
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

/** One job for {@link launchSupervisors}. */
export interface JobLaunch {
  jobId: string;
  command: readonly string[];
  /** The command's own variables (a step's env and the ORCHESJOB_FLOW_* ones). */
  env?: Record<string, string>;
  /** The command's working directory; none: where the supervisor starts. */
  cwd?: string;
}

/** A batch's words on the supervisor's command line (see {@link SUPERVISOR_SCRIPT}). */
export function supervisorArgs(dir: string, jobs: readonly JobLaunch[]): string[] {
  // `dir` is made absolute, as the supervisor changes to each job's directory.
  return [resolve(dir), String(jobs.length), ...jobs.flatMap(jobWords)];
}

/** One job's words: `JOB_ID CWD STEP_PATH N K=V... M ARG...` (see {@link SUPERVISOR_SCRIPT}). */
export function jobWords(job: JobLaunch): string[] {
  // The command's own variables are K=V words: the supervisor never runs with a step's PATH.
  const assignments = Object.entries(job.env ?? {}).map(([name, value]) => `${name}=${value}`);
  return [
    job.jobId,
    job.cwd ?? "",
    job.env?.PATH ?? "",
    String(assignments.length),
    ...assignments,
    String(job.command.length),
    ...job.command,
  ];
}

let bashCache: string | null | undefined;

/** bash, when there is one (looked up once per process): batches and the launch server need it. */
export function bashPath(): string | null {
  if (bashCache === undefined) bashCache = pathExists("/bin/bash") ? "/bin/bash" : null;
  return bashCache;
}

/**
 * Starts one supervisor process for `jobs` (all in `baseEnv`, the whole environment of supervisor and
 * commands; none: this process's); returns its PID. It does not wait for any command to start.
 */
export function launchSupervisors(
  dir: string,
  jobs: readonly JobLaunch[],
  baseEnv?: Record<string, string>,
): number {
  return spawnDetached([...scriptShell(), "-c", SUPERVISOR_SCRIPT, SUPERVISOR_NAME, ...supervisorArgs(dir, jobs)], {
    env: baseEnv,
    clearEnv: baseEnv !== undefined,
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
