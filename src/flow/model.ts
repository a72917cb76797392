/** The validated, normalized flow definition: what a run is bound to. Pure data. */
import type { WhenExpr } from "./when.ts";

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
}

/** Names of the fields a flow file may contain, as written in the file. */
export const FLOW_FIELDS = ["flow_id", "steps"] as const;
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
