/**
 * Test-only stop points (`ORCHESJOB_FLOW_STOP_AT`): a CLI process stops itself (SIGSTOP) at a named
 * line and says so in a log, for a test to act in that window. Linux only (the stop is watched in /proc).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { eventually, isStopped } from "../helpers.ts";
import type { FlowEnv } from "./flow_env.ts";

/** The text of the file at `path`, or "" while it does not exist. */
export function readLog(path: string): string {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return "";
  }
}

/**
 * Spawns the CLI with `args`, to stop at `point` (the first time it gets there); resolves once it is
 * stopped there, by its own line in the log. `finish` continues it and waits for its end.
 */
export async function spawnStopped(env: FlowEnv, args: string[], point: string, extraEnv: Record<string, string> = {}) {
  const { pid, finish } = await spawnStoppedAt(env, args, [point], extraEnv);
  return { pid, finish };
}

/**
 * {@link spawnStopped} at each of `points` in turn: resolves once it is stopped at the first;
 * `next(point)` continues it and resolves once it is stopped at that one, the next of `points`.
 */
export async function spawnStoppedAt(
  env: FlowEnv,
  args: string[],
  points: string[],
  extraEnv: Record<string, string> = {},
) {
  const log = join(env.home, `stop-${crypto.randomUUID()}.log`);
  const child = env.spawn(args, {
    ...extraEnv,
    ORCHESJOB_FLOW_STOP_AT: points.join(","),
    ORCHESJOB_FLOW_CRASH_LOG: log,
  });
  const output = child.output();
  let reached = 0;
  const stoppedAt = async (point: string) => {
    assert.equal(point, points[reached], `the stop after ${points.slice(0, reached).join(", ") || "none"}`);
    const seen = points.slice(0, reached + 1).map((p) => `${p} ${child.pid}\n`).join("");
    await eventually(`${args[0]} stopped at ${point}`, () => readLog(log) === seen && isStopped(child.pid));
    reached++;
  };
  await stoppedAt(points[0]);
  return {
    pid: child.pid,
    async next(point: string) {
      Deno.kill(child.pid, "SIGCONT");
      await stoppedAt(point);
    },
    async finish() {
      Deno.kill(child.pid, "SIGCONT");
      const result = await output;
      const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
      return { code: result.code, stdout: decode(result.stdout), stderr: decode(result.stderr) };
    },
  };
}

/**
 * `args` spawned to stop at `point`, for a test that signals the process itself (`child`) and must see
 * whether it ended on its own meanwhile (`exited`): resolves once it is stopped there, and fails if it
 * ended before getting there.
 */
export async function spawnStoppedChild(env: FlowEnv, args: string[], point: string) {
  const log = join(env.home, `stop-${crypto.randomUUID()}.log`);
  const child = env.spawn(args, { ORCHESJOB_FLOW_STOP_AT: point, ORCHESJOB_FLOW_CRASH_LOG: log });
  let exited = false;
  const output = child.output().finally(() => (exited = true));
  await eventually(
    `${args.join(" ")} stopped at ${point}`,
    () => exited || (readLog(log) === `${point} ${child.pid}\n` && isStopped(child.pid)),
  );
  assert.equal(exited, false, `${args[0]} ended before its stop at ${point}`);
  return { child, output, exited: () => exited };
}
