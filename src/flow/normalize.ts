/** The normalized flow as JSON (what `validate` prints and what a run stores), and its hash. Pure. */
import type { FlowDefinition, NormalizedFlow } from "../domain/mod.ts";
import { sha256Hex } from "../domain/mod.ts";
import { formatWhen, parseWhen } from "./when.ts";

export function normalizeFlow(flow: FlowDefinition): NormalizedFlow {
  return {
    flow_id: flow.flowId,
    ...(flow.executorUnavailableSec === undefined ? {} : { executor_unavailable_sec: flow.executorUnavailableSec }),
    steps: flow.steps.map((step) => ({
      id: step.id,
      command: step.command,
      when: step.condition ? formatWhen(step.condition) : null,
      depends_on: step.dependsOn,
      waits_for: step.waitsFor,
      retries: step.retries,
      retry_delay_sec: step.retryDelaySec,
      timeout_sec: step.timeoutSec,
      strict: step.strict,
      start_timeout_sec: step.startTimeoutSec,
    })),
  };
}

/** Rebuilds the definition from its stored form (the inverse of {@link normalizeFlow}). */
export function denormalizeFlow(stored: NormalizedFlow): FlowDefinition {
  return {
    flowId: stored.flow_id,
    ...(stored.executor_unavailable_sec === undefined
      ? {}
      : { executorUnavailableSec: stored.executor_unavailable_sec }),
    steps: stored.steps.map((step) => ({
      id: step.id,
      command: step.command,
      condition: step.when === null ? null : parseWhen(step.when),
      dependsOn: step.depends_on,
      waitsFor: step.waits_for,
      retries: step.retries,
      retryDelaySec: step.retry_delay_sec,
      timeoutSec: step.timeout_sec,
      strict: step.strict,
      startTimeoutSec: step.start_timeout_sec,
    })),
  };
}

/** sha256 over the normalized definition: equal for files that mean the same flow. */
export function definitionHash(flow: FlowDefinition): string {
  return "sha256:" + sha256Hex(JSON.stringify(normalizeFlow(flow)));
}
