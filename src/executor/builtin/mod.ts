/** The built-in orchesjob-compatible runner: an Executor (BuiltinRunner) and its operator verbs (JobAdmin). */
export { ABORT_NOT_DONE, type CleanSelectable, JobAdmin } from "./admin.ts";
export { BuiltinRunner, type RunOptions, type RunRequest } from "./runner.ts";
export { JOB_TABLES, type JobRow, JobTable, toJob } from "./job_table.ts";
export { SUPERVISOR_NAME } from "./supervisor.ts";
