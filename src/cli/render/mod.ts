/** Renderers: a run as JSON or as the operator's table. They return values and strings; nothing prints here. */
export { runJson } from "./run_json.ts";
export { duration, renderRunTable } from "./run_table.ts";
