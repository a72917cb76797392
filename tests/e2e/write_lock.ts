/**
 * The state file's write lock held by another process, as an admin's sqlite3 shell in a write
 * transaction holds it: here a helper process, checked to really hold it before a test goes on.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { collectText, eventually } from "../helpers.ts";
import type { FlowEnv } from "./flow_env.ts";

/** A helper process in a write transaction on the state file until it is let go, or `seconds` have passed. */
export interface HeldLock extends AsyncDisposable {
  /** Whether the helper has let go (the test did, or its own time ran out). */
  readonly released: () => boolean;
}

// Ends its transaction after its time, so that a test that hangs does not hold the lock for ever; the
// test lets go earlier by killing it (the kernel drops its locks, SQLite rolls the transaction back).
const HOLDER = `
import { DatabaseSync } from "node:sqlite";
const [path, seconds] = Deno.args;
const db = new DatabaseSync(path);
db.exec("BEGIN IMMEDIATE");
console.log("held");
await new Promise((resolve) => setTimeout(resolve, Number(seconds) * 1000));
db.exec("COMMIT");
`;

export async function holdWriteLock(env: FlowEnv, seconds: number): Promise<HeldLock> {
  const holder = new Deno.Command(Deno.execPath(), {
    args: ["eval", HOLDER, stateFile(env), String(seconds)],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  let exited = false;
  const status = holder.status.finally(() => (exited = true));
  const out = collectText(holder.stdout);
  await eventually("the helper holds the write lock", () => exited || out.text.includes("held"));
  assertLockHeld(env);
  return {
    released: () => exited,
    async [Symbol.asyncDispose]() {
      if (!exited) holder.kill("SIGKILL");
      await status;
      await out.done;
    },
  };
}

export function stateFile(env: FlowEnv): string {
  return Deno.realPathSync(join(env.home, "orchesjob-flow.sqlite3"));
}

/** Asserts that another process holds the state file's write lock: a write transaction is refused at once. */
export function assertLockHeld(env: FlowEnv): void {
  const probe = new DatabaseSync(stateFile(env));
  try {
    probe.exec("PRAGMA busy_timeout = 0");
    assert.throws(() => probe.exec("BEGIN IMMEDIATE"), /database is locked/, "the write lock is held");
  } finally {
    probe.close();
  }
}

/** The built-in runner's rows of `runKey`'s jobs, read straight from the state file (no job is relaunched). */
export function jobRows(env: FlowEnv, runKey: string): { job_id: string; status: string }[] {
  const db = new DatabaseSync(stateFile(env), { readOnly: true });
  try {
    return db.prepare("SELECT job_id, status FROM jobs WHERE run_key = ? ORDER BY attempt_no").all(runKey) as {
      job_id: string;
      status: string;
    }[];
  } finally {
    db.close();
  }
}
