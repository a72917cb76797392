/**
 * The external adapter's failure paths, with small real programs that misbehave the ways a broken
 * orchesjob can (the real runner, through the wrapper, covers the working paths in the e2e suite).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { ExecutorError } from "../../src/executor/executor.ts";
import { ExternalExecutor } from "../../src/executor/external.ts";
import { chooseExecutor, findOnPath } from "../../src/executor/select.ts";
import { tempDir } from "../helpers.ts";

function script(dir: string, name: string, body: string): string {
  const path = join(dir, name);
  Deno.writeTextFileSync(path, `#!/bin/sh\n${body}\n`);
  Deno.chmodSync(path, 0o755);
  return path;
}

async function failure(promise: Promise<unknown>): Promise<ExecutorError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof ExecutorError) return error;
    throw error;
  }
  throw new Error("expected an ExecutorError");
}

Deno.test("a missing binary, a non-zero exit, non-JSON output and a timeout are typed errors", async () => {
  using dir = tempDir();
  const missing = await failure(new ExternalExecutor(join(dir.path, "absent")).status("k"));
  assert.equal(missing.kind, "missing");

  const crash = script(dir.path, "crash", 'echo "Traceback: database is locked" >&2; exit 1');
  const exited = await failure(new ExternalExecutor(crash).status("k"));
  assert.equal(exited.kind, "exit");
  assert.equal(exited.exitCode, 1);
  assert.equal(exited.stderrTail, "Traceback: database is locked");

  const chatty = script(dir.path, "chatty", "echo 'not json'");
  const output = await failure(new ExternalExecutor(chatty).running());
  assert.equal(output.kind, "output");

  const slow = script(dir.path, "slow", "exec sleep 10");
  // Had it not been cut off, sleep would have exited 0 with no output: an "output" error instead.
  const timeout = await failure(new ExternalExecutor(slow, 0.3).status("k"));
  assert.equal(timeout.kind, "timeout");
  assert.match(timeout.message, /slow status did not answer within 0.3 s$/);

  // A death by a signal of its own is not a timeout, and says which signal.
  const crashing = script(dir.path, "segv", "kill -SEGV $$");
  const killed = await failure(new ExternalExecutor(crashing, 30).status("k"));
  assert.equal(killed.kind, "signal");
  assert.match(killed.message, /segv status was killed by signal SIGSEGV$/);
});

Deno.test("races are answers, not errors: status exit 3 is 'never started'; abort exit 4 is 'already finished'", async () => {
  using dir = tempDir();
  const notFound = script(dir.path, "nf", 'echo "orchesjob: run_key not found" >&2; exit 3');
  assert.equal(await new ExternalExecutor(notFound).status("k"), null);
  assert.equal(await new ExternalExecutor(notFound).abort("k", { graceSeconds: 1 }), null);
  const finished = script(
    dir.path,
    "fin",
    `case $1 in abort) echo "orchesjob: Job is not running" >&2; exit 4 ;; status) echo '${
      JSON.stringify(job("k", "SUCCEEDED"))
    }' ;; esac`,
  );
  assert.deepEqual(await new ExternalExecutor(finished).abort("k", { graceSeconds: 1 }), job("k", "SUCCEEDED"));
});

Deno.test("unlock: its arguments as orchesjob takes them; exit 3 (no key) and 4 (active job) are false, not errors", async () => {
  using dir = tempDir();
  const argsFile = join(dir.path, "args");
  const answer = (code: number) =>
    script(dir.path, `unlock-${code}`, `printf '%s\\n' "$@" > '${argsFile}'; echo '{"unlocked": true}'; exit ${code}`);
  const options = { reason: "why not", ttlSec: 3600 };
  assert.equal(await new ExternalExecutor(answer(0)).unlock("k:a:1", options), true);
  assert.deepEqual(Deno.readTextFileSync(argsFile).trim().split("\n"), [
    "unlock",
    "--run-key",
    "k:a:1",
    "--reason",
    "why not",
    "--ttl",
    "3600",
  ]);
  assert.equal(await new ExternalExecutor(answer(3)).unlock("k:a:1", options), false);
  assert.equal(await new ExternalExecutor(answer(4)).unlock("k:a:1", options), false);
  const usage = await failure(new ExternalExecutor(answer(2)).unlock("k:a:1", options));
  assert.deepEqual([usage.kind, usage.exitCode], ["exit", 2]);
});

/** A job of orchesjob's contract (the fields the engine reads), under `runKey` with `status`. */
function job(runKey: string | null, status: string): Record<string, unknown> {
  return {
    job_id: "7d0c6f0e",
    run_key: runKey,
    status,
    exit_code: status === "SUCCEEDED" ? 0 : null,
    target_pid: 4242,
    started_at: 1764000000,
    finished_at: status === "SUCCEEDED" ? 1764000001 : null,
    updated_at: 1764000001,
  };
}

