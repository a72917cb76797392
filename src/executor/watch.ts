/**
 * Change hints from a directory (inotify, FSEvents, kqueue through Deno.watchFs): how a driver learns
 * within milliseconds that a job ended, instead of at its next poll. A hint only: events can be
 * coalesced, late or lost (a full kernel queue, a network file system), so callers keep polling.
 *
 * Test hooks (read here, so no test-only option reaches the engine):
 * - ORCHESJOB_FLOW_TEST_NOTIFY_LOG=FILE appends one line per hint ("delivered" or "lost") to FILE,
 *   and one per event the watcher woke for but passed over ("ignored"): what a watch costs;
 * - ORCHESJOB_FLOW_TEST_LOSE_NOTIFICATIONS=1 drops every hint, as a lost notification would be.
 */

/**
 * Watches `dir` and calls `onChange` with the paths of each event that `relevant` accepts (a kind,
 * and one path at a time). Returns null when the directory cannot be watched (missing, no watcher
 * available): the caller then relies on polling.
 */
export function watchDirectory(
  dir: string,
  relevant: (kind: Deno.FsEvent["kind"], path: string) => boolean,
  onChange: (paths: string[]) => void,
  options: { recursive?: boolean } = {},
): Disposable | null {
  let watcher: Deno.FsWatcher;
  try {
    watcher = Deno.watchFs(dir, { recursive: options.recursive ?? false });
  } catch {
    return null;
  }
  const log = Deno.env.get("ORCHESJOB_FLOW_TEST_NOTIFY_LOG");
  const lose = Deno.env.get("ORCHESJOB_FLOW_TEST_LOSE_NOTIFICATIONS") === "1";
  const logName = `/${log?.slice(log.lastIndexOf("/") + 1)}`;
  (async () => {
    try {
      for await (const event of watcher) {
        const paths = event.paths.filter((path) => relevant(event.kind, path));
        if (paths.length === 0) {
          // Not the log's own writes (a log inside the watched directory): each would log another.
          if (log && !event.paths.every((path) => path.endsWith(logName))) {
            Deno.writeTextFileSync(log, `ignored ${event.kind} ${event.paths.join(" ")}\n`, { append: true });
          }
          continue;
        }
        if (log) {
          Deno.writeTextFileSync(log, `${lose ? "lost" : "delivered"} ${event.kind} ${event.paths.join(" ")}\n`, {
            append: true,
          });
        }
        if (!lose) onChange(paths);
      }
    } catch {
      // The watcher broke (e.g. the directory went away): polling carries on alone.
    }
  })();
  return {
    [Symbol.dispose]() {
      try {
        watcher.close();
      } catch { /* already closed */ }
    },
  };
}
