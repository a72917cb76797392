/**
 * Flows, the pure core: loading YAML or JSON text into a validated definition, the `when` language,
 * the dependency graph, and the normalized form a run stores (with its hash).
 */
export { FlowError, formatPlace, loadFlow, type Place } from "./load.ts";
export { loadYamlLibrary } from "./yaml_library.ts";
export { allSucceeded, evaluateWhen, formatWhen, parseWhen, referencedIds, WhenSyntaxError } from "./when.ts";
export { checkGraph, effectiveWaits, findCycle } from "./graph.ts";
export { closestName } from "./suggest.ts";
export { definitionHash, denormalizeFlow, normalizeFlow } from "./normalize.ts";
export { sha256Hex } from "./sha256.ts";
