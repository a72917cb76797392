/**
 * The YAML library, imported on first need rather than at start-up: evaluating it costs ~30 ms,
 * which `status`, `job`, `watch` and `--help` would otherwise pay without reading any flow file.
 * Whoever reads a flow file awaits {@link loadYamlLibrary} first (the CLI does, in readFlowFile).
 */
import type * as Yaml from "yaml";

let library: typeof Yaml | undefined;

export async function loadYamlLibrary(): Promise<typeof Yaml> {
  library ??= await import("yaml");
  return library;
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
