/** Runs as the engine and the CLI use them: the stored definition turned back into a flow, once per process. */
import type { FlowDefinition, RunRecord, StoredRun } from "../domain/mod.ts";
import { denormalizeFlow, normalizeFlow } from "../flow/mod.ts";
import type { NewRun, RunRepository } from "./ports.ts";

/** A run's definition never changes and its hash names it, so each is parsed once per process. */
const definitions = new Map<string, FlowDefinition>();

export function toRecord(stored: StoredRun): RunRecord {
  let flow = definitions.get(stored.definitionHash);
  if (!flow) {
    flow = denormalizeFlow(stored.definition());
    definitions.set(stored.definitionHash, flow);
  }
  const { definition: _definition, definitionHash, flowFile, executor, rounds, ...state } = stored;
  return { state: { ...state, flow }, definitionHash, flowFile, executor, rounds };
}

export function loadRun(runs: RunRepository, runKey: string): RunRecord | undefined {
  const stored = runs.load(runKey);
  return stored && toRecord(stored);
}

/** Creates the run unless it exists; returns the stored run either way (the caller compares hashes). */
export function createRun(
  runs: RunRepository,
  run: Omit<NewRun, "definition"> & { flow: FlowDefinition },
  now: number,
): RunRecord {
  const { flow, ...rest } = run;
  // The caller's flow is the definition the hash names: keep it as the one parsed copy.
  if (!definitions.has(run.definitionHash)) definitions.set(run.definitionHash, flow);
  return toRecord(runs.create({ ...rest, definition: normalizeFlow(flow) }, now));
}
