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
import { resolve, spawnDetachedWithInput } from "../../shared/mod.ts";
import { type JobLaunch, jobWords, SERVER_SCRIPT, SUPERVISOR_NAME } from "./supervisor.ts";

export class LaunchServer implements Disposable {
  /** On the server's command line and in each claim it makes: how a reader knows its processes. */
  readonly mark = crypto.randomUUID();
  private readonly input: WritableStreamDefaultWriter<Uint8Array>;
  private usable = true;

  constructor(bash: string, dir: string, readonly environmentKey: string, baseEnv?: Record<string, string>) {
    const argv = [bash, "-c", SERVER_SCRIPT, SUPERVISOR_NAME, resolve(dir), this.mark];
    this.input = spawnDetachedWithInput(argv, { env: baseEnv, clearEnv: baseEnv !== undefined }).input;
  }

  /** Sends jobs to launch; false when the server is gone (then nothing was sent). */
  async send(jobs: readonly JobLaunch[]): Promise<boolean> {
    if (!this.usable) return false;
    // Each job: its number of words, then the words, each ended by a NUL byte (no word holds one:
    // commands, variables and directories are C strings).
    const text = jobs.map((job) => {
      const words = jobWords(job);
      return [String(words.length), ...words].map((word) => `${word}\0`).join("");
    }).join("");
    try {
      await this.input.write(new TextEncoder().encode(text));
      return true;
    } catch {
      this.usable = false;
      return false;
    }
  }

  get alive(): boolean {
    return this.usable;
  }

  [Symbol.dispose](): void {
    this.usable = false;
    this.input.close().catch(() => {});
  }
}