Deno.test("answers that are well-formed JSON but no job of the key asked for are output faults", async () => {
  using dir = tempDir();
  const answering = (name: string, json: unknown) =>
    new ExternalExecutor(script(dir.path, name, `echo '${JSON.stringify(json)}'`));
  const cases: [string, (executor: ExternalExecutor) => Promise<unknown>, unknown, RegExp][] = [
    ["start-null", (e) => e.start("k", ["true"], { strict: false }), null, /expected a job object, got null/],
    ["status-empty", (e) => e.status("k"), {}, /job_id is missing/],
    ["status-string", (e) => e.status("k"), "SUCCEEDED", /got string/],
    ["status-array", (e) => e.status("k"), [job("k", "RUNNING")], /got an array/],
    ["status-pending", (e) => e.status("k"), job("k", "PENDING"), /status "PENDING" is not one of STARTING, /],
    ["status-other", (e) => e.status("k"), job("other", "SUCCEEDED"), /run_key is "other", not the key asked/],
    ["abort-exit", (e) => e.abort("k", { graceSeconds: 1 }), { ...job("k", "ABORTED"), exit_code: "-9" }, /exit_/],
    ["running-null", (e) => e.running(), [job("a", "RUNNING"), null], /running printed no job .*got null/],
    ["running-pid", (e) => e.running(), [{ ...job("a", "RUNNING"), target_pid: 1.5 }], /target_pid is 1.5/],
  ];
  for (const [name, call, json, problem] of cases) {
    const error = await failure(call(answering(name, json)));
    assert.equal(error.kind, "output", name);
    assert.match(error.message, /printed no job of orchesjob's shape/, name);
    assert.match(error.message, problem, name);
  }
  // The contract's own answers pass: any key (or none) in the running list, the key asked for otherwise.
  const running = [job("a", "RUNNING"), job(null, "STARTING")];
  assert.deepEqual(await answering("running", running).running(), running);
  assert.deepEqual(await answering("status", job("k", "LOST")).status("k"), job("k", "LOST"));
});

Deno.test("executor selection: flag, ORCHESJOB_BIN, orchesjob on PATH, else built in; builtin with a flag is refused", () => {
  using dir = tempDir();
  const onPath = script(dir.path, "orchesjob", "exit 0");
  const env = (vars: Record<string, string>) => (name: string) => vars[name];
  assert.deepEqual(chooseExecutor("auto", "/opt/oj", env({ ORCHESJOB_BIN: "/x" })), {
    kind: "orchesjob",
    bin: "/opt/oj",
  });
  assert.deepEqual(chooseExecutor("auto", undefined, env({ ORCHESJOB_BIN: "/x" })), { kind: "orchesjob", bin: "/x" });
  assert.deepEqual(chooseExecutor("auto", undefined, env({ PATH: `/nonexistent:${dir.path}` })), {
    kind: "orchesjob",
    bin: onPath,
  });
  assert.deepEqual(chooseExecutor("auto", undefined, env({ PATH: "/nonexistent" })), { kind: "builtin" });
  // The built-in runner calls no orchesjob: a path given with it would be ignored, so the pair is refused.
  assert.throws(
    () => chooseExecutor("builtin", "/opt/oj", env({})),
    /^ExecutorChoiceError: --executor builtin and --orchesjob-bin "\/opt\/oj" contradict each other/,
  );
  // $ORCHESJOB_BIN is only a default: an explicit --executor builtin overrides it.
  assert.deepEqual(chooseExecutor("builtin", undefined, env({ ORCHESJOB_BIN: "/x" })), { kind: "builtin" });
  assert.throws(() => chooseExecutor("orchesjob", undefined, env({ PATH: "" })), /no orchesjob found/);
  Deno.chmodSync(onPath, 0o644);
  assert.equal(findOnPath("orchesjob", dir.path), undefined, "a file that is not executable does not count");
});

Deno.test("output is read up to a limit: a huge answer is an output fault naming it, not all in memory", async () => {
  using dir = tempDir();
  const huge = script(dir.path, "huge", "head -c 20971520 /dev/zero | tr '\\0' x");
  const flood = await failure(new ExternalExecutor(huge).status("k"));
  assert.equal(flood.kind, "output");
  assert.match(flood.message, /huge status printed more than 4 MiB on stdout \(the limit\)$/);
  // Only the end of stderr is shown, so only its end is kept.
  const noisy = script(dir.path, "noisy", "head -c 20971520 /dev/zero | tr '\\0' x >&2; echo ' locked' >&2; exit 1");
  const exited = await failure(new ExternalExecutor(noisy).status("k"));
  assert.equal(exited.exitCode, 1);
  assert.match(exited.stderrTail, /^x{400,} locked$/);
});

Deno.test("logs keeps what the range asks for while reading, and refuses an output beyond its limit", async () => {
  using dir = tempDir();
  // 20 MiB of NUL, then "end\n", of which the driver wants the last bytes.
  const big = script(dir.path, "big", "head -c 20971520 /dev/zero; echo end");
  const executor = new ExternalExecutor(big);
  const text = (bytes: Uint8Array | null) => new TextDecoder().decode(bytes!);
  assert.equal(text(await executor.logs({ runKey: "k" }, "stderr", { last: 6 })), "\0\0end\n");
  assert.equal(text(await executor.logs({ runKey: "k" }, "stdout", { from: 20971518, max: 3 })), "\0\0e");
  // More than the 256 MiB that a whole read keeps.
  script(dir.path, "big", "head -c 314572800 /dev/zero; echo end");
  const whole = await failure(executor.logs({ runKey: "k" }, "stdout"));
  assert.equal(whole.kind, "output");
  assert.match(whole.message, /big logs printed more than 256 MiB on stdout \(the limit\)$/);
});
