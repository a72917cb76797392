/**
 * Per-run file locks (flock), which the OS releases when the holder dies, however it dies; the
 * engine's DriverLock and StartGate.
 * - The driver lock: held by the one process driving a run (foreground start, detached child,
 *   watch --advance, tick) for as long as it drives.
 * - The start gate: held briefly around "check the run is live, then start a job" and around
 *   "commit the cancel", so no job can start after a cancel is committed.
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { type Backoff, nextPause, sleep } from "../shared/mod.ts";
import { safeFileName, stateHome } from "./paths.ts";

/** Retrying a held driver lock: soon at first (a passing `tick` lets go quickly), then every 0.1 s. */
const LOCK_RETRY: Backoff = { first: 0.02, factor: 2, ceiling: 0.1 };

export class FileLocks {
  constructor(readonly dbPath: string) {}

  private path(runKey: string, kind: "driver" | "gate"): string {
    const dir = join(stateHome(this.dbPath), "locks");
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    return join(dir, `${safeFileName(runKey)}.${kind}.lock`);
  }

  /** Takes the driver lock if nobody holds it; null when another process (or handle) drives the run. */
  async tryDriverLock(runKey: string): Promise<Disposable | null> {
    const file = await Deno.open(this.path(runKey, "driver"), { create: true, write: true });
    if (!(await file.tryLock(true))) {
      file.close();
      return null;
    }
    return { [Symbol.dispose]: () => file.close() };
  }

  /**
   * Tries for the driver lock a few times: a holder may be only a passing `tick` or another `start -d`
   * checking whether the run is driven.
   */
  async waitForDriverLock(runKey: string, seconds: number): Promise<Disposable | null> {
    const deadline = performance.now() + seconds * 1000;
    for (let pause = nextPause(LOCK_RETRY);; pause = nextPause(LOCK_RETRY, pause)) {
      const lock = await this.tryDriverLock(runKey);
      if (lock || performance.now() >= deadline) return lock;
      await sleep(pause);
    }
  }

  /** Runs `fn` holding the run's start gate (waiting for it if needed). */
  async withStartGate<T>(runKey: string, fn: () => Promise<T> | T): Promise<T> {
    const file = await Deno.open(this.path(runKey, "gate"), { create: true, write: true });
    try {
      await file.lock(true);
      return await fn();
    } finally {
      file.close();
    }
  }
}
