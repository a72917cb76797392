/**
 * The YAML library, imported on first need rather than at start-up, so that `status`, `job`, `watch`
 * and `--help` never pay for it.
 * Whoever reads a flow file awaits {@link loadYamlLibrary} first (the CLI does, in readFlowFile).
 */
import type * as Yaml from "yaml";

let library: typeof Yaml | undefined;

/**
 * The URL of the package's ES-module build, inside the same installed (locked) package as the entry
 * that `import("yaml")` gets, or null when that entry is not the expected file. For Deno the package's
 * exports choose its CommonJS build (the "node" condition): importing it loads Deno's Node
 * compatibility layer and CommonJS loader, ~50-75 ms here; its ES modules (the "default" condition,
 * the same release and API) take ~10 ms.
 */
export function yamlModuleBuild(): string | null {
  try {
    const main = import.meta.resolve("yaml");
    return main.endsWith("/dist/index.js") ? new URL("../browser/index.js", main).href : null;
  } catch {
    return null;
  }
}

/** Loads the library once per process (see {@link importYamlLibrary}). */
export async function loadYamlLibrary(): Promise<typeof Yaml> {
  library ??= await importYamlLibrary(yamlModuleBuild());
  return library;
}

/**
 * The library's ES-module build when `moduleBuild` can be imported, else the package's own entry.
 * (`deno compile` embeds whole npm packages, so a compiled binary should find the ES build too; with
 * `--bundle` it would not.) The CommonJS build also reads LOG_TOKENS and LOG_STREAM from the
 * environment, which the ES build does not.
 */
export async function importYamlLibrary(moduleBuild: string | null): Promise<typeof Yaml> {
  if (moduleBuild !== null) {
    try {
      return await import(moduleBuild) as typeof Yaml;
    } catch { /* not there: the package's own entry */ }
  }
  return await import("yaml");
}

/** The library, once {@link loadYamlLibrary} has been awaited in this process. */
export function yamlLibrary(): typeof Yaml {
  if (!library) throw new Error("the YAML library is not loaded: await loadYamlLibrary() before loading a flow");
  return library;
}

// The library's functions for the modules that parse, resolved at call time (after loadYamlLibrary).
export const isAlias = ((node: unknown) => yamlLibrary().isAlias(node)) as typeof Yaml.isAlias;
export const isMap = ((node: unknown) => yamlLibrary().isMap(node)) as typeof Yaml.isMap;
export const isPair = ((node: unknown) => yamlLibrary().isPair(node)) as typeof Yaml.isPair;
export const isScalar = ((node: unknown) => yamlLibrary().isScalar(node)) as typeof Yaml.isScalar;
export const isSeq = ((node: unknown) => yamlLibrary().isSeq(node)) as typeof Yaml.isSeq;
export const parseDocument: typeof Yaml.parseDocument = (...args: Parameters<typeof Yaml.parseDocument>) =>
  yamlLibrary().parseDocument(...args);
export const newLineCounter = (): Yaml.LineCounter => new (yamlLibrary().LineCounter)();
export const newLexer = (): Yaml.Lexer => new (yamlLibrary().Lexer)();
