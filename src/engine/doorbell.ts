/**
 * A doorbell for a sleeping loop: `ring()` ends the current (or the next) `sleep` at once. A ring
 * while nobody sleeps is kept until `clear()`, so a change that arrives while the loop is busy still
 * cuts its next pause short: the loop clears the bell just before it looks at the world.
 */
import { timerDelay } from "../shared/mod.ts";

export class Doorbell {
  private rung = false;
  private wake: (() => void) | null = null;

  ring(): void {
    this.rung = true;
    this.wake?.();
  }

  /** Forgets rings so far: called right before the loop observes, which covers whatever they announced. */
  clear(): void {
    this.rung = false;
  }

  get ringing(): boolean {
    return this.rung;
  }

  /** Sleeps up to `seconds`; resolves early (true) when the bell rings or has rung since the last clear. */
  sleep(seconds: number): Promise<boolean> {
    if (this.rung) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.wake = null;
        resolve(false);
      }, timerDelay(seconds));
      this.wake = () => {
        clearTimeout(timer);
        this.wake = null;
        resolve(true);
      };
    });
  }
}
