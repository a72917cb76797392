/**
 * Likely mistakes in a valid flow, reported by `validate` as warnings (they never fail it): a `when`
 * that can never hold, a `depends_on` entry its `when` already waits for, steps that can never run,
 * and `timeout_sec` shorter than `start_timeout_sec`. Pure.
 */
import type { FlowDefinition, StepDefinition, WhenExpr } from "../domain/mod.ts";
import { evaluateWhen, formatWhen, referencedIds } from "./when.ts";

export interface FlowWarning {
  stepId: string;
  message: string;
}

/**
 * Enumerating a condition costs 2^(free ids) evaluations of its whole expression. A check that would
 * cost more node visits than this is not made (the condition counts as satisfiable), nor is any
 * check once a flow's checks together have cost {@link FLOW_BUDGET}: `validate` stays fast on
 * conditions written to be slow.
 */
const CHECK_BUDGET = 2 ** 16;
const FLOW_BUDGET = 2 ** 24;

/** Node visits left for one flow's checks. */
export interface LintBudget {
  left: number;
}

/**
 * Whether `expr` can be true when the steps in `neverSucceed` are taken as not SUCCEEDED and every
 * other id is free. Enumerates assignments of the free ids; a check over the budget counts as
 * satisfiable.
 */
export function satisfiable(
  expr: WhenExpr,
  neverSucceed: ReadonlySet<string> = new Set(),
  budget: LintBudget = { left: CHECK_BUDGET },
): boolean {
  const free = referencedIds(expr).filter((id) => !neverSucceed.has(id));
  const cost = 2 ** free.length * nodeCount(expr);
  if (cost > CHECK_BUDGET || cost > budget.left) return true;
  budget.left -= cost;
  for (let mask = 0; mask < 2 ** free.length; mask++) {
    const succeeded = new Set(free.filter((_, i) => (mask & (1 << i)) !== 0));
    if (evaluateWhen(expr, succeeded)) return true;
  }
  return false;
}

/** The number of nodes of an expression (without recursion: expressions may be deep). */
function nodeCount(expr: WhenExpr): number {
  let count = 0;
  const pending: WhenExpr[] = [expr];
  for (let node = pending.pop(); node !== undefined; node = pending.pop()) {
    count++;
    if (node.kind === "not") pending.push(node.operand);
    else if (node.kind !== "ref") pending.push(node.left, node.right);
  }
  return count;
}

/**
 * `when` that says more than `depends_on` alone would: not the derived success chain, nor one the
 * user wrote to mean the same ("all of these succeeded", in any order: `B && A` beside `[A, B]`).
 */
function hasOwnWhen(step: StepDefinition): boolean {
  if (step.condition === null) return false;
  const ids = conjunctionIds(step.condition);
  return ids === null || ids.size !== step.dependsOn.length || !step.dependsOn.every((id) => ids.has(id));
}

/** The ids of `A && B && …` (steps that must all succeed), or null for any other condition. Iterative: chains are long. */
function conjunctionIds(expr: WhenExpr): Set<string> | null {
  const ids = new Set<string>();
  const pending = [expr];
  for (let node = pending.pop(); node !== undefined; node = pending.pop()) {
    if (node.kind === "ref") ids.add(node.id);
    else if (node.kind === "and") pending.push(node.right, node.left);
    else return null;
  }
  return ids;
}

export function lintFlow(flow: FlowDefinition): FlowWarning[] {
  const warnings: FlowWarning[] = [];
  const byId = new Map(flow.steps.map((step) => [step.id, step]));
  const budget: LintBudget = { left: FLOW_BUDGET };

  // Steps that can never run (and so never succeed), to a fixed point: a step whose condition cannot
  // hold once those are false never runs either. Each pass settles at least one more step or stops.
  const neverRuns = new Set<string>();
  for (let changed = true; changed;) {
    changed = false;
    for (const step of flow.steps) {
      if (neverRuns.has(step.id) || step.condition === null) continue;
      if (!satisfiable(step.condition, neverRuns, budget)) {
        neverRuns.add(step.id);
        changed = true;
      }
    }
  }

  for (const step of flow.steps) {
    const when = step.condition ? formatWhen(step.condition) : "";
    if (step.condition !== null && !satisfiable(step.condition, new Set(), budget)) {
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
