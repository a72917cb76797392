/**
 * orchesjob's answers, checked before the engine trusts them: well-formed JSON of another shape (a
 * status outside the contract, another run key's job, `null`) would otherwise read as a job that
 * ended, and fail or succeed a step whose job still runs.
 */
import { ACTIVE_JOB_STATUSES, type Job, TERMINAL_JOB_STATUSES } from "../domain/mod.ts";

const STATUSES: readonly string[] = [...ACTIVE_JOB_STATUSES, ...TERMINAL_JOB_STATUSES];

/** The fields the engine reads besides job_id, run_key and status, and what each must be. */
const FIELDS: [string, "integer" | "number", "or null" | "always"][] = [
  ["exit_code", "integer", "or null"],
  ["target_pid", "integer", "or null"],
  ["started_at", "number", "always"],
  ["finished_at", "number", "or null"],
  ["updated_at", "number", "or null"],
];

/**
 * What is wrong with `value` as a job of orchesjob's contract, or null if nothing is. With `runKey`,
 * the job must be that key's; without it (`status --running`), any key or none.
 */
export function jobProblem(value: unknown, runKey?: string): string | null {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return `expected a job object, got ${value === null ? "null" : Array.isArray(value) ? "an array" : typeof value}`;
  }
  const job = value as Record<string, unknown>;
  if (typeof job.job_id !== "string") return `job_id is ${show(job.job_id)}, not a string`;
  if (runKey !== undefined && job.run_key !== runKey) {
    return `run_key is ${show(job.run_key)}, not the key asked for (${JSON.stringify(runKey)})`;
  }
  if (job.run_key !== null && typeof job.run_key !== "string") return `run_key is ${show(job.run_key)}`;
  if (typeof job.status !== "string" || !STATUSES.includes(job.status)) {
    return `status ${show(job.status)} is not one of ${STATUSES.join(", ")}`;
  }
  for (const [name, type, nullable] of FIELDS) {
    const field = job[name];
    if (field === null && nullable === "or null") continue;
    const fits = type === "integer" ? Number.isInteger(field) : Number.isFinite(field);
    const expected = `${type === "integer" ? "an integer" : "a number"}${nullable === "or null" ? " or null" : ""}`;
    if (!fits) return `${name} is ${show(field)}, not ${expected}`;
  }
  return null;
}

/** `value` as a job, when it is one (see {@link jobProblem}). */
export function isJob(value: unknown, runKey?: string): value is Job {
  return jobProblem(value, runKey) === null;
}

function show(value: unknown): string {
  return value === undefined ? "missing" : JSON.stringify(value).slice(0, 80);
}
