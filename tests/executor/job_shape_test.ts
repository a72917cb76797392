/** The check of orchesjob's answers: what the engine reads must be there, of the contract's types. */
import assert from "node:assert/strict";
import { jobProblem } from "../../src/executor/job_shape.ts";

const job = {
  job_id: "7d0c6f0e",
  run_key: "r:a:1",
  status: "FAILED",
  exit_code: -9,
  target_pid: null,
  started_at: 1764000000,
  finished_at: 1764000003,
  updated_at: null,
};

Deno.test("a job of the contract passes; each field the engine reads is checked", () => {
  assert.equal(jobProblem(job, "r:a:1"), null);
  assert.equal(jobProblem({ ...job, run_key: null }), null, "status --running: any key, or none");
  const cases: [unknown, string][] = [
    [[job], "expected a job object, got an array"],
    [{ ...job, job_id: 7 }, "job_id is 7, not a string"],
    [{ ...job, run_key: "r:a:2" }, 'run_key is "r:a:2", not the key asked for ("r:a:1")'],
    [
      { ...job, status: "running" },
      'status "running" is not one of STARTING, RUNNING, SUCCEEDED, FAILED, LOST, CANCELLED, ABORTED',
    ],
    [{ ...job, exit_code: "1" }, 'exit_code is "1", not an integer or null'],
    [{ ...job, target_pid: undefined }, "target_pid is missing, not an integer or null"],
    [{ ...job, started_at: null }, "started_at is null, not a number"],
    [{ ...job, finished_at: "2026-01-01" }, 'finished_at is "2026-01-01", not a number or null'],
  ];
  for (const [value, problem] of cases) assert.equal(jobProblem(value, "r:a:1"), problem);
});
