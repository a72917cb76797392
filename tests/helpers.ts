/** Test helpers: run the real CLI as a subprocess, and give each test its own temporary directory. */
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";

export const REPO = fileURLToPath(new URL("..", import.meta.url));
export const MAIN = join(REPO, "main.ts");
export const CONFIG = join(REPO, "deno.json");

/** The argv that runs the CLI under this Deno: `deno run -A --config deno.json main.ts`. */
export const CLI = [Deno.execPath(), "run", "--allow-all", "--no-prompt", "--config", CONFIG, MAIN];

/**
 * `path` (a PATH value) without the directories that hold an `orchesjob`. Left to choose (`auto`), the
 * CLI takes an orchesjob found on PATH over its built-in runner: on a machine where orchesjob is
 * installed, every test meant for the built-in runner would drive that one instead.
 */
export function withoutOrchesjob(path: string): string {
  return path.split(":").filter((dir) => {
    try {
      Deno.statSync(join(dir || ".", "orchesjob"));
      return false;
    } catch {
      return true;
    }
  }).join(":");
}

/** The PATH the tests give the CLI: the caller's, without orchesjob. */
export const TEST_PATH = withoutOrchesjob(Deno.env.get("PATH") ?? "/usr/bin:/bin");

/**
 * Variables every CLI under test gets, over the inherited environment: what the caller may have set
 * for their own use (an orchesjob, a call limit, the debug and test hooks) must not change what a
 * test sees. A test sets what it needs after these.
 */
export const TEST_ENV: Readonly<Record<string, string>> = {
  NO_COLOR: "1",
  PATH: TEST_PATH,
  ORCHESJOB_BIN: "",
  ORCHESJOB_FLOW_CALL_TIMEOUT: "",
  ORCHESJOB_FLOW_CRASH_AT: "",
  ORCHESJOB_FLOW_CRASH_LOG: "",
  ORCHESJOB_FLOW_STOP_AT: "",
  ORCHESJOB_FLOW_DEBUG: "",
  ORCHESJOB_FLOW_TEST_NOTIFY_LOG: "",
  ORCHESJOB_FLOW_TEST_LOSE_NOTIFICATIONS: "",
};

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  env?: Record<string, string>;
  cwd?: string;
  stdin?: string;
}

/** Runs `orchesjob-flow ARGS…` and waits for it. The environment is inherited, then {@link TEST_ENV}, then `env`. */
export async function cli(args: string[], options: CliOptions = {}): Promise<CliResult> {
  const child = new Deno.Command(CLI[0], {
    args: [...CLI.slice(1), ...args],
    cwd: options.cwd ?? REPO,
    env: { ...TEST_ENV, ...options.env },
    stdin: options.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (options.stdin !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(options.stdin));
    await writer.close();
  }
  const output = await child.output();
  const decoder = new TextDecoder();
  return { code: output.code, stdout: decoder.decode(output.stdout), stderr: decoder.decode(output.stderr) };
}

/** Parses the single JSON error line a failing command must print on stderr. */
export function errorLine(result: CliResult): { error: string } {
  const lines = result.stderr.split("\n").filter((line) => line !== "");
  if (lines.length !== 1) throw new Error(`expected one stderr line, got ${JSON.stringify(result.stderr)}`);
  return JSON.parse(lines[0]);
}

/** A fresh temporary directory, removed when the returned disposable is disposed. */
export function tempDir(prefix = "ojf-test-"): { path: string } & Disposable {
  const path = Deno.makeTempDirSync({ prefix });
  return {
    path,
    [Symbol.dispose]() {
      Deno.removeSync(path, { recursive: true });
    },
  };
}

/** Writes `text` to `dir/name` and returns the path. */
export function writeFile(dir: string, name: string, text: string): string {
  const path = join(dir, name);
  Deno.writeTextFileSync(path, text);
  return path;
}

/** Runs `fn`, which must throw an instance of `type`, and returns what it threw. */
export function thrown<T extends Error>(fn: () => unknown, type: new (...args: never[]) => T): T {
  try {
    fn();
  } catch (error) {
    if (error instanceof type) return error;
    throw new Error(`expected ${type.name}, got ${error}`);
  }
  throw new Error(`expected ${type.name}, nothing was thrown`);
}

/**
 * A two-line script that makes `orchesjob-flow job` an orchesjob binary, exactly as an operator would
 * write it for ORCHESJOB_BIN. Returns its path. With `home`, the script sets ORCHESJOB_FLOW_HOME itself:
 * a test must not set it in its own environment, which test files run with `--parallel` share.
 */
export function writeJobWrapper(dir: string, home?: string): string {
  const quote = (arg: string) => `'${arg.replaceAll("'", "'\\''")}'`;
  const quoted = CLI.map(quote).join(" ");
  const path = join(dir, "orchesjob-wrapper");
  const setHome = home === undefined ? "" : `ORCHESJOB_FLOW_HOME=${quote(home)} `;
  Deno.writeTextFileSync(path, `#!/bin/sh\n${setHome}exec ${quoted} job "$@"\n`);
  Deno.chmodSync(path, 0o755);
  return path;
}

/** True while `pid` is a live process (zombies count as gone: PID 1 may not reap them here). */
export function processAlive(pid: number): boolean {
  if (Deno.build.os === "linux") {
    try {
      const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
      return !/^[ZX]/.test(stat.slice(stat.lastIndexOf(")") + 2));
    } catch {
      return false;
    }
  }
  const out = new Deno.Command("ps", { args: ["-o", "stat=", "-p", String(pid)] }).outputSync();
  const state = new TextDecoder().decode(out.stdout).trim();
  return out.success && state !== "" && !state.startsWith("Z");
}

/**
 * Waits until `check` holds, polling; throws with `what` if it does not within `seconds` (generous: a
 * limit for a loaded machine, never a measurement).
 */
export async function eventually(what: string, check: () => boolean | Promise<boolean>, seconds = 60): Promise<void> {
  const deadline = Date.now() + seconds * 1000;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`timed out waiting for: ${what}`);
}

