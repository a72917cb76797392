/** Shared by the fault tests: step commands that count their runs, crash-point runs, leftover-process checks. */
import assert from "node:assert/strict";
import { join } from "node:path";
import { isGroupAlive } from "../../src/executor/builtin/processes.ts";
import { CRASH_AT_VARIABLE, CRASH_LOG_VARIABLE, type CrashPoint } from "../../src/shared/mod.ts";
import { eventually, TEST_ENV } from "../helpers.ts";
import { type FlowEnv, type Json, step } from "./flow_env.ts";

/** A shell command that appends `id` to `log` (one line per run), then runs `then`. */
export function logged(log: string, id: string, then = "true"): string {
  return JSON.stringify(`echo ${id} >> '${log}'; ${then}`);
}

/** A shell snippet that waits until `path` exists. */
export function waitForFile(path: string): string {
  return `while [ ! -e '${path}' ]; do sleep 0.05; done`;
}

/** How many times each line occurs in `path` (an absent file: nothing ran). */
export function countLines(path: string): Record<string, number> {
  const counts: Record<string, number> = {};
  let text = "";
  try {
    text = Deno.readTextFileSync(path);
  } catch { /* nothing ran */ }
  for (const line of text.split("\n").filter(Boolean)) counts[line] = (counts[line] ?? 0) + 1;
  return counts;
}

/**
 * Runs the CLI with a crash requested at `point` and requires that it died by SIGKILL there
 * (unless `expectKilled` is false: the point is in a supervisor, not in this process). Returns the
 * crash log's lines, each "point pid".
 */
export async function runCrashingAt(
  env: FlowEnv,
  point: CrashPoint,
  args: string[],
  expectKilled = true,
): Promise<{ log: string[]; code: number }> {
  const logPath = join(env.home, `crash-${crypto.randomUUID()}.log`);
  const child = env.spawn(args, { [CRASH_AT_VARIABLE]: point, [CRASH_LOG_VARIABLE]: logPath });
  const output = await child.output();
  if (expectKilled) {
    assert.equal(
      output.signal,
      "SIGKILL",
      `expected a SIGKILL at ${point}: ${new TextDecoder().decode(output.stderr)}`,
    );
  }
  let text = "";
  try {
    text = Deno.readTextFileSync(logPath);
  } catch { /* no crash */ }
  const log = text.split("\n").filter(Boolean);
  assert.ok(log.length >= 1 && log.every((line) => line.startsWith(`${point} `)), `crash log: ${text}`);
  return { log, code: output.code };
}

/** The supervisors' PIDs (each its job's process group) of every built-in job under the home, from the claim files. */
export function jobGroups(home: string): number[] {
  const groups: number[] = [];
  try {
    for (const entry of Deno.readDirSync(join(home, "jobs"))) {
      // The claim file holds "PID" or "PID MARK", and on Linux " @START" (empty for a moment after the claim).
      if (!entry.isFile || !entry.name.endsWith(".claim")) continue;
      const pid = Number(/^\d+/.exec(Deno.readTextFileSync(join(home, "jobs", entry.name)))?.[0]);
      if (pid > 0) groups.push(pid);
    }
  } catch { /* no jobs */ }
  return groups;
}

/** Requires that no process of any job under the home is left (each job's process group is empty). */
export async function assertNoJobProcesses(home: string): Promise<void> {
  const groups = jobGroups(home);
  // The last supervisor may be writing its result as the run ends: give it a moment.
  await eventually("every job's process group is empty", () => groups.every((pgid) => !isGroupAlive(pgid)), 20);
}

/** Waits until `path` holds at least `lines` lines. */
export async function waitForLines(path: string, lines: number, seconds = 60): Promise<void> {
  await eventually(`${lines} line(s) in ${path}`, () => {
    try {
      return Deno.readTextFileSync(path).split("\n").filter(Boolean).length >= lines;
    } catch {
      return false;
    }
  }, seconds);
}

let mountable: boolean | undefined;

/** Whether this process may mount a tmpfs (root, outside a container that forbids it): tried once. */
export function canMount(): boolean {
  mountable ??= probeMount();
  return mountable;
}

function probeMount(): boolean {
  if (Deno.uid() !== 0) return false;
  const dir = Deno.makeTempDirSync({ prefix: "ojf-mount-probe-" });
  try {
    const mounted = new Deno.Command("mount", { args: ["-t", "tmpfs", "-o", "size=1m", "tmpfs", dir], stderr: "null" })
      .outputSync().success;
    if (mounted) new Deno.Command("umount", { args: [dir] }).outputSync();
    return mounted;
  } catch {
    return false; // no mount program
  } finally {
    Deno.removeSync(dir);
  }
}

/**
 * Makes `dir` and everything in it read-only for this process until disposed: bound read-only onto
 * itself for root (whom file modes do not stop; needs {@link canMount}), else files 0444 and
 * directories 0555, their modes restored afterwards.
 */
