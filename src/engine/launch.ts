/**
 * What one attempt of a step is started with: its argv, the environment variables added for it, and
 * its working directory. The one place where a step's launch defaults are decided. Pure.
 */
import type { RunState, StepDefinition } from "../domain/mod.ts";

export interface StepLaunch {
  command: string[];
  /** Added to the environment the command inherits (the runner's own variables win). */
  env: Record<string, string>;
  /** Absolute directory, or null for the run's working directory (the driver's). */
  cwd: string | null;
}

/** Prefix of the variables every step gets; `ORCHESJOB_FLOW_PARAM_<NAME>` carries each run parameter. */
export const RUNNER_ENV_PREFIX = "ORCHESJOB_FLOW_";

export function stepLaunch(run: RunState, definition: StepDefinition, attemptNo: number): StepLaunch {
  const params = Object.entries(run.flow.paramValues ?? {}).map(([name, value]) => [
    `${RUNNER_ENV_PREFIX}PARAM_${name}`,
    value,
  ]);
  return {
    command: definition.command,
    env: {
      ...definition.env,
      ...Object.fromEntries(params),
      ORCHESJOB_FLOW_RUN_KEY: run.runKey,
      ORCHESJOB_FLOW_ID: run.flow.flowId,
      ORCHESJOB_FLOW_STEP_ID: definition.id,
      ORCHESJOB_FLOW_ATTEMPT: String(attemptNo),
    },
    cwd: definition.cwd,
  };
}