/** True once `pid` catches `signal` (Linux: its SigCgt mask); elsewhere it cannot tell, and answers true. */
export function catchesSignal(pid: number, signal: number): boolean {
  return Deno.build.os !== "linux" || signalMasks(pid, ["SigCgt"], signal);
}

/** True while `pid` has `signal` pending, for the process or a thread (Linux only: ShdPnd, SigPnd). */
export function hasPending(pid: number, signal: number): boolean {
  return signalMasks(pid, ["ShdPnd", "SigPnd"], signal);
}

/** Whether any of the named masks of /proc/PID/status has `signal` set; false once the process is gone. */
function signalMasks(pid: number, names: string[], signal: number): boolean {
  try {
    const status = Deno.readTextFileSync(`/proc/${pid}/status`);
    return names.some((name) => {
      const mask = new RegExp(`^${name}:\\s*([0-9a-f]+)$`, "m").exec(status)?.[1] ?? "0";
      return (BigInt(`0x${mask}`) >> BigInt(signal - 1) & 1n) === 1n;
    });
  } catch {
    return false;
  }
}

/**
 * True once process `pid` has `path` open (Linux, from /proc/PID/fd): evidence that a command has got as
 * far as reading its state, for tests that must know it is waiting before they let the run go on.
 * Elsewhere it cannot tell, and answers true.
 */
export function hasOpen(pid: number, path: string): boolean {
  if (Deno.build.os !== "linux") return true;
  try {
    for (const entry of Deno.readDirSync(`/proc/${pid}/fd`)) {
      try {
        if (Deno.readLinkSync(`/proc/${pid}/fd/${entry.name}`) === path) return true;
      } catch { /* closed meanwhile */ }
    }
  } catch { /* not started, or gone */ }
  return false;
}

/**
 * Reads `stream` to its end in the background. `text` is what has arrived so far (for `eventually`
 * checks while the writer runs); `done` resolves to all of it.
 */
export function collectText(stream: ReadableStream<Uint8Array>): { readonly text: string; done: Promise<string> } {
  const collected = { text: "", done: Promise.resolve("") };
  collected.done = (async () => {
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) collected.text += chunk;
    return collected.text;
  })();
  return collected;
}

/** Whether `pid` is stopped (SIGSTOP): Linux only, from /proc. */
export function isStopped(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return stat.slice(stat.lastIndexOf(")") + 2).startsWith("T");
  } catch {
    return false;
  }
}

/** The number of the system call the main thread of `pid` is in (Linux: /proc/PID/syscall), or null. */
function mainThreadSyscall(pid: number): string | null {
  try {
    return Deno.readTextFileSync(`/proc/${pid}/syscall`).split(" ")[0];
  } catch {
    return null;
  }
}

