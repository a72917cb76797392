/** The normalized flow as JSON (what `validate` prints and what a run stores), and its hash. Pure. */
import type { FlowDefinition, NormalizedFlow } from "../domain/mod.ts";
import { sha256Hex } from "../domain/mod.ts";
import { formatWhen, parseWhen } from "./when.ts";

export function normalizeFlow(flow: FlowDefinition): NormalizedFlow {
  return {
    flow_id: flow.flowId,
    ...(flow.params.length ? { params: Object.fromEntries(flow.params.map((p) => [p.name, p.default])) } : {}),
    ...(flow.paramValues && flow.params.length ? { param_values: flow.paramValues } : {}),
    ...(flow.maxParallel === null ? {} : { max_parallel: flow.maxParallel }),
    ...(flow.executorUnavailableSec === undefined ? {} : { executor_unavailable_sec: flow.executorUnavailableSec }),
    steps: flow.steps.map((step) => ({
      id: step.id,
      command: step.command,
      when: step.condition ? formatWhen(step.condition) : null,
      depends_on: step.dependsOn,
      waits_for: step.waitsFor,
      ...(Object.keys(step.env).length ? { env: step.env } : {}),
      ...(step.cwd === null ? {} : { cwd: step.cwd }),
      retries: step.retries,
      retry_delay_sec: step.retryDelaySec,
      ...(step.retryBackoff === "fixed" ? {} : { retry_backoff: step.retryBackoff }),
      ...(step.retryMaxDelaySec === null ? {} : { retry_max_delay_sec: step.retryMaxDelaySec }),
      ...(step.retryJitter === 0 ? {} : { retry_jitter: step.retryJitter }),
      ...(step.retryOnExitCodes === null ? {} : { retry_on_exit_codes: step.retryOnExitCodes }),
      timeout_sec: step.timeoutSec,
      strict: step.strict,
      start_timeout_sec: step.startTimeoutSec,
    })),
  };
}

const NO_ENV: Readonly<Record<string, string>> = Object.freeze({});

/** Rebuilds the definition from its stored form (the inverse of {@link normalizeFlow}). */
export function denormalizeFlow(stored: NormalizedFlow): FlowDefinition {
  const params = Object.entries(stored.params ?? {}).map(([name, value]) => ({ name, default: value }));
  const ids = new Map(stored.steps.map((step) => [step.id, step.id]));
  const named = (list: string[]) => list.map((id) => ids.get(id) ?? id);
  return {
    flowId: stored.flow_id,
    params,
    paramValues: stored.param_values ?? (params.length ? null : {}),
    maxParallel: stored.max_parallel ?? null,
    ...(stored.executor_unavailable_sec === undefined
      ? {}
      : { executorUnavailableSec: stored.executor_unavailable_sec }),
    steps: stored.steps.map((step) => ({
      id: step.id,
      command: step.command,
      condition: step.when === null ? null : parseWhen(step.when),
      dependsOn: named(step.depends_on),
      waitsFor: named(step.waits_for),
      env: step.env ?? NO_ENV,
      cwd: step.cwd ?? null,
      retries: step.retries,
      retryDelaySec: step.retry_delay_sec,
      retryBackoff: step.retry_backoff ?? "fixed",
      retryMaxDelaySec: step.retry_max_delay_sec ?? null,
      retryJitter: step.retry_jitter ?? 0,
      retryOnExitCodes: step.retry_on_exit_codes ?? null,
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
