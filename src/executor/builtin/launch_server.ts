/**
 * A launch server: one long-lived bash per driver, in a session of its own, that launches the jobs it
 * is sent (see SERVER_SCRIPT). A job then costs the server a fork, not a new process image: no
 * setsid(1) and no shell start-up per batch, which on a small machine were most of a short step's
 * launch. The server ends when its input does: when the driver closes it, exits or dies. Jobs it
 * launched live on, each in its own process group.
 *
 * Sending is not launching: a server that dies after taking a job but before claiming it leaves the
 * job unclaimed, and the next reader launches it again (the claim makes that idempotent), as after a
 * launcher that died between committing the row and spawning.
 */
import { pathExists, resolve, spawnDetachedWithInput, within } from "../../shared/mod.ts";
import { jobFiles, type JobLaunch, jobWords, scriptShell, SERVER_SCRIPT, SUPERVISOR_NAME } from "./supervisor.ts";

/**
 * A send that takes longer than this means a server that does not read (stopped, or stuck): it is
 * given up, and its jobs go another way. (Its pipe holds 64 KiB, hundreds of jobs, so a send that
 * waits at all is unusual.)
 */
const SEND_TIMEOUT_SECONDS = 5;
/** How many of the jobs sent after the first unclaimed one a look at the server's progress reads. */
const PROGRESS_WINDOW = 8;
/** Looks at the server's progress are this far apart at least (each is a few stat calls). */
const PROGRESS_LOOK_MS = 50;

export class LaunchServer implements Disposable {
  /** On the server's command line and in each claim it makes: how a reader knows its processes. */
  readonly mark = crypto.randomUUID();
  readonly pid: number;
  private readonly input: WritableStreamDefaultWriter<Uint8Array>;
  private usable = true;
  private exited = false;
  /** The jobs sent, in order, from `head` on: those not yet seen claimed (or passed over). */
  private queue: string[] = [];
  private head = 0;
  /** The ids in `queue` from `head` on. */
  private readonly waiting = new Set<string>();
  /** When the server was last sent jobs or seen to claim one, and when that was last looked at. */
  private progressAt = performance.now();
  private lookedAt = -Infinity;

  /** Only where there is bash (`bashPath()`): the script reads its input with bash's `read -d`. */
  constructor(private readonly dir: string, readonly environmentKey: string, baseEnv?: Record<string, string>) {
    const argv = [...scriptShell(), "-c", SERVER_SCRIPT, SUPERVISOR_NAME, resolve(dir), this.mark];
    let status: Promise<Deno.CommandStatus>;
    ({ pid: this.pid, input: this.input, status } = spawnDetachedWithInput(argv, {
      env: baseEnv,
      clearEnv: baseEnv !== undefined,
    }));
    status.finally(() => (this.exited = true)).catch(() => {});
  }

  /**
   * Whether the job is still this server's to launch, so that nobody else should: it was sent here,
   * the server lives, has not been seen to claim it or any job sent after it (it launches them in
   * order), and has claimed one or been sent one within `pauseSeconds`. A server works through what
   * it was sent at a fork a job: a fan-out of a thousand is a backlog of 10-20 s on a small machine,
   * and relaunching its tail beside it (a spawn each, whose process handle the driver holds as long
   * as the job runs) cost CPU the server needed and a file descriptor a job: a 1000-step fan-out
   * under `ulimit -n 256` ran out of them. A job the server passed over (its fork failed) or a server
   * that stopped claiming (stopped, stuck) or is gone leaves its jobs to a relaunch, as before.
   */
  holds(jobId: string, pauseSeconds: number): boolean {
    if (this.exited || !this.waiting.has(jobId)) return false;
    this.lookAtProgress();
    return this.waiting.has(jobId) && performance.now() - this.progressAt < pauseSeconds * 1000;
  }

  /**
   * Moves past the jobs the server claimed (and those it passed over to claim a later one); at most
   * every PROGRESS_LOOK_MS unless `force`.
   */
  private lookAtProgress(force = false): void {
    if (!force && performance.now() - this.lookedAt < PROGRESS_LOOK_MS) return;
    this.lookedAt = performance.now();
    for (;;) {
      let claimed = -1;
      const end = Math.min(this.queue.length, this.head + PROGRESS_WINDOW);
      for (let i = this.head; i < end; i++) {
        if (pathExists(jobFiles(this.dir, this.queue[i]).claim)) claimed = i;
      }
      if (claimed < 0) break;
      for (let i = this.head; i <= claimed; i++) this.waiting.delete(this.queue[i]);
      this.head = claimed + 1;
      this.progressAt = this.lookedAt;
    }
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
  }

  /**
   * Sends jobs to launch; false when the server is gone or does not read. Then some of them may have
   * reached it all the same: launching them again elsewhere is safe, as a job's claim makes the
   * second launch do nothing.
   */
  async send(jobs: readonly JobLaunch[]): Promise<boolean> {
    if (!this.usable) return false;
    // Each job: its number of words, then the words, each ended by a NUL byte (no word holds one:
    // commands, variables and directories are C strings).
    const text = jobs.map((job) => {
      const words = jobWords(job);
      return [String(words.length), ...words].map((word) => `${word}\0`).join("");
    }).join("");
    // What it was sent is looked at now and then, not only by relaunches, so that it stays short.
    if (this.waiting.size >= 4096) this.lookAtProgress(true);
    for (const job of jobs) {
      this.queue.push(job.jobId);
      this.waiting.add(job.jobId);
    }
    this.progressAt = performance.now();
    const written = this.input.write(new TextEncoder().encode(text)).then(() => true, () => false);
    if (await within(written, SEND_TIMEOUT_SECONDS, false)) return true;
    this[Symbol.dispose]();
    return false;
  }

  get alive(): boolean {
    return this.usable;
  }

  /** Ends the server's input (it then exits once it has launched what it read). */
  [Symbol.dispose](): void {
    if (!this.usable) return;
    this.usable = false;
    this.input.abort().catch(() => {});
  }
}
