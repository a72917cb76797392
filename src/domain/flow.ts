/** The validated flow definition a run is bound to, and its stored (normalized JSON) form. Pure data. */

/** A parsed `when` condition over step ids (the language is in src/flow/when.ts). */
export type WhenExpr =
  | { kind: "ref"; id: string }
  | { kind: "not"; operand: WhenExpr }
  | { kind: "and"; left: WhenExpr; right: WhenExpr }
  | { kind: "or"; left: WhenExpr; right: WhenExpr };

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
  retries: number;
  retryDelaySec: number;
  timeoutSec: number | null;
  strict: boolean;
  startTimeoutSec: number | null;
}

export interface FlowDefinition {
  flowId: string;
  steps: StepDefinition[];
  /**
   * How long the executor may stay unusable for a running step before its attempt fails
   * (`executor_unavailable_sec`); absent means the default.
   */
  executorUnavailableSec?: number;
}

/** The default of `executor_unavailable_sec`: ten minutes. */
export const DEFAULT_EXECUTOR_UNAVAILABLE_SEC = 600;

/**
 * The definition as stored with a run and printed by `validate`; field names follow the flow file's.
 * Persisted: a run started by an older build must still read back.
 */
export interface NormalizedStep {
  id: string;
  command: string[];
  when: string | null;
  depends_on: string[];
  waits_for: string[];
  retries: number;
  retry_delay_sec: number;
  timeout_sec: number | null;
  strict: boolean;
  start_timeout_sec: number | null;
}

export interface NormalizedFlow {
  flow_id: string;
  steps: NormalizedStep[];
  /** Present only when the file sets it, so the hash of a flow without it is what it always was. */
  executor_unavailable_sec?: number;
}

/** Names of the fields a flow file may contain, as written in the file. */
export const FLOW_FIELDS = ["flow_id", "steps", "executor_unavailable_sec"] as const;
export const STEP_FIELDS = [
  "id",
  "command",
  "when",
  "depends_on",
  "retries",
  "retry_delay_sec",
  "timeout_sec",
  "strict",
  "start_timeout_sec",
] as const;
