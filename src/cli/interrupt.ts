/** SIGINT/SIGTERM as a flag the flow loop checks, so an interrupted run stops cleanly and stays resumable. */
export interface Interrupt extends Disposable {
  readonly requested: () => boolean;
}

export function listenForInterrupt(): Interrupt {
  let requested = false;
  const handler = () => {
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
