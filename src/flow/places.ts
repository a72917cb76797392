/**
 * Where a loaded step's command, cwd and env were written. Parameter values are substituted after
 * loading, when the YAML document is gone, so the loader notes these places for the errors that the
 * values can cause. They are kept beside the definition, not in it: its stored form and hash stay as
 * they are, and a definition read back from a run has none (its errors then name the step only). Pure.
 */
import type { StepDefinition } from "../domain/mod.ts";
import type { Place } from "./errors.ts";

export interface StepFieldPlaces {
  command: Place;
  /** The step's `cwd`, or the flow's that it inherits. */
  cwd?: Place;
  /** The step's own `env`, and the names it sets there. */
  env?: Place;
  envNames?: readonly string[];
  /** The flow's `env`, for the names the step inherits. */
  flowEnv?: Place;
}

// Weak: the places go when the definition does. Only the small Place objects are kept, not the YAML nodes.
const placesOfSteps = new WeakMap<StepDefinition, StepFieldPlaces>();

export function recordFieldPlaces(step: StepDefinition, places: StepFieldPlaces): void {
  placesOfSteps.set(step, places);
}

/**
 * Where `field` of a loaded step was written ("command", "cwd" or "env.NAME"), naming the step, or
 * undefined when that is not known.
 */
export function fieldPlace(step: StepDefinition, field: string): Place | undefined {
  const places = placesOfSteps.get(step);
  if (places === undefined) return undefined;
  let place: Place | undefined;
  if (field === "command") place = places.command;
  else if (field === "cwd") place = places.cwd;
  else if (field.startsWith("env.")) {
    place = places.envNames?.includes(field.slice(4)) ? places.env : places.flowEnv;
  }
  return place && { ...place, stepId: step.id };
}
