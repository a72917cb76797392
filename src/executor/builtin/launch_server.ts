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
import { resolve, spawnDetachedWithInput, within } from "../../shared/mod.ts";
import { type JobLaunch, jobWords, scriptShell, SERVER_SCRIPT, SUPERVISOR_NAME } from "./supervisor.ts";

/**
 * A send that takes longer than this means a server that does not read (stopped, or stuck): it is
 * given up, and its jobs go another way. (Its pipe holds 64 KiB, hundreds of jobs, so a send that
 * waits at all is unusual.)
 */
const SEND_TIMEOUT_SECONDS = 5;

export class LaunchServer implements Disposable {
  /** On the server's command line and in each claim it makes: how a reader knows its processes. */
  readonly mark = crypto.randomUUID();
  readonly pid: number;
  private readonly input: WritableStreamDefaultWriter<Uint8Array>;
  private usable = true;

  /** Only where there is bash (`bashPath()`): the script reads its input with bash's `read -d`. */
  constructor(dir: string, readonly environmentKey: string, baseEnv?: Record<string, string>) {
    const argv = [...scriptShell(), "-c", SERVER_SCRIPT, SUPERVISOR_NAME, resolve(dir), this.mark];
    ({ pid: this.pid, input: this.input } = spawnDetachedWithInput(argv, {
      env: baseEnv,
      clearEnv: baseEnv !== undefined,
    }));
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
