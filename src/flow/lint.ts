/**
 * Likely mistakes in a valid flow, reported by `validate` as warnings (they never fail it): a `when`
 * that can never hold, a `depends_on` entry its `when` already waits for, steps that can never run,
 * and `timeout_sec` shorter than `start_timeout_sec`. Pure.
 */
import type { FlowDefinition, StepDefinition, WhenExpr } from "../domain/mod.ts";
import { allSucceeded, evaluateWhen, formatWhen, referencedIds } from "./when.ts";

export interface FlowWarning {
  stepId: string;
  message: string;
}

/** Conditions over more step ids than this are not enumerated (assumed satisfiable). */
const MAX_ENUMERATED_IDS = 16;

/**
 * Whether `expr` can be true when the steps in `neverSucceed` are taken as not SUCCEEDED and every
 * other id is free. Enumerates assignments of the free ids; too many ids count as satisfiable.
 */
export function satisfiable(expr: WhenExpr, neverSucceed: ReadonlySet<string> = new Set()): boolean {
  const free = referencedIds(expr).filter((id) => !neverSucceed.has(id));
  if (free.length > MAX_ENUMERATED_IDS) return true;
  for (let mask = 0; mask < 2 ** free.length; mask++) {
    const succeeded = new Set(free.filter((_, i) => (mask & (1 << i)) !== 0));
    if (evaluateWhen(expr, succeeded)) return true;
  }
  return false;
}

/** `when` written beside `depends_on`: the derived success chain is not a `when` of the user's. */
function hasOwnWhen(step: StepDefinition): boolean {
  if (step.condition === null) return false;
  const derived = allSucceeded(step.dependsOn);
  return derived === null || formatWhen(derived) !== formatWhen(step.condition);
}

export function lintFlow(flow: FlowDefinition): FlowWarning[] {
  const warnings: FlowWarning[] = [];
  const byId = new Map(flow.steps.map((step) => [step.id, step]));

  // Steps that can never run (and so never succeed), to a fixed point: a step whose condition cannot
  // hold once those are false never runs either. Each pass settles at least one more step or stops.
  const neverRuns = new Set<string>();
  for (let changed = true; changed;) {
    changed = false;
    for (const step of flow.steps) {
      if (neverRuns.has(step.id) || step.condition === null) continue;
      if (!satisfiable(step.condition, neverRuns)) {
        neverRuns.add(step.id);
        changed = true;
      }
    }
  }

  for (const step of flow.steps) {
    const when = step.condition ? formatWhen(step.condition) : "";
    if (step.condition !== null && !satisfiable(step.condition)) {
      warnings.push({ stepId: step.id, message: `when "${when}" can never be true: the step is always SKIPPED` });
    } else if (neverRuns.has(step.id)) {
      const blockers = referencedIds(step.condition!).filter((id) => neverRuns.has(id));
      warnings.push({
        stepId: step.id,
        message: `unreachable: its when "${when}" needs ${
          blockers.map((id) => `"${id}"`).join(", ")
        } to succeed, which can never run`,
      });
    }
    if (hasOwnWhen(step)) {
      const inWhen = new Set(referencedIds(step.condition!));
      for (const dep of step.dependsOn.filter((id) => inWhen.has(id) && byId.has(id))) {
        warnings.push({
          stepId: step.id,
          message:
            `depends_on "${dep}" is already implied by its when "${when}" (a step waits for every step its when names)`,
        });
      }
    }
    if (step.timeoutSec !== null && step.startTimeoutSec !== null && step.timeoutSec < step.startTimeoutSec) {
      warnings.push({
        stepId: step.id,
        message:
          `timeout_sec (${step.timeoutSec}) is shorter than start_timeout_sec (${step.startTimeoutSec}): the attempt may time out before it has started`,
      });
    }
  }
  return warnings;
}
