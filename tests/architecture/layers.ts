/**
 * The layer rules of src/, in one place: which folder may import which, and that an import from
 * outside a folder goes through its mod.ts. Used by the lint plugin (every `deno lint`) and by the
 * import-graph check (`deno task layers`, and a test).
 *
 * A layer is a folder directly under src/, with its subfolders. Arrows point one way:
 * cli → engine → flow, executor → store → shared, and every layer → domain.
 */
import { dirname, join, normalize, relative, sep } from "node:path";
import { fileURLToPath } from "node:url";

export const REPO = fileURLToPath(new URL("../..", import.meta.url));

export const LAYERS = ["domain", "shared", "flow", "store", "executor", "engine", "cli"] as const;
export type Layer = typeof LAYERS[number] | "main";

/** What each layer may import besides itself (node: built-ins are always allowed). */
export const ALLOWED: Readonly<Record<Layer, readonly Layer[]>> = {
  domain: [],
  shared: [],
  flow: ["domain"],
  store: ["domain", "shared"],
  executor: ["domain", "shared", "store"],
  engine: ["domain", "shared", "flow", "executor"],
  cli: ["domain", "shared", "flow", "store", "executor", "engine"],
  main: ["cli"],
};

/** Packages (bare specifiers from deno.json's imports) and the layers that may use them. */
export const PACKAGES: Readonly<Record<string, readonly Layer[]>> = { yaml: ["flow"] };

/** The layer of a repository-relative path, or null for a file outside src/ and main.ts. */
export function layerOf(path: string): Layer | null {
  if (path === "main.ts") return "main";
  const parts = normalize(path).split(sep);
  if (parts[0] !== "src" || parts.length < 3) return null;
  return (LAYERS as readonly string[]).includes(parts[1]) ? parts[1] as Layer : null;
}

/** The mod.ts `target` must be imported through: that of the outermost folder holding it but not `from`. */
export function entryOf(from: string, target: string): string | null {
  const parts = normalize(target).split(sep);
  if (parts[0] !== "src") return null;
  for (let k = 2; k < parts.length; k++) {
    const folder = parts.slice(0, k).join(sep);
    if (!from.startsWith(folder + sep)) return join(folder, "mod.ts");
  }
  return null;
}

export interface ImportEdge {
  from: string;
  specifier: string;
  /** Repository-relative target for a relative import; null for packages and built-ins. */
  target: string | null;
  fromLayer: Layer;
  toLayer: Layer | null;
}

/** Resolves an import of `specifier` in the repository-relative file `from`; null when `from` is not checked. */
export function importEdge(from: string, specifier: string): ImportEdge | null {
  const fromLayer = layerOf(from);
  if (fromLayer === null) return null;
  const target = specifier.startsWith(".") ? normalize(join(dirname(from), specifier)) : null;
  return { from, specifier, target, fromLayer, toLayer: target === null ? null : layerOf(target) };
}

/** Why an import breaks the rules, or null when it is fine. */
export function violation(edge: ImportEdge): string | null {
  const { fromLayer, toLayer, target, specifier } = edge;
  if (target === null) {
    if (specifier.startsWith("node:")) return null;
    const users = PACKAGES[specifier];
    if (users?.includes(fromLayer)) return null;
    return `${fromLayer} may not import the package "${specifier}"`;
  }
  if (toLayer === null) {
    if (fromLayer === "cli" && target === "deno.json") return null; // the version
    return `${fromLayer} may not import ${target}, which is outside src/`;
  }
  if (toLayer !== fromLayer && !ALLOWED[fromLayer].includes(toLayer)) {
    return `wrong-way import: ${fromLayer} may not import ${toLayer} (${target})`;
  }
  const entry = entryOf(edge.from, target);
  if (entry !== null && entry !== target) return `import ${target} through ${entry}`;
  return null;
}

/** A cycle in a directed graph as a path that ends where it starts, or null. */
export function findCycle(graph: ReadonlyMap<string, ReadonlySet<string>>): string[] | null {
  const state = new Map<string, "open" | "done">();
  const path: string[] = [];
  const visit = (node: string): string[] | null => {
    state.set(node, "open");
    path.push(node);
    for (const next of graph.get(node) ?? []) {
      if (state.get(next) === "open") return [...path.slice(path.indexOf(next)), next];
      if (!state.has(next)) {
        const found = visit(next);
        if (found) return found;
      }
    }
    path.pop();
    state.set(node, "done");
    return null;
  };
  for (const node of graph.keys()) {
    if (!state.has(node)) {
      const found = visit(node);
      if (found) return found;
    }
  }
  return null;
}

/** A path relative to the repository. */
export function repoPath(path: string): string {
  return relative(REPO, path);
}
