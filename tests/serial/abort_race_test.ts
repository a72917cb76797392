/**
 * An abort that lands while a job's supervisor is starting the command: the command must not outlive
 * it. The supervisor is stopped (a test-only stop point, SIGSTOP) at the very line in question, so the
 * abort really arrives in that window; each test asserts that it did.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { pathExists } from "../../src/shared/mod.ts";
import {
  canSteerPids,
  CLI,
  cli,
  eventually,
  hasPending,
  processAlive,
  readPid,
  tempDir,
  TEST_ENV,
} from "../helpers.ts";

const SIGTERM = 15;

function isStopped(pid: number): boolean {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  return stat.slice(stat.lastIndexOf(")") + 2).startsWith("T");
}

/**
 * Starts a job whose command records its PID (then runs `rest`), with its supervisor stopped at
 * `point`; returns the supervisor's PID once it is stopped there, and where the command's PID goes.
 */
async function jobStoppedAt(home: string, point: string, rest: string) {
  const log = join(home, "stop.log");
  const pidFile = join(home, "command.pid");
  const env = { ORCHESJOB_FLOW_HOME: home, ORCHESJOB_FLOW_STOP_AT: point, ORCHESJOB_FLOW_CRASH_LOG: log };
  const script = `echo $$ > '${pidFile}'; ${rest}`;
  const started = await cli(["job", "start", "--run-key", "k", "--start-timeout", "0.5", "--", "sh", "-c", script], {
    env,
  });
  assert.equal(started.code, 0, started.stderr);
  let supervisor = 0;
  await eventually(`the supervisor stopped at ${point}`, () => {
    const line = (() => {
      try {
        return Deno.readTextFileSync(log);
      } catch {
        return "";
      }
    })();
    supervisor = Number(new RegExp(`^${point} (\\d+)\\n$`).exec(line)?.[1] ?? 0);
    return supervisor > 0 && isStopped(supervisor);
  });
  return { supervisor, pidFile };
}