export function readOnlyHome(dir: string): Disposable {
  const mount = (...args: string[]) => new Deno.Command("mount", { args, stdout: "null", stderr: "null" }).outputSync();
  if (Deno.uid() === 0) {
    assert.ok(canMount() && mount("--bind", dir, dir).success, "bind the home onto itself (as root)");
    assert.ok(mount("-o", "remount,bind,ro", dir).success, "remount it read-only");
    return { [Symbol.dispose]: () => assert.ok(new Deno.Command("umount", { args: [dir] }).outputSync().success) };
  }
  const modes: [string, number][] = [];
  const walk = (path: string) => {
    const info = Deno.lstatSync(path);
    if (info.isSymlink) return;
    if (info.isDirectory) { for (const entry of Deno.readDirSync(path)) walk(join(path, entry.name)); }
    modes.push([path, info.mode! & 0o7777]);
    Deno.chmodSync(path, info.isDirectory ? 0o555 : 0o444);
  };
  walk(dir);
  return { [Symbol.dispose]: () => modes.reverse().forEach(([path, mode]) => Deno.chmodSync(path, mode)) };
}

/**
 * A small tmpfs (`options` such as "size=8m,nr_inodes=64") mounted on `dir`, which is made; unmounted
 * when disposed. Needs {@link canMount}.
 */
export function smallFilesystem(dir: string, options: string): Disposable {
  Deno.mkdirSync(dir);
  const mounted = new Deno.Command("mount", { args: ["-t", "tmpfs", "-o", options, "tmpfs", dir] }).outputSync();
  assert.ok(mounted.success, new TextDecoder().decode(mounted.stderr));
  return { [Symbol.dispose]: () => new Deno.Command("umount", { args: ["-l", dir] }).outputSync() };
}

/** Takes every inode left on `dir`'s filesystem with empty files in `dir/filler`; returns them, to free some. */
export function fillInodes(dir: string): string[] {
  const filler = join(dir, "filler");
  Deno.mkdirSync(filler);
  const made: string[] = [];
  for (;;) {
    const path = join(filler, String(made.length));
    try {
      Deno.writeFileSync(path, new Uint8Array());
    } catch {
      return made; // ENOSPC: no inode left
    }
    made.push(path);
  }
}

/** The uid and gid of `nobody`, whom {@link asNobody} runs commands as. */
const NOBODY = 65534;

/** Whether this process can run a command as another user: root, with setpriv(1). */
export function canRunAsNobody(): boolean {
  if (Deno.uid() !== 0) return false;
  try {
    return new Deno.Command("setpriv", { args: ["--version"], stdout: "null", stderr: "null" }).outputSync().success;
  } catch {
    return false;
  }
}

let nobodyDenoDir: string | undefined;

/**
 * A DENO_DIR that user nobody may use: Deno's cache usually sits in root's home, out of nobody's reach,
 * so its npm packages are copied into one of nobody's own (once per test file, removed at unload).
 */
function denoDirForNobody(): string {
  if (nobodyDenoDir !== undefined) return nobodyDenoDir;
  const info = new Deno.Command(Deno.execPath(), { args: ["info", "--json"], stderr: "null" }).outputSync();
  const source: string = JSON.parse(new TextDecoder().decode(info.stdout)).denoDir;
  const dir = Deno.makeTempDirSync({ prefix: "ojf-nobody-deno-" });
  globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));
  assert.ok(new Deno.Command("cp", { args: ["-R", join(source, "npm"), dir] }).outputSync().success, "copy npm cache");
  assert.ok(new Deno.Command("chown", { args: ["-R", `${NOBODY}:${NOBODY}`, dir] }).outputSync().success);
  nobodyDenoDir = dir;
  return dir;
}

/**
 * `setpriv` arguments and environment that run `argv` as user nobody (uid and gid 65534, no groups):
 * a reader without the rights of the state home's owner. Needs {@link canRunAsNobody}.
 */
export function asNobody(argv: readonly string[], env: Record<string, string>): Deno.CommandOptions {
  const denoDir = denoDirForNobody();
  return {
    args: [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, "--clear-groups", ...argv],
    cwd: "/",
    env: { ...env, DENO_DIR: denoDir, HOME: denoDir },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  };
}

/**
 * A run driven by a background driver (`start -d`) whose first step `hold` runs until the file `go`
 * exists; `next` is the flow's second step (by default `after`, which runs once `hold` succeeded).
 * Resolves once `hold`'s job runs.
 */
export async function gatedRun(
  env: FlowEnv,
  runKey: string,
  next = `{id: after, when: hold, command: ["true"]}`,
): Promise<{ go: string; file: string }> {
  const go = join(env.home, "go");
  const file = env.flow(
    "gated.yaml",
    `flow_id: gated\nsteps:\n  - {id: hold, command: ${JSON.stringify(waitForFile(go))}}\n  - ${next}\n`,
  );
  await env.json(["start", "--run-key", runKey, "-d", file]);
  await env.waitFor(runKey, "hold running", (run) => step(run, "hold").orchesjob_status?.status === "RUNNING");
  return { go, file };
}

/** Every job the orchesjob at `bin` has under `key` (`status --run-key KEY --all`), newest first. */
export async function jobsOf(bin: string, key: string): Promise<Json[]> {
  const out = await new Deno.Command(bin, {
    args: ["status", "--run-key", key, "--all"],
    env: TEST_ENV,
    stdout: "piped",
  })
    .output();
  assert.equal(out.code, 0, `status --run-key ${key} --all exited ${out.code}`);
  return JSON.parse(new TextDecoder().decode(out.stdout));
}
