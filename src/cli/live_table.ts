/**
 * The table a foreground `start` or `retry` keeps on stderr while it drives a run, redrawn in place
 * like `watch`, when stderr is a terminal (never in a pipe or a log; appended when it changes on one that
 * says TERM=dumb). stdout keeps only the final JSON.
 */
import { epochNow } from "../shared/mod.ts";
import { escapeCodesWork, writeStderr } from "./output.ts";
import { RunView, type RunViewOptions } from "./render/mod.ts";
import type { Session } from "./session.ts";

const REFRESH_MS = 1000;

export interface LiveTable extends Disposable {
  /**
   * Stops refreshing and draws the table one last time. Call it before printing the final JSON: on a
   * terminal that shows both streams, a redraw after it would move back over the JSON.
   */
  stop(): void;
}

export function liveTable(session: Session, runKey: string, wanted: boolean): LiveTable {
  if (!wanted || !Deno.stderr.isTerminal()) return { stop() {}, [Symbol.dispose]() {} };
  const view = new RunView(writeStderr, viewOptions());
  const draw = () => {
    try {
      view.show(session.run(runKey), epochNow(), performance.now() / 1000);
    } catch { /* the table is a courtesy: it never stops the run */ }
  };
  draw();
  let timer: ReturnType<typeof setInterval> | undefined = setInterval(draw, REFRESH_MS);
  const stop = () => {
    if (timer === undefined) return;
    clearInterval(timer);
    timer = undefined;
    draw();
  };
  return { stop, [Symbol.dispose]: stop };
}

/**
 * Redrawn in place with colours; on a terminal that shows escape codes as text (TERM=dumb), appended
 * as `watch` appends it to a log: a table when something changed, without colours.
 */
function viewOptions(): RunViewOptions {
  if (!escapeCodesWork(Deno.stderr)) return { mode: "append", color: false };
  let columns: number | undefined;
  try {
    // A pty nobody sized reports 0 columns: then lines are not cut.
    const size = Deno.consoleSize().columns;
    columns = size >= 20 ? size : undefined;
  } catch { /* no size known: lines are not cut */ }
  const color = !(Deno.env.get("NO_COLOR") ?? "");
  return { mode: "screen", inPlace: true, color, columns };
}
