/** The state of a flow run and its steps, and what a run is bound to. Pure data and helpers. */
import type { FlowDefinition, NormalizedFlow, StepDefinition } from "./flow.ts";
import type { Job } from "./job.ts";
import type { RunStatus, StepStatus } from "./status.ts";

/** Times are Unix epoch seconds with millisecond precision. */
export interface StepState {
  id: string;
  status: StepStatus;
  /** Attempts started so far (the current one included). */
  attemptNo: number;
  /**
   * Attempts made before the current round (a `retry` of the run starts a new one): the step's
   * retries are counted from here, while attempt numbers, and so run keys, keep counting up.
   */
  attemptBase: number;
  nextAttemptAt: number | null;
  startedAt: number | null;
  finishedAt: number | null;
  error: string | null;
  /** The last job object orchesjob returned for the current attempt. */
  job: Job | null;
  /**
   * One record per earlier attempt that failed and was retried, oldest first. Read-only: steps with
   * none share {@link NO_RETRIES} (one empty array per step was ~0.3 MiB of a 10k-step run).
   */
  retryHistory: readonly RetryRecord[];
  /** Calls to the executor about the current attempt that are failing; null once one succeeds. */
  executorError: ExecutorFault | null;
}

/** Failed executor calls about one attempt, in a row: what the last one said, since when, how many. */
export interface ExecutorFault {
  message: string;
  exitCode: number | null;
  /** The end of the executor's stderr. */
  stderrTail: string;
  firstAt: number;
  lastAt: number;
  count: number;
}

/** One more failed call after `previous` (null: the first of a row), failing at `now` with what it said. */
export function addFailedCall(
  previous: ExecutorFault | null,
  failed: { message: string; exitCode: number | null; stderrTail: string },
  now: number,
): ExecutorFault {
  return {
    message: failed.message,
    exitCode: failed.exitCode,
    stderrTail: failed.stderrTail,
    firstAt: previous?.firstAt ?? now,
    lastAt: now,
    count: (previous?.count ?? 0) + 1,
  };
}

/** A failed attempt and the delay drawn for its retry (stored, so a resume never draws again). Persisted. */
export interface RetryRecord {
  attempt_no: number;
  started_at: number | null;
  failed_at: number;
  error: string;
  delay_sec: number;
  next_attempt_at: number | null;
}

export interface RunState {
  runKey: string;
  /** Where and with what environment its steps run (absent for runs stored before it was kept). */
  launch?: RunLaunch;
  flow: FlowDefinition;
  status: RunStatus;
  startedAt: number;
  /** A deferred run (SCHEDULED) begins no earlier than this; null when it was not deferred. */
  notBefore: number | null;
  finishedAt: number | null;
  error: string | null;
  steps: StepState[];
}

export type ExecutorKind = "builtin" | "orchesjob";

/** A chosen executor in storable form, so a resumed run keeps the executor it started with. */
export interface ExecutorSpec {
  kind: ExecutorKind;
  /** The orchesjob binary, for kind "orchesjob". */
  bin?: string;
  /** Binaries this run used before `--orchesjob-bin` replaced them, oldest first, with when (epoch seconds). */
  replaced?: { bin: string; until: number }[];
}

/** One `retry` of a run: when, which steps it reopened, and who asked (`$USER`). */
export interface RetryRound {
  /** 2 for the first retry (round 1 is the run's first start). */
  round: number;
  at: number;
  steps: string[];
  user: string | null;
}

/** The run's current round: 1 until a `retry` reopens it, each retry starting the next. */
export function currentRound(rounds: readonly RetryRound[]): number {
  return rounds.at(-1)?.round ?? 1;
}

/**
 * The working directory and environment of a run's first `start`. Every attempt of every step runs
 * with them, whoever drives the run and from wherever. Persisted in the 0600 state file.
 */
export interface RunLaunch {
  cwd: string;
  env: Record<string, string>;
}

/** A run as stored: its state (the definition still in its stored form), and what it is bound to. */
export interface StoredRun {
  runKey: string;
  status: RunStatus;
  /**
   * The definition, parsed on call: a process parses each definition once (by its hash), and a 10k-step
   * definition parsed again on every load was a large part of a driver's peak memory.
   */
  definition(): NormalizedFlow;
  definitionHash: string;
  flowFile: string | null;
  executor: ExecutorSpec;
  startedAt: number;
  notBefore: number | null;
  finishedAt: number | null;
  error: string | null;
  steps: StepState[];
  rounds: RetryRound[];
  launch?: RunLaunch;
}

/** A run as the engine and the CLI use it: its state with the parsed definition, and its binding. */
export interface RunRecord {
  state: RunState;
  definitionHash: string;
  flowFile: string | null;
  executor: ExecutorSpec;
  rounds: RetryRound[];
}

/** orchesjob run key of a step's attempt: `<flow-run-key>:<step-id>:<attempt>`. */
export function stepRunKey(runKey: string, stepId: string, attemptNo: number): string {
  return `${runKey}:${stepId}:${Math.max(attemptNo, 1)}`;
}

/** Each flow's steps by id, built on first use: renderers and the engine look steps up once per step. */
const stepIndexes = new WeakMap<FlowDefinition, Map<string, StepDefinition>>();

export function stepDefinition(run: RunState, stepId: string): StepDefinition {
  let index = stepIndexes.get(run.flow);
  if (!index) {
    index = new Map(run.flow.steps.map((step) => [step.id, step]));
    stepIndexes.set(run.flow, index);
  }
  const step = index.get(stepId);
  if (!step) throw new Error(`step ${stepId} is not in flow ${run.flow.flowId}`);
  return step;
}

/**
 * The definition of the run's step at `position`: found by place when the run's steps follow its
 * definition's order, as a stored run's do, else by id. No map of the run's size is built.
 */
export function stepDefinitionAt(run: RunState, position: number): StepDefinition {
  const id = run.steps[position].id;
  const definition = run.flow.steps[position];
  return definition !== undefined && definition.id === id ? definition : stepDefinition(run, id);
}

/** The retry history of a step that has none. */
export const NO_RETRIES: readonly RetryRecord[] = Object.freeze([]);

/** A step that never started: how a new run's steps begin (the store's column defaults say the same). */
export function neverStartedStep(id: string): StepState {
  return {
    id,
    status: "PENDING",
    attemptNo: 0,
    attemptBase: 0,
    nextAttemptAt: null,
    startedAt: null,
    finishedAt: null,
    error: null,
    job: null,
    executorError: null,
    retryHistory: NO_RETRIES,
  };
}

/**
 * A run whose stored record cannot be read back: a column that holds JSON does not parse, or a status
 * is not one this program knows (a damaged disk, a hand edit). Only that run is unreadable; every
 * command that touches it names it, and `list` and `clean` go on with the others.
 */
export class DamagedRunError extends Error {
  override name = "DamagedRunError";
  constructor(readonly runKey: string, readonly where: string, readonly reason: string) {
    super(`run ${JSON.stringify(runKey)} is damaged in the state file: ${where} ${reason}`);
  }
}
