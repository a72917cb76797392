/**
 * A run's steps indexed for the scheduler, so a round costs what changed rather than the whole run:
 * steps by id, who waits for whom, the running and delayed sets, the PENDING steps worth a look
 * (all at first, later only those whose last dependency just ended), and counts of ended steps.
 * The driver keeps one per loaded run and updates it with every write it makes; `decide` builds a
 * full one when given none. No I/O. The in-memory run it indexes forgets the job of an ended step
 * (the store keeps it), so it is the run as far as deciding goes, not a copy of the store.
 */
import {
  isTerminalStep,
  type RunState,
  type StepDefinition,
  stepDefinition,
  stepDefinitionAt,
  type StepState,
  type StepStatus,
} from "../domain/mod.ts";

export class RunIndex {
  /** Each step's place in the flow file, which is also its place in the run (max_parallel grants starts in that order). */
  private readonly positions = new Map<string, number>();
  /**
   * Who waits for whom, as positions: the steps that wait for the step at position p are at
   * `waiters[firstWaiter[p]]` up to `waiters[firstWaiter[p + 1]]`. Two flat arrays, not a map of
   * arrays: for 10k steps a map and its 10k small arrays were ~1 MiB of a driver's heap.
   */
  private readonly firstWaiter: Int32Array;
  private readonly waiters: Int32Array;
  /** RUNNING steps (each is polled every round). */
  readonly running = new Set<string>();
  readonly delayed = new Set<string>();
  /** PENDING steps that may have become ready; cleared by {@link settle}. */
  private readonly fresh = new Set<string>();
  /** Ready PENDING steps a round left waiting for a max_parallel slot: kept fresh by {@link settle}. */
  private readonly held = new Set<string>();
  /** Until the first settle every step is a candidate, visited in flow order. */
  private everything = true;
  private keeping = false;
  readonly succeeded = new Set<string>();
  private ended = 0;
  private failed = 0;

  constructor(readonly run: RunState) {
    const { steps } = run;
    steps.forEach((step, position) => this.positions.set(step.id, position));
    // Counting sort of the reverse edges: count each step's waiters, then place them.
    this.firstWaiter = new Int32Array(steps.length + 1);
    const waitsFor = (position: number) => stepDefinitionAt(run, position).waitsFor;
    for (let position = 0; position < steps.length; position++) {
      for (const dependency of waitsFor(position)) {
        const at = this.positions.get(dependency);
        if (at !== undefined) this.firstWaiter[at + 1]++;
      }
    }
    for (let position = 0; position < steps.length; position++) {
      this.firstWaiter[position + 1] += this.firstWaiter[position];
    }
    this.waiters = new Int32Array(this.firstWaiter[steps.length]);
    const placed = this.firstWaiter.slice(0, steps.length);
    for (let position = 0; position < steps.length; position++) {
      for (const dependency of waitsFor(position)) {
        const at = this.positions.get(dependency);
        if (at !== undefined) this.waiters[placed[at]++] = position;
      }
    }
    for (const step of steps) this.enter(step.id, step.status);
  }

  step(id: string): StepState {
    const position = this.positions.get(id);
    if (position === undefined) throw new Error(`step ${id} is not in run ${this.run.runKey}`);
    return this.run.steps[position];
  }

  position(id: string): number {
    return this.positions.get(id) ?? Infinity;
  }

  /** This round looked at nothing (a SCHEDULED run before its time): the next {@link settle} keeps every candidate. */
  keepAll(): void {
    this.keeping = true;
  }

  /** Keeps a ready step a candidate after this round's {@link settle} (it was denied a slot). */
  hold(id: string): void {
    this.held.add(id);
  }

  definition(id: string): StepDefinition {
    const position = this.positions.get(id);
    return position === undefined ? stepDefinition(this.run, id) : stepDefinitionAt(this.run, position);
  }

  /** The steps a round must look at: running, delayed, and PENDING ones that may be ready. */
  *candidates(): Iterable<StepState> {
    if (this.everything) {
      yield* this.run.steps;
      return;
    }
    for (const id of this.running) yield this.step(id);
    for (const id of this.delayed) yield this.step(id);
    for (const id of this.fresh) {
      const step = this.step(id);
      if (step.status === "PENDING") yield step;
    }
  }

  get allEnded(): boolean {
    return this.ended === this.run.steps.length;
  }

  get anyFailed(): boolean {
    return this.failed > 0;
  }

  /**
   * After a round's decide: each PENDING candidate either got an action, was held (no max_parallel
   * slot), or waits for a dependency that has not ended, whose end puts it back. The caller must apply every action of that round
   * (or rebuild the index), or a step would be forgotten.
   */
  settle(): void {
    if (this.keeping) {
      this.keeping = false;
      return;
    }
    this.everything = false;
    this.fresh.clear();
    for (const id of this.held) this.fresh.add(id);
    this.held.clear();
  }

  /** Applies a change the store accepted to the step in memory, keeping the sets and counts right. */
  update(id: string, change: Partial<Omit<StepState, "id">>): void {
    const step = this.step(id);
    const before = step.status;
    Object.assign(step, change);
    if (step.status !== before) {
      this.leave(id, before);
      this.enter(id, step.status);
    }
  }

  private enter(id: string, status: StepStatus): void {
    if (status === "RUNNING") this.running.add(id);
    else if (status === "DELAYED") this.delayed.add(id);
    else if (status === "PENDING") this.fresh.add(id);
    if (!isTerminalStep(status)) return;
    // Nothing is decided on an ended step's job again, and the store keeps it: holding 10k of them
    // was most of a long run's heap.
    this.step(id).job = null;
    this.ended++;
    if (status === "SUCCEEDED") this.succeeded.add(id);
    if (isUnsuccessful(status)) this.failed++;
    const position = this.positions.get(id)!;
    for (let at = this.firstWaiter[position]; at < this.firstWaiter[position + 1]; at++) {
      this.fresh.add(this.run.steps[this.waiters[at]].id);
    }
  }

  private leave(id: string, status: StepStatus): void {
    this.running.delete(id);
    this.delayed.delete(id);
    this.fresh.delete(id);
    if (!isTerminalStep(status)) return;
    this.ended--;
    if (status === "SUCCEEDED") this.succeeded.delete(id);
    if (isUnsuccessful(status)) this.failed--;
  }
}

/**
 * A step that ended without success, which makes the run FAILED once every step has ended. A CANCELLED
 * step counts: a run only finishes with one when a `retry --step` reopened other steps of a cancelled
 * run, and its command never ran to its end, so the run has not succeeded (a default `retry` reopens it).
 */
function isUnsuccessful(status: StepStatus): boolean {
  return status === "FAILED" || status === "CANCELLED";
}
