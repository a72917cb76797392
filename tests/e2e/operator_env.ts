/** Flows and helpers shared by the operator commands' end-to-end tests (list, logs, retry, clean, wait). */
import assert from "node:assert/strict";
import { join } from "node:path";
import { eventually, processAlive } from "../helpers.ts";
import type { FlowEnv, Json } from "./flow_env.ts";
import { readLog } from "./stop_point.ts";

export const builtin = ["builtin"] as const;
export const both = ["builtin", "external"] as const;

/** A step command that appends its id to `log` (so a test can count executions), then runs `then`. */
export function logged(log: string, id: string, then = "true"): string {
  return JSON.stringify(`echo ${id} >> '${log}'; ${then}`);
}

export function lines(path: string): string[] {
  try {
    return Deno.readTextFileSync(path).split("\n").filter(Boolean);
  } catch {
    return [];
  }
}

export const TWO_STEPS = `flow_id: two
steps:
  - {id: a, command: ["true"]}
  - {id: b, when: a, command: ["true"]}
`;

export const FAILING = `flow_id: bad
steps:
  - {id: a, command: "echo starting; echo 'cannot open /data/input.csv' >&2; exit 3"}
`;

export const SLEEPING = `flow_id: slow
steps:
  - {id: nap, command: ["sleep", "60"]}
`;

/** One step that ignores SIGTERM: only the SIGKILL at the end of an abort's grace ends it. */
export const STUBBORN = `flow_id: stubborn
steps:
  - {id: a, command: "trap '' TERM; while :; do sleep 0.1; done"}
`;

/**
 * A run that exists but that nobody drives: `start -d` while the test holds the driver lock creates
 * it PENDING and launches nothing.
 */
export async function undrivenRun(env: FlowEnv, runKey: string, file: string): Promise<Json> {
  using _lock = await env.holdDriverLock(runKey);
  const created = await env.json(["start", "--run-key", runKey, "-d", file]);
  assert.equal(created.detached, false);
  assert.equal(created.status, "PENDING");
  return created;
}

/** The path of one of the built-in runner's files of job `jobId` (`abort`, `claim`, `stdout`...). */
export function jobFile(env: FlowEnv, jobId: string, suffix: string): string {
  return join(env.home, "jobs", `${jobId}.${suffix}`);
}

/** Waits until job `jobId`'s supervisor has claimed it and exited; returns its PID. */
export async function supervisorGone(env: FlowEnv, jobId: string): Promise<number> {
  let pid = 0;
  await eventually("the job's supervisor claimed it and exited", () => {
    const claim = /^(\d+)/.exec(readLog(jobFile(env, jobId, "claim")));
    pid = claim ? Number(claim[1]) : 0;
    return pid > 0 && !processAlive(pid);
  });
  return pid;
}
