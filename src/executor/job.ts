/** orchesjob's job object: the contract both executors speak (field names, order and types). */

export const ACTIVE_JOB_STATUSES = ["STARTING", "RUNNING"] as const;
export const TERMINAL_JOB_STATUSES = ["SUCCEEDED", "FAILED", "LOST", "CANCELLED", "ABORTED"] as const;
export type JobStatus = typeof ACTIVE_JOB_STATUSES[number] | typeof TERMINAL_JOB_STATUSES[number];

export function isActiveJobStatus(status: string): boolean {
  return (ACTIVE_JOB_STATUSES as readonly string[]).includes(status);
}

/** The 25 fields of `orchesjob status`, in orchesjob's order. Times are integer epoch seconds. */
export interface Job {
  job_id: string;
  run_key: string | null;
  command: string[];
  pid: number | null;
  pid_kind: "target" | "worker" | null;
  worker_pid: number | null;
  target_pid: number | null;
  status: JobStatus;
  exit_code: number | null;
  stdout_file: string;
  stderr_file: string;
  attempt_no: number;
  rerun_of_job_id: string | null;
  rerun_reason: string | null;
  abort_reason: string | null;
  started_at: number;
  started_at_iso: string;
  finished_at: number | null;
  finished_at_iso: string | null;
  updated_at: number | null;
  updated_at_iso: string | null;
  aborted_at: number | null;
  aborted_at_iso: string | null;
}

/** What `start` and `rerun` add after the job fields. */
export interface StartResult extends Job {
  accepted: boolean;
  existing: boolean;
  mode: "async" | "sync";
  strict: boolean;
  strict_override_used: boolean;
  rerun?: true;
}

/** What `abort` adds after the job fields. */
export interface AbortResult extends Job {
  aborted: true;
  sent_term_target: boolean;
  sent_term_worker: boolean;
  sent_kill_target: boolean;
  sent_kill_worker: boolean;
}

/** Local time, ISO 8601 with offset and no fraction, e.g. `2026-11-22T17:40:25+00:00`; null for null. */
export function isoLocal(epochSeconds: number | null): string | null {
  if (epochSeconds === null) return null;
  const date = new Date(epochSeconds * 1000);
  const pad = (n: number, width = 2) => String(Math.abs(n)).padStart(width, "0");
  const offset = -date.getTimezoneOffset();
  const sign = offset >= 0 ? "+" : "-";
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:` +
    `${pad(date.getMinutes())}:${pad(date.getSeconds())}${sign}${pad(Math.trunc(offset / 60))}:${pad(offset % 60)}`;
}

/** Whole seconds since the epoch, as orchesjob stores them. */
export function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}