function abortInBackground(home: string, graceSeconds = 1): Deno.ChildProcess {
  return new Deno.Command(CLI[0], {
    args: [...CLI.slice(1), "job", "abort", "--run-key", "k", "--grace-seconds", String(graceSeconds)],
    env: { ...TEST_ENV, ORCHESJOB_FLOW_HOME: home },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

Deno.test({
  name: "an abort that lands between the supervisor's last look and the command's start: SIGTERM ends the command",
  ignore: Deno.build.os !== "linux",
  fn: async () => {
    using home = tempDir();
    const { supervisor, pidFile } = await jobStoppedAt(home.path, "supervisor:before-command", "exec sleep 30");
    const abort = abortInBackground(home.path);
    // The abort's SIGTERM reached the supervisor while no command existed yet.
    await eventually("the abort signalled the stopped supervisor", () => hasPending(supervisor, SIGTERM));
    assert.equal(readPid(pidFile), null, "the command had not started");
    Deno.kill(supervisor, "SIGCONT");
    const done = await abort.output();
    assert.equal(done.code, 0, new TextDecoder().decode(done.stderr));
    // The supervisor went on to start the command after the abort. It ends it with SIGTERM at once,
    // and lives to record that (-15): not a SIGKILL of the whole group when the grace is over.
    const stdoutFile: string = JSON.parse(new TextDecoder().decode(done.stdout)).stdout_file;
    await eventually("the supervisor recorded how the command ended", () => {
      try {
        return Deno.readTextFileSync(stdoutFile.replace(/\.stdout$/, ".exit")) === "-15\n";
      } catch {
        return false;
      }
    }, 10);
    // (The SIGTERM may land before the command got as far as writing its PID.)
    const command = readPid(pidFile);
    assert.ok(command === null || !processAlive(command), `the command ${command} outlived its abort`);
  },
});

Deno.test({
  name: "an abort that finds the command started but its PID not yet recorded ends the command",
  ignore: Deno.build.os !== "linux",
  fn: async () => {
    using home = tempDir();
    const { supervisor, pidFile } = await jobStoppedAt(
      home.path,
      "supervisor:before-target",
      "trap '' TERM; while :; do sleep 0.1; done",
    );
    await eventually("the command runs", () => readPid(pidFile) !== null);
    const command = readPid(pidFile)!;
    const abort = abortInBackground(home.path);
    const done = await abort.output();
    assert.equal(done.code, 0, new TextDecoder().decode(done.stderr));
    const answer = JSON.parse(new TextDecoder().decode(done.stdout));
    // The situation: the abort knew no command PID (the supervisor had not written it).
    assert.equal(answer.target_pid, null);
    assert.equal(answer.status, "ABORTED");
    if (processAlive(command)) {
      Deno.kill(command, "SIGKILL");
      assert.fail(`the command ${command}, which ignores SIGTERM, outlived its abort`);
    }
    assert.ok(!processAlive(supervisor), "the stopped supervisor was killed");
  },
});

/**
 * Starts a process that leads a group of its own (setsid) with PID `pid`, by steering the kernel's next
 * PID from a shell that then forks it at once; returns its PID, or null if another process took it.
 */
async function processWithPid(pid: number): Promise<number | null> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const script = `echo ${pid - 1} > /proc/sys/kernel/ns_last_pid; setsid sleep 60 > /dev/null 2>&1 & echo $!`;
    const out = await new Deno.Command("sh", { args: ["-c", script], stderr: "null" }).output();
    const got = Number(new TextDecoder().decode(out.stdout));
    if (got === pid) return got;
    if (got > 0) Deno.kill(got, "SIGKILL");
  }
  return null;
}

Deno.test({
  name: "an abort whose job's group emptied during its grace never signals a group that took over its id",
  // Root on Linux only: the PID reuse is forced through /proc/sys/kernel/ns_last_pid.
  ignore: Deno.build.os !== "linux" || !canSteerPids(),
  fn: async () => {
    using home = tempDir();
    const [termed, release] = [join(home.path, "termed"), join(home.path, "release")];
    // The command notes the abort's SIGTERM and lives on until the test lets it end.
    const script = `trap 'echo > ${termed}' TERM; while [ ! -e ${release} ]; do sleep 0.05; done`;
    const env = { ORCHESJOB_FLOW_HOME: home.path };
    const started = await cli(["job", "start", "--run-key", "k", "--", "sh", "-c", script], { env });
    assert.equal(started.code, 0, started.stderr);
    const { worker_pid: supervisor, stdout_file: stdoutFile } = JSON.parse(started.stdout);
    const abort = abortInBackground(home.path, 3);
    let other: number | null = null;
    try {
      // The abort sent its SIGTERM and is in its grace: it is held there while the job ends by itself.
      await eventually("the command got the abort's SIGTERM", () => pathExists(termed));
      Deno.kill(abort.pid, "SIGSTOP");
      await eventually("the abort is held in its grace (stopped, not ended)", () => isStopped(abort.pid));
      Deno.writeTextFileSync(release, "");
      await eventually(
        "the job's supervisor recorded its end and exited",
        () => pathExists(stdoutFile.replace(/\.stdout$/, ".exit")) && !processAlive(supervisor),
      );
      // Its PID is free again once its parent (init, here) has reaped it.
      await eventually("the supervisor was reaped", () => !pathExists(`/proc/${supervisor}`));
      other = await processWithPid(supervisor);
      assert.ok(other !== null, `no process could be given PID ${supervisor}`);
      Deno.kill(abort.pid, "SIGCONT");
      const done = await abort.output();
      assert.equal(done.code, 0, new TextDecoder().decode(done.stderr));
      assert.ok(processAlive(other), "the unrelated process that took over the group's id was killed");
    } finally {
      try {
        Deno.kill(abort.pid, "SIGKILL");
      } catch { /* ended */ }
      if (other !== null && processAlive(other)) Deno.kill(other, "SIGKILL");
    }
  },
});
