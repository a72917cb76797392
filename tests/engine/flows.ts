/** Flows built in code for engine and store tests and the bench's stub driver (no flow file, no YAML). */
import type { FlowDefinition, StepDefinition, WhenExpr } from "../../src/domain/mod.ts";

/** A step running `true`, with every other field at its default. */
export function trueStep(
  id: string,
  waitsFor: string[],
  how: { condition?: WhenExpr | null; dependsOn?: string[] } = {},
): StepDefinition {
  return {
    id,
    command: ["true"],
    condition: how.condition ?? null,
    dependsOn: how.dependsOn ?? [],
    waitsFor,
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
  };
}

/** A chain s0 → s1 → … of `n` steps, each running when the one before succeeded. */
export function chainFlow(n: number): FlowDefinition {
  const steps = Array.from(
    { length: n },
    (_, i) =>
      i === 0 ? trueStep("s0", []) : trueStep(`s${i}`, [`s${i - 1}`], { condition: { kind: "ref", id: `s${i - 1}` } }),
  );
  return { flowId: `chain-${n}`, params: [], paramValues: {}, maxParallel: null, steps };
}
