/** Runs as the engine and the CLI use them: the stored definition turned back into a flow, once per process. */
import { DamagedRunError, type FlowDefinition, type RunRecord, type StoredRun } from "../domain/mod.ts";
import { denormalizeFlow, normalizeFlow } from "../flow/mod.ts";
import type { NewRun, RunRepository } from "./ports.ts";

/** A run's definition never changes and its hash names it, so each is parsed once per process. */
const definitions = new Map<string, FlowDefinition>();

function toRecord(stored: StoredRun): RunRecord {
  let flow = definitions.get(stored.definitionHash);
  if (!flow) {
    flow = readDefinition(stored);
    // Checked before it is kept: a damaged definition must not stand for the healthy runs of its hash.
    checkSteps(stored, flow);
    definitions.set(stored.definitionHash, flow);
  } else checkSteps(stored, flow);
  const { definition: _definition, definitionHash, flowFile, executor, rounds, ...state } = stored;
  return { state: { ...state, flow }, definitionHash, flowFile, executor, rounds };
}

/** The stored definition as a flow. */
function readDefinition(stored: StoredRun): FlowDefinition {
  const definition = stored.definition();
  let flow: FlowDefinition;
  try {
    flow = denormalizeFlow(definition);
  } catch (error) {
    throw new DamagedRunError(stored.runKey, "flow_runs.definition", `is not a flow (${(error as Error).message})`);
  }
  return flow;
}

/** The definition must name the run's steps in their stored order: the engine looks every step's definition up by its id. */
function checkSteps(stored: StoredRun, flow: FlowDefinition): void {
  const steps = stored.steps;
  if (flow.steps.length !== steps.length || flow.steps.some((step, i) => step.id !== steps[i].id)) {
    throw new DamagedRunError(stored.runKey, "flow_steps", "does not hold the steps its definition names");
  }
}

export function loadRun(runs: RunRepository, runKey: string): RunRecord | undefined {
  const stored = runs.load(runKey, (hash) => definitions.has(hash));
  return stored && toRecord(stored);
}

/** Creates the run unless it exists; returns the stored run either way (the caller compares hashes). */
export function createRun(
  runs: RunRepository,
  run: Omit<NewRun, "definition"> & { flow: FlowDefinition },
  now: number,
): RunRecord {
  const { flow, ...rest } = run;
  const definition = normalizeFlow(flow);
  // The parsed copy kept is the stored definition read back, as any other process reads it, not the
  // caller's flow: that one, as the loader made it, holds an array, an object and the places in the
  // file of every step (a foreground start of a 10k-step flow drove with ~8 MiB more live heap).
  if (!definitions.has(run.definitionHash)) definitions.set(run.definitionHash, denormalizeFlow(definition));
  return toRecord(runs.create({ ...rest, definition }, now));
}
