/**
 * Asking the OS about processes: is a PID alive and still the process we started (not a reused PID),
 * is anything left in a process group, and sending signals. Zombies count as gone: where PID 1 does
 * not reap (some containers), an exited supervisor stays a zombie forever.
 */
import { runToEndSync } from "../../shared/mod.ts";

const isLinux = Deno.build.os === "linux";

interface ProcInfo {
  state: string;
  pgrp: number;
}

/** Linux: state and process group from /proc/PID/stat (the name may hold spaces and parens). */
function readProcStat(pid: number): ProcInfo | null {
  try {
    const text = Deno.readTextFileSync(`/proc/${pid}/stat`);
    const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
    return { state: fields[0], pgrp: Number(fields[2]) };
  } catch {
    return null;
  }
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
  if (isLinux) {
    const stat = readProcStat(pid);
    if (!stat || stat.state === "Z" || stat.state === "X") return false;
    try {
      return Deno.readTextFileSync(`/proc/${pid}/cmdline`).includes(marker);
    } catch {
      return false;
    }
  }
  const info = psInfo(pid);
  return info !== null && !info.state.startsWith("Z") && info.command.includes(marker);
}

/** True while any non-zombie process is in process group `pgid`. */
export function isGroupAlive(pgid: number): boolean {
  if (isLinux) {
    for (const entry of Deno.readDirSync("/proc")) {
      if (!/^\d+$/.test(entry.name)) continue;
      const stat = readProcStat(Number(entry.name));
      if (stat && stat.pgrp === pgid && stat.state !== "Z" && stat.state !== "X") return true;
    }
    return false;
  }
  return signal(-pgid, 0);
}

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
