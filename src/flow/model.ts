/** The validated, normalized flow definition: what a run is bound to. Pure data. */
import type { WhenExpr } from "./when.ts";

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
}
