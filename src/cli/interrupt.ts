/** SIGINT/SIGTERM as a flag the flow loop checks, so an interrupted run stops cleanly and stays resumable. */
export interface Interrupt extends Disposable {
  readonly requested: () => boolean;
}

/** Listens until disposed; `onFirst` is told of the first signal (to say what happens next). */
export function listenForInterrupt(onFirst?: () => void): Interrupt {
  let requested = false;
  const handler = () => {
    if (!requested) onFirst?.();
    requested = true;
  };
  const signals: Deno.Signal[] = ["SIGINT", "SIGTERM", "SIGHUP"];
  for (const sig of signals) Deno.addSignalListener(sig, handler);
  return {
    requested: () => requested,
    [Symbol.dispose]() {
      for (const sig of signals) Deno.removeSignalListener(sig, handler);
    },
  };
}
