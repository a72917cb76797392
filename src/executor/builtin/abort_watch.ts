/**
 * The graces of every abort under way in one process, watched together. An abort waits, between its
 * SIGTERM and its SIGKILL, for its job's process group to end, and every look asks two things: does
 * the job's supervisor still hold its PID (a few reads of that one process), and, when that cannot
 * tell (the supervisor is gone, its command may live on), is anything left in the group. On Linux the
 * second answer costs a pass over /proc, a read of every process on the host. A cancel of a hundred
 * running steps made a hundred such passes per round, one after another on the one JS thread: on a
 * loaded host with a thousand processes a pass took a tenth of a second, and the cancel took minutes.
 * Here each round looks at every watched job, then makes one pass for all the jobs that need it.
 */
import { type LiveGroup, liveGroups } from "./processes.ts";

/**
 * A look's first half, the job's own: its group is still its ("alive": its supervisor holds the PID),
 * is not ("gone": the supervisor's PID is another program's, so the group ended), or is as /proc shows
 * ("group").
 */
export type Probe = "alive" | "gone" | "group";

/** A job whose process group an abort waits on. */
export interface WatchedJob {
  /** The group's id: the job's supervisor's PID. */
  readonly group: number;
  /** The look's first half (see {@link Probe}). */
  probe(): Probe;
  /** Whether a group /proc shows live is the job's still, judged by its leader's start. */
  owns(group: LiveGroup): boolean;
}

/** Pure: what one look says, from the job's probe and what /proc showed of its group (if asked). */
export function lookSays(job: Pick<WatchedJob, "owns">, probe: Probe, seen: LiveGroup | undefined): boolean {
  if (probe !== "group") return probe === "alive";
  return seen !== undefined && job.owns(seen);
}

/** One look at one job, at once: for a check that a signal follows in the same turn. */
export function aliveNow(job: WatchedJob): boolean {
  const probe = job.probe();
  // The probe comes first: see AbortWatch.round.
  return lookSays(job, probe, probe === "group" ? liveGroups([job.group]).get(job.group) : undefined);
}

interface Entry {
  job: WatchedJob;
  /** performance.now() milliseconds. */
  deadline: number;
  pollMs: number;
  atDeadline?: () => void;
  settle: (gone: boolean) => void;
  fail: (error: unknown) => void;
}

export class AbortWatch {
  private readonly entries = new Set<Entry>();
  private timer: ReturnType<typeof setTimeout> | undefined;
  /** When the next round is set for (performance.now() milliseconds). */
  private due = Infinity;

  /** `scan`: which of the groups asked about live (liveGroups; a test's stand-in counts its calls). */
  constructor(private readonly scan: (pgids: number[]) => Map<number, LiveGroup> = liveGroups) {}

  /**
   * Resolves true once the job's group is empty or no longer the job's, false once `deadline`
   * (performance.now() milliseconds) has passed with a look still finding it the job's. Looks come
   * at the next round, then every `pollSeconds` at most. `atDeadline` (the SIGKILL) runs right after
   * the look that found the group the job's past the deadline, in the same turn: no other code runs
   * between the two, so no late signal reaches a group that took over the job's id meanwhile.
   */
  until(job: WatchedJob, deadline: number, pollSeconds: number, atDeadline?: () => void): Promise<boolean> {
    return new Promise((settle, fail) => {
      const entry = { job, deadline, pollMs: pollSeconds * 1000, atDeadline, settle, fail };
      this.entries.add(entry);
      // Not a look now but at the next round: the aborts of a cancel start in one turn, and their
      // first looks then come in one round, as all later ones do.
      this.schedule(Math.min(performance.now() + entry.pollMs, deadline));
    });
  }

  private schedule(at: number): void {
    if (at >= this.due) return;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.due = at;
    this.timer = setTimeout(() => this.round(), Math.max(0, at - performance.now()));
  }

  /** Looks at every watched job: first each job's own probe, then one pass over /proc for all. */
  private round(): void {
    this.timer = undefined;
    this.due = Infinity;
    const entries = [...this.entries];
    let gone: boolean[];
    try {
      // Every probe before the pass: a job's group is taken as /proc shows it only after its probe
      // found its supervisor's PID free or unreadable, as a look at one job does. A group that emptied
      // after the probe may have given its id to a new group's leader by the pass: that leader's start
      // (see WatchedJob.owns) tells it apart.
      const probes = entries.map(({ job }) => job.probe());
      const asked = entries.filter((_, i) => probes[i] === "group").map(({ job }) => job.group);
      const seen = asked.length === 0 ? new Map<number, LiveGroup>() : this.scan(asked);
      gone = entries.map(({ job }, i) => !lookSays(job, probes[i], seen.get(job.group)));
    } catch (error) {
      // An abort fails as it did when a look of its own failed; the others with it, as they share it.
      for (const entry of entries) {
        this.entries.delete(entry);
        entry.fail(error);
      }
      return;
    }
    // Read after the looks: a SIGKILL goes out only once its deadline has passed.
    const now = performance.now();
    entries.forEach((entry, i) => {
      if (!gone[i] && now < entry.deadline) return;
      this.entries.delete(entry);
      if (!gone[i]) entry.atDeadline?.();
      entry.settle(gone[i]);
    });
    for (const entry of this.entries) this.schedule(Math.min(now + entry.pollMs, entry.deadline));
  }
}
