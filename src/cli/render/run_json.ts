/** A run as the JSON the reference's output model defines (plus definition_hash and executor). */
import { type ExecutorFault, type RunRecord, stepDefinitionAt, stepRunKey } from "../../domain/mod.ts";

export function runJson(record: RunRecord) {
  const run = record.state;
  return {
    run_key: run.runKey,
    flow_id: run.flow.flowId,
    status: run.status,
    started_at: run.startedAt,
    finished_at: run.finishedAt,
    error: run.error,
    steps: run.steps.map((step, position) => ({
      id: step.id,
      run_key: stepRunKey(run.runKey, step.id, step.attemptNo),
      status: step.status,
      attempt_no: step.attemptNo,
      max_retries: stepDefinitionAt(run, position).retries,
      next_attempt_at: step.nextAttemptAt,
      started_at: step.startedAt,
      finished_at: step.finishedAt,
      error: step.error,
      orchesjob_status: step.job,
      retry_history: step.retryHistory,
      executor_error: faultJson(step.executorError),
    })),
    definition_hash: record.definitionHash,
    executor: record.executor,
    /** Each `retry` of the run: round number (2 for the first), time, steps reopened, and `$USER`. */
    rounds: record.rounds,
    params: run.flow.paramValues ?? {},
    not_before: run.notBefore,
  };
}

/** A step's failing executor calls, with the field names of the JSON output. */
export function faultJson(fault: ExecutorFault | null) {
  return fault && {
    message: fault.message,
    exit_code: fault.exitCode,
    stderr_tail: fault.stderrTail,
    first_failure_at: fault.firstAt,
    last_failure_at: fault.lastAt,
    count: fault.count,
  };
}
