/**
 * Asking the OS about processes: is a PID alive and still the process we started (not a reused PID),
 * is anything left in a process group, and sending signals. Zombies count as gone: where PID 1 does
 * not reap (some containers), an exited supervisor stays a zombie forever.
 */
import { readEnv, runToEndSync } from "../../shared/mod.ts";

const isLinux = Deno.build.os === "linux";
/** The PF_KTHREAD bit of /proc/PID/stat's flags. */
const KERNEL_THREAD = 0x00200000;
const pause = new Int32Array(new SharedArrayBuffer(4));

interface ProcInfo {
  state: string;
  pgrp: number;
  kernelThread: boolean;
  /** When it started, in clock ticks after boot (field 22; USER_HZ, 100 on every Linux /proc shows). */
  startTicks: number;
}

/** Linux: state, process group, flags and start from /proc/PID/stat (the name may hold spaces and parens). */
function readProcStat(pid: number): ProcInfo | null {
  try {
    const text = Deno.readTextFileSync(`/proc/${pid}/stat`);
    const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
    return {
      state: fields[0],
      pgrp: Number(fields[2]),
      kernelThread: (Number(fields[6]) & KERNEL_THREAD) !== 0,
      startTicks: Number(fields[19]),
    };
  } catch {
    return null;
  }
}

function readCmdline(pid: number): string | null {
  try {
    return Deno.readTextFileSync(`/proc/${pid}/cmdline`);
  } catch {
    return null;
  }
}

/**
 * Re-reads a command line until two reads in a row agree (or 100 ms pass); null once the process is
 * gone. A process that is exiting also shows an empty command line, until it is a zombie a moment
 * later: that counts as gone at once (waiting the 100 ms out blocked the driver's thread, a few
 * times in every wide fan-out).
 */
export function settledCmdline(pid: number, first: string): string | null {
  const deadline = performance.now() + 100;
  let previous = first;
  while (performance.now() < deadline) {
    Atomics.wait(pause, 0, 0, 0.5);
    const state = readProcStat(pid)?.state;
    if (state === undefined || state === "Z" || state === "X") return null;
    const next = readCmdline(pid);
    if (next === null) return null;
    if (next === previous && next !== "") return next;
    previous = next;
  }
  return previous;
}

/** `ps` for one PID (macOS and other non-Linux POSIX systems): state and full command line. */
function psInfo(pid: number): { state: string; command: string } | null {
  try {
    const output = runToEndSync(["ps", "-ww", "-o", "stat=,command=", "-p", String(pid)]);
    const line = new TextDecoder().decode(output.stdout).trim();
    if (output.code !== 0 || line === "") return null;
    const space = line.indexOf(" ");
    return { state: line.slice(0, space), command: line.slice(space + 1) };
  } catch {
    return null;
  }
}

/**
 * True when `pid` is a live (non-zombie) process whose command line contains `marker`. The marker
 * (a job id) guards against PID reuse: a recycled PID belongs to a process without it.
 */
export function isOurProcessAlive(pid: number, marker: string): boolean {
  return processHolding(pid, marker) === "ours";
}

/**
 * Who holds `pid`, judged by `marker` on its command line: "ours" (a live process showing it), "other"
 * (a live process whose command line, read to the end of any exec under way, is not empty and lacks
 * it), or null (no live process, or one that cannot be told). Of a job's supervisor's PID, "other"
 * means the job's process group ended (the kernel gives out no PID that is still a group's id), and a
 * group with that id now is another's.
 */
export function processHolding(pid: number, marker: string): "ours" | "other" | null {
  if (isLinux) {
    const stat = readProcStat(pid);
    if (!stat || stat.state === "Z" || stat.state === "X") return null;
    const first = readCmdline(pid);
    if (first === null) return null;
    if (first.includes(marker)) return "ours";
    // A process in the middle of execve() shows an empty or half-read command line (a supervisor
    // launched through setsid(1) execs once more after we learn its PID, and on a loaded machine
    // that takes a while), so an answer without the marker is trusted only once two reads agree.
    const settled = settledCmdline(pid, first);
    if (settled === null) return null;
    // Still mid-exec, or empty for good (only kernel threads, which never run a job).
    if (settled === "") return stat.kernelThread ? null : "ours";
    return settled.includes(marker) ? "ours" : "other";
  }
  const info = psInfo(pid);
  if (info === null || info.state.startsWith("Z")) return null;
  return info.command.includes(marker) ? "ours" : info.command === "" ? null : "other";
}

