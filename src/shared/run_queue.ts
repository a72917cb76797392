/**
 * How long a process's threads have waited for a CPU (runnable, not running), from Linux's
 * `/proc/PID/task/TID/schedstat` (its second field, in nanoseconds). Null where it cannot be read:
 * another system, a kernel without schedstats, a process that is gone.
 */
export function runQueueWaitMs(pid: number): number | null {
  let total = 0;
  let read = false;
  try {
    for (const task of Deno.readDirSync(`/proc/${pid}/task`)) {
      try {
        const fields = Deno.readTextFileSync(`/proc/${pid}/task/${task.name}/schedstat`).split(" ");
        const waited = Number(fields[1]);
        if (!Number.isFinite(waited)) continue;
        total += waited / 1e6;
        read = true;
      } catch { /* a thread that ended */ }
    }
  } catch {
    return null;
  }
  return read ? total : null;
}
