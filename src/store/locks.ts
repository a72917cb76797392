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
import { sleep } from "../sleep.ts";
import { safeFileName, stateHome } from "./paths.ts";

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
    for (;;) {
      const lock = await this.tryDriverLock(runKey);
      if (lock || performance.now() >= deadline) return lock;
      await sleep(0.1);
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

/** The path of a run's driver lock file, without creating anything. */
export function driverLockPath(dbPath: string, runKey: string): string {
  return join(stateHome(dbPath), "locks", `${safeFileName(runKey)}.driver.lock`);
}

/**
 * Whether some process holds the run's driver lock right now. A probe: it takes the lock for an instant
 * when nobody holds it, so a driver checking at that very moment may see it taken (the detached
 * driver retries for two seconds). Creates no file: a run that never had a lock file has no driver.
 */
export async function isDriverHeld(dbPath: string, runKey: string): Promise<boolean> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(driverLockPath(dbPath, runKey), { write: true });
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
  try {
    return !(await file.tryLock(true));
  } finally {
    file.close();
  }
}