/**
 * Linux: when process `pid` started (epoch seconds, to within about a second: the boot time is kept in
 * whole seconds), or null when it is gone, or elsewhere than on Linux.
 */
export function processStartTime(pid: number): number | null {
  const stat = isLinux ? readProcStat(pid) : null;
  return stat === null ? null : startedAt(stat);
}

/**
 * Linux: when live process `pid` started, in clock ticks after boot, exactly as /proc shows it (with
 * the PID, it names one process for the life of the host); null when it is gone or elsewhere.
 */
export function processStartTicks(pid: number): number | null {
  const stat = isLinux ? readProcStat(pid) : null;
  return stat === null || stat.state === "Z" || stat.state === "X" ? null : stat.startTicks;
}

/** When the process of `stat` started, in epoch seconds; null when the boot time cannot be read. */
function startedAt(stat: ProcInfo): number | null {
  try {
    bootTime ??= Number(/^btime (\d+)$/m.exec(Deno.readTextFileSync("/proc/stat"))?.[1]);
  } catch {
    return null;
  }
  const started = bootTime + stat.startTicks / 100;
  return Number.isFinite(started) ? started : null;
}

let bootTime: number | undefined;

/** True while any non-zombie process is in process group `pgid`. */
export function isGroupAlive(pgid: number): boolean {
  return liveGroups([pgid]).has(pgid);
}

/** A process group {@link liveGroups} found with a live member. */
export interface LiveGroup {
  /**
   * When the live process whose PID is the group's id (its leader) started, in epoch seconds as
   * {@link processStartTime} says; null when no leader is seen (it exited, or not on Linux).
   */
  leaderStarted: number | null;
  /** The same start in clock ticks after boot, exact (see {@link processStartTicks}); null likewise. */
  leaderTicks: number | null;
}

/**
 * Which of `pgids` still have a non-zombie member, each with its leader's start. On Linux one pass
 * over /proc answers for every group asked about: it costs a read of every process on the host (a
 * tenth of a second on a host of a thousand processes under load), so whoever asks about many groups
 * asks once (see abort_watch.ts), not once per group. Elsewhere a signal 0 probes each group.
 */
export function liveGroups(pgids: Iterable<number>): Map<number, LiveGroup> {
  const wanted = new Set(pgids);
  const live = new Map<number, LiveGroup>();
  if (wanted.size === 0) return live;
  if (!isLinux) {
    for (const pgid of wanted) if (signal(-pgid, 0)) live.set(pgid, { leaderStarted: null, leaderTicks: null });
    return live;
  }
  logScan(wanted.size);
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    const pid = Number(entry.name);
    const stat = readProcStat(pid);
    if (!stat || !wanted.has(stat.pgrp) || stat.state === "Z" || stat.state === "X") continue;
    const seen = live.get(stat.pgrp) ?? { leaderStarted: null, leaderTicks: null };
    if (pid === stat.pgrp) [seen.leaderStarted, seen.leaderTicks] = [startedAt(stat), stat.startTicks];
    live.set(stat.pgrp, seen);
  }
  return live;
}

/**
 * Test hook (read here, so no test-only option reaches the runner): with
 * ORCHESJOB_FLOW_TEST_SCAN_LOG=FILE, each pass over /proc appends `scan N` to FILE, N the number of
 * process groups it answered for.
 */
function logScan(groups: number): void {
  scanLog ??= readEnv("ORCHESJOB_FLOW_TEST_SCAN_LOG") ?? "";
  if (scanLog !== "") Deno.writeTextFileSync(scanLog, `scan ${groups}\n`, { append: true });
}

let scanLog: string | undefined;

/**
 * Sends `sig` (0 only probes) to a PID, or to a process group when `target` is negative.
 * Returns false when nothing received it.
 */
export function signal(target: number, sig: Deno.Signal | 0): boolean {
  try {
    if (sig === 0) {
      // Deno.kill has no signal 0; SIGCONT is harmless to a running process and tells the same.
      Deno.kill(target, "SIGCONT");
    } else {
      Deno.kill(target, sig);
    }
    return true;
  } catch {
    return false;
  }
}
