/** Renderers: a run as JSON or as the operator's table. They return values and strings; nothing prints here. */
export { faultJson, runJson } from "./run_json.ts";
export { duration, renderRunTable, resumeHint, runCommandHint } from "./run_table.ts";
export { GRAPH_FORMATS, type GraphFormat, renderGraph } from "./graph.ts";
export {
  type DamagedRun,
  damagedRunJson,
  type ListedRun,
  listedRunJson,
  type ListEntry,
  renderRunList,
  renderRunListRows,
  runListRow,
  stepCounts,
} from "./run_list.ts";
export { CLEAR_SCREEN, runSignature, RunView, type RunViewOptions, type ViewMode } from "./run_view.ts";
