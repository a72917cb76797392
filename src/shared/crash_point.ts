/**
 * Named crash points, for fault tests only. When `ORCHESJOB_FLOW_CRASH_AT` names the point a process
 * passes, that process SIGKILLs itself there, as a power cut or an OOM kill would. Before dying it
 * appends the point's name to `ORCHESJOB_FLOW_CRASH_LOG` (when set), so a test can prove the crash
 * happened exactly where it claims. Nothing sets these variables outside tests; unset, a point costs
 * one environment read. The shell supervisor has the same hook (see supervisor.ts), and a second one,
 * `ORCHESJOB_FLOW_STOP_AT`, that SIGSTOPs it at a point instead, for a test to act in that window;
 * {@link stopPoint} is that second hook for this process.
 */
import { readEnv } from "./env.ts";

export const CRASH_AT_VARIABLE = "ORCHESJOB_FLOW_CRASH_AT";
export const STOP_AT_VARIABLE = "ORCHESJOB_FLOW_STOP_AT";
export const CRASH_LOG_VARIABLE = "ORCHESJOB_FLOW_CRASH_LOG";

/** Every named point, so a test can iterate over them and a typo is a type error. */
export type CrashPoint =
  | "driver:after-intent"
  | "runner:launch-written"
  | "runner:after-job-row"
  | "runner:after-supervisor-spawn"
  | "driver:before-job-recorded"
  | "driver:after-unlock"
  | "runner:abort-grace"
  | "supervisor:before-exit-file"
  | "supervisor:before-output-files"
  | "server:before-launch"
  | "cancel:after-commit"
  | "retry:reopened"
  | "clean:files-removed"
  | "job-clean:files-removed";

/** Every named stop point (see {@link stopPoint}). */
export type StopPoint =
  | "session:opened"
  | "session:lock-probed"
  | "drive:lock-wait"
  | "store:load-run-read"
  | "launch:gate-taken"
  | "launch:holder-seen"
  | "runner:after-job-row"
  | "cancel:after-commit"
  | "cancel:ended-read"
  | "follow:cancel-probe"
  | "follow:run-read"
  | "status:run-read"
  | "locks:unlink-opened"
  | "clean:files-removed"
  | "runner:launch-written"
  | "admin:unlock-write"
  | "job-clean:select"
  | "runner:abort-grace"
  | "runner:abort-file-written"
  | "runner:after-supervisor-spawn"
  | "runner:launch-failed"
  | "runner:sent-to-server"
  | "driver:retry-recorded"
  | "driver:before-settle-abort";

let configured: string | undefined | null = null;
let stopAt: Set<string> | null = null;

/** SIGKILLs this process if the tests asked for a crash at `point`. */
export function crashPoint(point: CrashPoint): void {
  if (configured === null) configured = readEnv(CRASH_AT_VARIABLE);
  if (configured !== point) return;
  const log = readEnv(CRASH_LOG_VARIABLE);
  if (log) Deno.writeTextFileSync(log, `${point} ${Deno.pid}\n`, { append: true });
  Deno.kill(Deno.pid, "SIGKILL");
}

/**
 * SIGSTOPs this process the first time it passes `point`, if the tests asked for a stop there
 * (`ORCHESJOB_FLOW_STOP_AT`, one point or several separated by commas), after appending the point's
 * name and this PID to `ORCHESJOB_FLOW_CRASH_LOG`: the test acts in that window (takes a lock, commits
 * a change), then sends SIGCONT. Unset, a point costs one environment read.
 */
export function stopPoint(point: StopPoint): void {
  if (stopAt === null) stopAt = new Set(readEnv(STOP_AT_VARIABLE)?.split(",") ?? []);
  if (!stopAt.delete(point)) return; // each once
  const log = readEnv(CRASH_LOG_VARIABLE);
  if (log) Deno.writeTextFileSync(log, `${point} ${Deno.pid}\n`, { append: true });
  Deno.kill(Deno.pid, "SIGSTOP");
}
