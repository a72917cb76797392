/** The validated flow definition a run is bound to, and its stored (normalized JSON) form. Pure data. */

/** A parsed `when` condition over step ids (the language is in src/flow/when.ts). */
export type WhenExpr =
  | { kind: "ref"; id: string }
  | { kind: "not"; operand: WhenExpr }
  | { kind: "and"; left: WhenExpr; right: WhenExpr }
  | { kind: "or"; left: WhenExpr; right: WhenExpr };

export type RetryBackoff = "fixed" | "exponential";

export interface StepDefinition {
  id: string;
  /** argv; a string in the file becomes `["/bin/sh", "-c", string]`. */
  command: string[];
  /** The effective condition: `when`, or `depends_on` as a success chain, or null (always runs). */
  condition: WhenExpr | null;
  /** The `depends_on` list as written (wait-only when `when` is present). */
  dependsOn: string[];
  /** Every step this one waits for: `depends_on` ∪ ids referenced by the condition, in order. */
  waitsFor: string[];
  /** The flow's `env` with the step's own on top (values may hold `${params.NAME}` until bound). */
  env: Record<string, string>;
  /** The step's `cwd`, else the flow's, else null (the run's working directory). Absolute once bound. */
  cwd: string | null;
  retries: number;
  retryDelaySec: number;
  retryBackoff: RetryBackoff;
  retryMaxDelaySec: number | null;
  retryJitter: number;
  /** When set, only attempts that exited with one of these codes are retried. */
  retryOnExitCodes: number[] | null;
  timeoutSec: number | null;
  strict: boolean;
  startTimeoutSec: number | null;
}

/** A declared run parameter; a null default means `start` must give it. */
export interface ParamSpec {
  name: string;
  default: string | null;
}

export interface FlowDefinition {
  flowId: string;
  steps: StepDefinition[];
  params: ParamSpec[];
  /** The values the run was started with (defaults filled in); null until the flow is bound to a run. */
  paramValues: Record<string, string> | null;
  /** At most this many steps RUNNING at once; null for no limit. */
  maxParallel: number | null;
  /**
   * How long the executor may stay unusable for a running step before its attempt fails
   * (`executor_unavailable_sec`); absent means the default.
   */
  executorUnavailableSec?: number;
}

/** The default of `executor_unavailable_sec`: ten minutes. */
export const DEFAULT_EXECUTOR_UNAVAILABLE_SEC = 600;

/** How long the executor may stay unusable for the flow's running steps: its `executor_unavailable_sec`, or the default. */
export function executorUnavailableLimit(flow: FlowDefinition): number {
  return flow.executorUnavailableSec ?? DEFAULT_EXECUTOR_UNAVAILABLE_SEC;
}

/**
 * The definition as stored with a run and printed by `validate`; field names follow the flow file's.
 * Persisted: a run started by an older build must still read back. Fields added after the first
 * release appear only when they differ from their defaults, so a flow that does not use them keeps
 * its definition hash (runs started by an older build still resume).
 */
export interface NormalizedStep {
  id: string;
  command: string[];
  when: string | null;
  depends_on: string[];
  waits_for: string[];
  env?: Record<string, string>;
  cwd?: string;
  retries: number;
  retry_delay_sec: number;
  retry_backoff?: RetryBackoff;
  retry_max_delay_sec?: number;
  retry_jitter?: number;
  retry_on_exit_codes?: number[];
  timeout_sec: number | null;
  strict: boolean;
  start_timeout_sec: number | null;
}

export interface NormalizedFlow {
  flow_id: string;
  /** Declared parameters: name → default (null: required). */
  params?: Record<string, string | null>;
  /** The values a run was started with. */
  param_values?: Record<string, string>;
  max_parallel?: number;
  steps: NormalizedStep[];
  /** Present only when the file sets it, so the hash of a flow without it is what it always was. */
  executor_unavailable_sec?: number;
}
