/** orchesjob's job object and exit codes: the contract both executors speak (field names, order, types). */
import type { JobStatus } from "./status.ts";

/**
 * orchesjob's exit codes (its CLI and `orchesjob-flow job`): 1 for a general error (a full disk, a
 * locked database, a bug); and 65, of `orchesjob-flow job` only, for a job whose stored row cannot be
 * read back.
 */
export const JobExit = {
  ok: 0,
  general: 1,
  usage: 2,
  notFound: 3,
  invalidState: 4,
  damaged: 65,
  /** `orchesjob-flow job` stopped by a signal (orchesjob itself dies of it): what it stored stays stored. */
  interrupted: 130,
} as const;

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

/**
 * Whether `job`, found under an attempt's run key while the attempt has no job recorded, was made
 * before the attempt's intent (`intentAt`, epoch seconds) and so is not this attempt's: a job of an
 * earlier run with the same run key, deleted by `clean` while an external orchesjob keeps its jobs
 * (`<run>:<step>:<n>` comes again). orchesjob's times are whole seconds (rounded down), a job made
 * after the intent never has an earlier second, and one of the same second is taken as the attempt's.
 */
export function madeBeforeIntent(job: Job, intentAt: number | null): boolean {
  return intentAt !== null && job.started_at < Math.floor(intentAt);
}
