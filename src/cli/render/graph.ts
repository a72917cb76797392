/**
 * Pictures of a flow's graph (`graph`, `status --format mermaid`): Mermaid, Graphviz DOT and plain
 * text. Edges carry the target step's `when`; wait-only `depends_on` edges are dashed. Returns strings.
 */
import type { FlowDefinition, StepStatus } from "../../domain/mod.ts";
import { graphEdges } from "../../flow/mod.ts";
import { visible } from "./visible.ts";

export const GRAPH_FORMATS = ["mermaid", "dot", "text"] as const;
export type GraphFormat = typeof GRAPH_FORMATS[number];

/** Fill and stroke per step status, for the coloured Mermaid picture of a run. */
const STATUS_STYLES: Record<StepStatus, string> = {
  PENDING: "fill:#f5f5f5,stroke:#9e9e9e",
  DELAYED: "fill:#e0f7fa,stroke:#00838f",
  RUNNING: "fill:#fff8e1,stroke:#f9a825",
  SUCCEEDED: "fill:#e8f5e9,stroke:#2e7d32",
  FAILED: "fill:#ffebee,stroke:#c62828",
  SKIPPED: "fill:#fafafa,stroke:#bdbdbd,stroke-dasharray:3 3",
  CANCELLED: "fill:#f3e5f5,stroke:#6a1b9a",
};

export function renderGraph(
  flow: FlowDefinition,
  format: GraphFormat,
  statuses?: ReadonlyMap<string, StepStatus>,
): string {
  const lines = format === "mermaid" ? mermaid(flow, statuses) : format === "dot" ? dot(flow) : text(flow);
  // Ids and `when`s are checked when a flow is loaded, but a stored run is shown as stored: no control
  // character of it reaches the terminal (DOT's JSON quoting leaves C1 characters as they are).
  return lines.map(visible).join("\n") + "\n";
}

/** Mermaid node ids: the step id when it is a plain word, else its position (ids may hold `.` and `-`). */
function mermaidIds(flow: FlowDefinition): Map<string, string> {
  return new Map(flow.steps.map((step, i) => [step.id, /^[A-Za-z0-9_]+$/.test(step.id) ? `s_${step.id}` : `s${i}`]));
}

function mermaid(flow: FlowDefinition, statuses?: ReadonlyMap<string, StepStatus>): string[] {
  const ids = mermaidIds(flow);
  const lines = ["flowchart TD"];
  for (const step of flow.steps) {
    const status = statuses?.get(step.id);
    lines.push(`  ${ids.get(step.id)}["${step.id}${status ? ` · ${status}` : ""}"]`);
  }
  for (const edge of graphEdges(flow)) {
    const from = ids.get(edge.from);
    const to = ids.get(edge.to);
    lines.push(edge.waitOnly ? `  ${from} -.-> ${to}` : `  ${from} -->|"${edge.when}"| ${to}`);
  }
  if (statuses) {
    const used = [...new Set(flow.steps.map((step) => statuses.get(step.id)).filter((s) => s !== undefined))];
    for (const status of used) lines.push(`  classDef ${status} ${STATUS_STYLES[status]}`);
    for (const status of used) {
      const members = flow.steps.filter((step) => statuses.get(step.id) === status).map((step) => ids.get(step.id));
      lines.push(`  class ${members.join(",")} ${status}`);
    }
  }
  return lines;
}

function dot(flow: FlowDefinition): string[] {
  const quote = (text: string) => JSON.stringify(text);
  const lines = [`digraph ${quote(flow.flowId)} {`, "  node [shape=box];"];
  for (const step of flow.steps) lines.push(`  ${quote(step.id)};`);
  for (const edge of graphEdges(flow)) {
    const attributes = edge.waitOnly ? "[style=dashed]" : `[label=${quote(edge.when!)}]`;
    lines.push(`  ${quote(edge.from)} -> ${quote(edge.to)} ${attributes};`);
  }
  lines.push("}");
  return lines;
}

function text(flow: FlowDefinition): string[] {
  const lines = [`flow ${flow.flowId}`, `steps: ${flow.steps.map((step) => step.id).join(", ")}`];
  for (const edge of graphEdges(flow)) {
    lines.push(
      edge.waitOnly ? `${edge.from} ..> ${edge.to}  (waits only)` : `${edge.from} --> ${edge.to}  when ${edge.when}`,
    );
  }
  return lines;
}
