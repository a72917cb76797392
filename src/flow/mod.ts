/**
 * Flows, the pure core: loading YAML or JSON text into a validated definition, the `when` language,
 * the dependency graph, and the normalized form a run stores (with its hash).
 */
export { checkFileSize, FlowError, formatPlace, loadFlow, loadFlowBytes, type Place } from "./load.ts";
export {
  allSucceeded,
  conditionJson,
  evaluateWhen,
  formatWhen,
  parseWhen,
  referencedIds,
  WhenSyntaxError,
} from "./when.ts";
export { checkGraph, effectiveWaits, findCycle } from "./graph.ts";
export { closestName } from "./suggest.ts";
export { definitionHash, denormalizeFlow, normalizeFlow } from "./normalize.ts";
export { type GraphEdge, graphEdges } from "./graph.ts";
export {
  bindFlow,
  ParamError,
  paramReferences,
  parseParamArgument,
  resolveParamValues,
  substituteParams,
} from "./params.ts";
export { FLOW_FIELD_TABLE, STEP_FIELD_TABLE } from "./fields.ts";
export { flowSchema } from "./schema.ts";
export { type FlowWarning, lintFlow, satisfiable } from "./lint.ts";
export { INVISIBLE_OR_CONTROL, LIMITS } from "./limits.ts";
export { codePointLabel, runKeyProblem } from "./run_key.ts";
export { loadYamlLibrary } from "./yaml_library.ts";
