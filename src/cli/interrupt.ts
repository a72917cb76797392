/**
 * SIGINT, SIGTERM, SIGHUP and SIGQUIT as a flag the flow loop checks, so an interrupted run stops cleanly
 * and stays resumable. SIGQUIT is Ctrl-\ at a terminal: left to its default it killed the process at once
 * (a core dump where allowed), with no final state on stdout and no word on stderr; resumable as after
 * any crash, but unexplained. It now stops the way Ctrl-C does, with the same exit 130.
 */
export interface Interrupt extends Disposable {
  readonly requested: () => boolean;
  /**
   * Adds what each later signal does too: a command listens from its start, before the state file is
   * opened (where a held write lock may keep it waiting), and what it opens then joins in.
   */
  readonly alsoOnSignal: (react: (count: number) => void) => void;
}

/** Listens until disposed; `onSignal` is told of each signal and how many have come (to say what happens next). */
export function listenForInterrupt(onSignal?: (count: number) => void): Interrupt {
  let count = 0;
  const reactions = onSignal ? [onSignal] : [];
  const handler = () => {
    count++;
    for (const react of reactions) react(count);
  };
  const signals: Deno.Signal[] = ["SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT"];
  for (const sig of signals) Deno.addSignalListener(sig, handler);
  return {
    requested: () => count > 0,
    alsoOnSignal: (react) => reactions.push(react),
    [Symbol.dispose]() {
      for (const sig of signals) Deno.removeSignalListener(sig, handler);
    },
  };
}
