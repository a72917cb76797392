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
