/** Flows built in code for engine and store tests (no flow file, no YAML). */
import type { FlowDefinition, StepDefinition } from "../../src/domain/mod.ts";

/** A chain s0 → s1 → … of `n` steps, each running when the one before succeeded. */
export function chainFlow(n: number): FlowDefinition {
  const steps: StepDefinition[] = Array.from({ length: n }, (_, i) => ({
    id: `s${i}`,
    command: ["true"],
    condition: i === 0 ? null : { kind: "ref", id: `s${i - 1}` },
    dependsOn: [],
    waitsFor: i === 0 ? [] : [`s${i - 1}`],
    retries: 0,
    retryDelaySec: 0,
    env: {},
    cwd: null,
    retryBackoff: "fixed",
    retryMaxDelaySec: null,
    retryJitter: 0,
    retryOnExitCodes: null,
    timeoutSec: null,
    strict: false,
    startTimeoutSec: null,
  }));
  return { flowId: `chain-${n}`, params: [], paramValues: {}, maxParallel: null, steps };
}
