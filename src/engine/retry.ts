/**
 * `retry`: which steps of an ended run get a new round, and reopening them. The selection is pure;
 * the reopening is one guarded transaction, after which a driver takes the run as a start would.
 */
import type { RetryRound, RunState } from "../domain/mod.ts";
import type { RunRepository } from "./ports.ts";
import { RUN_TRANSITIONS, STEP_TRANSITIONS } from "./transitions.ts";

/** What to retry: the default (failures and what they skipped), or one step and maybe all that waits on it. */
export type RetryScope = { kind: "failures" } | { kind: "step"; stepId: string; downstream: boolean };

/** Every step that waits, directly or through others, on one of `roots` (roots excluded). */
export function downstreamOf(run: RunState, roots: ReadonlySet<string>, include = (_id: string) => true): Set<string> {
  const found = new Set<string>();
  let grew = true;
  while (grew) {
    grew = false;
    for (const step of run.flow.steps) {
      if (roots.has(step.id) || found.has(step.id) || !include(step.id)) continue;
      if (step.waitsFor.some((id) => roots.has(id) || found.has(id))) {
        found.add(step.id);
        grew = true;
      }
    }
  }
  return found;
}

/**
 * The steps a retry reopens, in flow order. By default: FAILED and CANCELLED steps, and the SKIPPED
 * steps that waited on them (directly or through other such steps). A step that SUCCEEDED is
 * reopened only when named, or when it waits on the named step and `downstream` is set.
 */
export function stepsToRetry(run: RunState, scope: RetryScope): string[] {
  const status = new Map(run.steps.map((step) => [step.id, step.status]));
  let chosen: Set<string>;
  if (scope.kind === "step") {
    chosen = new Set([scope.stepId]);
    if (scope.downstream) { for (const id of downstreamOf(run, chosen)) chosen.add(id); }
  } else {
    chosen = new Set(run.steps.filter((s) => s.status === "FAILED" || s.status === "CANCELLED").map((s) => s.id));
    for (const id of downstreamOf(run, chosen, (id) => status.get(id) === "SKIPPED")) chosen.add(id);
  }
  return run.flow.steps.map((step) => step.id).filter((id) => chosen.has(id));
}

/**
 * What a reopened run becomes: SCHEDULED again while its not-before time is still to come (a deferred
 * run cancelled before it began keeps its time; a retry does not move it), else PENDING.
 */
export function reopenedStatus(notBefore: number | null, now: number): "SCHEDULED" | "PENDING" {
  return notBefore !== null && now < notBefore ? "SCHEDULED" : "PENDING";
}

/**
 * Reopens `stepIds` of the ended run for a new round, recording who asked. Null when the run is not
 * ended or one of the steps is not (another process got there first); nothing changes then.
 */
export function reopenRun(
  runs: RunRepository,
  run: { runKey: string; notBefore: number | null },
  stepIds: readonly string[],
  user: string | null,
  now: number,
): RetryRound | null {
  return runs.reopen(
    run.runKey,
    {
      run: { from: RUN_TRANSITIONS.reopen.from, to: reopenedStatus(run.notBefore, now) },
      steps: { from: STEP_TRANSITIONS.reopen.from, to: "PENDING" },
    },
    stepIds,
    now,
    user,
  );
}
