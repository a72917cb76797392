/** The dependency graph of a flow: what each step waits for, unknown ids and cycles. Pure. */
import type { FlowDefinition, WhenExpr } from "../domain/mod.ts";
import { formatWhen, referencedIds } from "./when.ts";

/** depends_on ∪ ids referenced by the condition, in order of first mention. */
export function effectiveWaits(dependsOn: readonly string[], condition: WhenExpr | null): string[] {
  return [...new Set([...dependsOn, ...(condition ? referencedIds(condition) : [])])];
}

export interface GraphProblem {
  stepId?: string;
  /** Which field of the step the problem is in, so the caller can point at it. */
  field?: "when" | "depends_on";
  reason: string;
}

/** The first problem with the graph, or null: unknown ids, self-references, then cycles. */
export function checkGraph(flow: FlowDefinition): GraphProblem | null {
  const ids = new Set(flow.steps.map((step) => step.id));
  for (const step of flow.steps) {
    for (const dep of step.dependsOn) {
      if (dep === step.id) {
        return { stepId: step.id, field: "depends_on", reason: `step "${step.id}" depends on itself` };
      }
      if (!ids.has(dep)) {
        return { stepId: step.id, field: "depends_on", reason: `depends_on names unknown step "${dep}"` };
      }
    }
    for (const ref of step.condition ? referencedIds(step.condition) : []) {
      if (ref === step.id) {
        return { stepId: step.id, field: "when", reason: `step "${step.id}" refers to itself in when` };
      }
      if (!ids.has(ref)) return { stepId: step.id, field: "when", reason: `when refers to unknown step "${ref}"` };
    }
  }
  const cycle = findCycle(flow);
  return cycle ? { stepId: cycle[0], reason: `dependency cycle detected: ${cycle.join(" -> ")}` } : null;
}

/**
 * One cycle as a path that starts and ends at the same step, following "waits for" edges. Depth-first
 * over an explicit stack: a chain of thousands of steps written in reverse order is that deep.
 */
export function findCycle(flow: FlowDefinition): string[] | null {
  const waits = new Map(flow.steps.map((step) => [step.id, step.waitsFor]));
  const state = new Map<string, "visiting" | "done">();
  // The current path, each step with the index of the next edge to follow.
  const path: string[] = [];
  const nextEdge: number[] = [];
  const onPath = new Map<string, number>();
  for (const root of flow.steps) {
    if (state.has(root.id)) continue;
    path.push(root.id);
    nextEdge.push(0);
    onPath.set(root.id, 0);
    state.set(root.id, "visiting");
    while (path.length > 0) {
      const top = path.length - 1;
      const deps = waits.get(path[top]) ?? [];
      if (nextEdge[top] >= deps.length) {
        state.set(path[top], "done");
        onPath.delete(path[top]);
        path.pop();
        nextEdge.pop();
        continue;
      }
      const dep = deps[nextEdge[top]++];
      const seen = state.get(dep);
      if (seen === "visiting") return [...path.slice(onPath.get(dep)!), dep];
      if (seen === undefined) {
        state.set(dep, "visiting");
        onPath.set(dep, path.length);
        path.push(dep);
        nextEdge.push(0);
      }
    }
  }
  return null;
}

/** One "waits for" edge of the picture: `from` must end before `to` is decided. */
export interface GraphEdge {
  from: string;
  to: string;
  /** The `to` step's effective `when` text, or null for a wait-only edge. */
  when: string | null;
  /** A `depends_on` entry the condition does not mention: waited for, but not part of the condition. */
  waitOnly: boolean;
}

/** The edges of the flow, in file order of their target step, then in `waitsFor` order. */
export function graphEdges(flow: FlowDefinition): GraphEdge[] {
  const edges: GraphEdge[] = [];
  for (const step of flow.steps) {
    const inCondition = new Set(step.condition ? referencedIds(step.condition) : []);
    const when = step.condition ? formatWhen(step.condition) : null;
    for (const from of step.waitsFor) {
      const waitOnly = !inCondition.has(from);
      edges.push({ from, to: step.id, when: waitOnly ? null : when, waitOnly });
    }
  }
  return edges;
}
