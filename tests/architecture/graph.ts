/**
 * The import graph of src/ by layer: `deno task layers` prints it and exits 1 on a wrong-way import,
 * an import that bypasses a folder's mod.ts, or a cycle between layers.
 */
import { join } from "node:path";
import { findCycle, type ImportEdge, importEdge, type Layer, REPO, violation } from "./layers.ts";

/** Every static import and re-export specifier in TypeScript source. */
const SPECIFIER = /(?:^|\n)\s*(?:import|export)\b[^;]*?\bfrom\s*"([^"]+)"|(?:^|\n)\s*import\s*"([^"]+)"/g;

export function specifiers(source: string): string[] {
  return [...source.matchAll(SPECIFIER)].map((match) => match[1] ?? match[2]);
}

function sourceFiles(dir: string, prefix: string): string[] {
  const files: string[] = [];
  for (const entry of Deno.readDirSync(join(REPO, dir))) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory) files.push(...sourceFiles(path, prefix));
    else if (entry.name.endsWith(".ts")) files.push(path);
  }
  return files;
}

export interface ImportGraph {
  edges: ImportEdge[];
  /** layer → the layers it imports */
  layers: Map<Layer, Set<Layer>>;
  violations: string[];
  cycle: string[] | null;
}

export function importGraph(): ImportGraph {
  const edges: ImportEdge[] = [];
  for (const file of ["main.ts", ...sourceFiles("src", "src")]) {
    for (const specifier of specifiers(Deno.readTextFileSync(join(REPO, file)))) {
      const edge = importEdge(file, specifier);
      if (edge) edges.push(edge);
    }
  }
  const layers = new Map<Layer, Set<Layer>>();
  for (const edge of edges) {
    const targets = layers.get(edge.fromLayer) ?? new Set();
    if (edge.toLayer !== null && edge.toLayer !== edge.fromLayer) targets.add(edge.toLayer);
    layers.set(edge.fromLayer, targets);
  }
  const violations = edges.flatMap((edge) => {
    const reason = violation(edge);
    return reason === null ? [] : [`${edge.from}: "${edge.specifier}": ${reason}`];
  });
  return { edges, layers, violations, cycle: findCycle(layers) };
}

if (import.meta.main) {
  const graph = importGraph();
  for (const [layer, targets] of [...graph.layers].sort()) {
    // deno-lint-ignore no-console
    console.log(`${layer.padEnd(8)} -> ${[...targets].sort().join(", ") || "(nothing)"}`);
  }
  for (const problem of graph.violations) {
    // deno-lint-ignore no-console
    console.error(problem);
  }
  // deno-lint-ignore no-console
  if (graph.cycle) console.error(`cycle between layers: ${graph.cycle.join(" -> ")}`);
  Deno.exit(graph.violations.length === 0 && graph.cycle === null ? 0 : 1);
}
