/**
 * runToEnd against programs that misbehave the ways a broken orchesjob (or its wrapper) can: a
 * descendant in another session holding the pipes. The test sanitizers check that no timer, pipe or
 * child is left behind.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { runToEnd, SpawnError } from "../../src/shared/mod.ts";
import { processAlive, tempDir } from "../helpers.ts";

/** A shell script in `dir` that first starts `sleep 30` in a session of its own (its PID in `daemon.pid`). */
function withDaemon(dir: string, then: string): { script: string; daemonPid: () => number } {
  const pidFile = join(dir, "daemon.pid");
  const script = join(dir, "prog");
  Deno.writeTextFileSync(script, `#!/bin/sh\nsetsid sleep 30 &\necho $! > '${pidFile}'\n${then}\n`);
  Deno.chmodSync(script, 0o755);
  return { script, daemonPid: () => Number(Deno.readTextFileSync(pidFile)) };
}

function stop(pid: number): void {
  try {
    Deno.kill(pid, "SIGKILL");
  } catch { /* gone */ }
}

Deno.test("a call past its limit ends at the limit although a process in another session holds its pipes", async () => {
  using dir = tempDir();
  const { script, daemonPid } = withDaemon(dir.path, "exec sleep 30");
  const began = performance.now();
  const error = await runToEnd([script], { timeoutSec: 0.5 }).catch((error) => error);
  const seconds = (performance.now() - began) / 1000;
  try {
    assert.ok(error instanceof SpawnError && error.kind === "timeout", String(error));
    assert.ok(seconds < 5, `took ${seconds} s`);
    assert.ok(processAlive(daemonPid()), "the daemon (out of the group's reach) still held the pipes");
  } finally {
    stop(daemonPid());
  }
});

Deno.test("a program that exited is answered at once although a descendant still holds its pipes", async () => {
  using dir = tempDir();
  const { script, daemonPid } = withDaemon(dir.path, "echo answer");
  for (const timeoutSec of [20, undefined]) {
    const began = performance.now();
    const finished = await runToEnd([script], timeoutSec === undefined ? {} : { timeoutSec });
    const seconds = (performance.now() - began) / 1000;
    try {
      assert.equal(finished.code, 0);
      assert.equal(new TextDecoder().decode(finished.stdout), "answer\n");
      assert.ok(seconds < 5, `took ${seconds} s (limit ${timeoutSec})`);
      assert.ok(processAlive(daemonPid()), "the daemon still held the pipes");
    } finally {
      stop(daemonPid());
    }
  }
});