/** On this machine's architecture (Linux, x86_64 or aarch64), the numbers of the calls named. */
function syscallNumbers(calls: { x86_64: string[]; aarch64: string[] }): string[] | undefined {
  return Deno.build.os === "linux" ? calls[Deno.build.arch as "x86_64" | "aarch64"] : undefined;
}

/**
 * True while the main thread of `pid` sleeps in nanosleep or clock_nanosleep, as it does only in
 * SQLite's busy handler, a statement's wait for a lock another process holds (the event loop's waits
 * are epoll's). Where it cannot tell (not Linux on x86_64 or aarch64), it answers true.
 */
export function inLockBusyWait(pid: number): boolean {
  const sleeps = syscallNumbers({ x86_64: ["35", "230"], aarch64: ["101", "115"] });
  return sleeps === undefined || sleeps.includes(mainThreadSyscall(pid) ?? "");
}

/**
 * True while the main thread of `pid` waits in the event loop (epoll), not running JavaScript nor
 * in a blocking call. Where it cannot tell (not Linux on x86_64 or aarch64), it answers true.
 */
export function inEventLoopWait(pid: number): boolean {
  const waits = syscallNumbers({ x86_64: ["232", "281"], aarch64: ["22"] });
  return waits === undefined || waits.includes(mainThreadSyscall(pid) ?? "");
}

/** The PIDs of the children of `pid`, of all its threads (Linux: /proc/PID/task/TID/children). */
export function childrenOf(pid: number): number[] {
  const children: number[] = [];
  try {
    for (const task of Deno.readDirSync(`/proc/${pid}/task`)) {
      const text = Deno.readTextFileSync(`/proc/${pid}/task/${task.name}/children`).trim();
      if (text !== "") children.push(...text.split(" ").map(Number));
    }
  } catch {
    // Gone, or a thread gone meanwhile: what was read.
  }
  return children;
}

/** Whether this process may steer the next PID (root, Linux: /proc/sys/kernel/ns_last_pid is writable). */
export function canSteerPids(): boolean {
  try {
    Deno.writeTextFileSync("/proc/sys/kernel/ns_last_pid", Deno.readTextFileSync("/proc/sys/kernel/ns_last_pid"));
    return true;
  } catch {
    return false;
  }
}

/** The PID a process wrote to `path` as one line, once the line is whole; null before. */
export function readPid(path: string): number | null {
  try {
    const text = Deno.readTextFileSync(path);
    return text.endsWith("\n") ? Number(text) : null;
  } catch {
    return null;
  }
}

/**
 * CPU time (user + system, microseconds) of the calling thread on Linux, elsewhere of the whole
 * process. `deno task test` runs test files in parallel as threads of one process, so the process's
 * CPU time also counts the other files' work; a bound on a test's own work must read its thread's.
 */
export function cpuMicroseconds(): number {
  if (Deno.build.os === "linux") {
    // Sync, so read on this thread. utime and stime are fields 14 and 15, in USER_HZ (100) ticks.
    const stat = Deno.readTextFileSync("/proc/thread-self/stat");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) * 10_000;
  }
  const { user, system } = process.cpuUsage();
  return user + system;
}

/** mulberry32: a small seeded generator, so a generated test's failure can be replayed from its seed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * SIGKILLs every process (but this one) whose command line or environment mentions `text` (a test's
 * own temporary directory), Linux only: a test that fails, or is killed, with a step still waiting
 * for a file in its directory would leave that command polling for ever once the directory is gone.
 */
export function killProcessesMentioning(text: string): void {
  if (Deno.build.os !== "linux") return;
  for (const entry of Deno.readDirSync("/proc")) {
    const pid = Number(entry.name);
    if (!Number.isInteger(pid) || pid === Deno.pid) continue;
    try {
      const cmdline = Deno.readTextFileSync(`/proc/${pid}/cmdline`);
      if (cmdline.includes(text) || Deno.readTextFileSync(`/proc/${pid}/environ`).includes(text)) {
        Deno.kill(pid, "SIGKILL");
      }
    } catch { /* gone, or not ours to read */ }
  }
}

/** The one JSON object `line` is, or null when it is anything else (no JSON, an array, a string): a stderr line's shape. */
export function jsonObjectLine(line: string): Record<string, unknown> | null {
  try {
    const parsed: unknown = JSON.parse(line);
    return typeof parsed === "object" && parsed !== null && !Array.isArray(parsed)
      ? parsed as Record<string, unknown>
      : null;
  } catch {
    return null;
  }
}
