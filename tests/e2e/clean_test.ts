/** `clean` through the real CLI: what goes, what stays, and that unfinished or held runs are never touched. */
import assert from "node:assert/strict";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { errorLine, eventually, processAlive } from "../helpers.ts";
import { type FlowEnv, flowTest, type Json, statuses, step } from "./flow_env.ts";
import { builtin, FAILING, SLEEPING, STUBBORN, TWO_STEPS } from "./operator_env.ts";
import { runCrashingAt } from "./fault_helpers.ts";
import { spawnStopped } from "./stop_point.ts";
import { assertLockHeld, holdWriteLock, stateFile } from "./write_lock.ts";

function files(env: FlowEnv, dir: string): string[] {
  try {
    const names = readdirSync(join(env.home, dir)).sort();
    // jobs/ended/ (the job-end hints that drivers watch) stays; what is in it is listed as ended/NAME.
    if (dir !== "jobs" || !names.includes("ended")) return names;
    return [...names.filter((name) => name !== "ended"), ...files(env, "jobs/ended").map((name) => `ended/${name}`)];
  } catch {
    return [];
  }
}

/** Waits until no process drives the run (a detached driver has exited). */
async function undriven(env: FlowEnv, runKey: string): Promise<void> {
  await eventually(`${runKey} has no driver`, async () => {
    const [run] = (await env.json(["list", "--limit", "0"])).filter((r: Json) => r.run_key === runKey);
    return run.driver === null;
  }, 60);
}

flowTest(builtin, "clean deletes finished runs with their jobs, files, driver logs and lock files", async (env) => {
  const detached = await env.json(["start", "--run-key", "ok1", "-d", env.flow("two.yaml", TWO_STEPS)]);
  await env.json(["start", "--run-key", "f1", env.flow("bad.yaml", FAILING)], 1);
  await env.waitFor("ok1", "it ends", (run) => run.status === "SUCCEEDED");
  await undriven(env, "ok1");
  const jobIds = async (key: string) => (await env.jobs(key)).map((job: Json) => job.job_id);
  const ok1Jobs = [...await jobIds("ok1:a:1"), ...await jobIds("ok1:b:1")];
  const f1Jobs = await jobIds("f1:a:1");
  assert.equal(ok1Jobs.length, 2);
  assert.equal(f1Jobs.length, 1);
  assert.ok(existsSync(detached.stdout_log) && existsSync(detached.stderr_log));
  assert.deepEqual(files(env, "locks"), [
    "f1.driver.lock",
    "f1.gate.lock",
    "ok1.driver.lock",
    "ok1.gate.lock",
    "ok1.launch.lock",
  ]);
  const jobFiles = files(env, "jobs");
  for (const id of [...ok1Jobs, ...f1Jobs]) assert.ok(jobFiles.some((name) => name.startsWith(id)), id);

  // Too recent to delete; but the lock files of finished runs that nobody holds go.
  const recent = await env.json(["clean", "--older-than", "1h"]);
  assert.deepEqual(recent.runs, []);
  assert.deepEqual(recent.lock_files.map((path: string) => path.split("/").at(-1)).sort(), [
    "f1.driver.lock",
    "f1.gate.lock",
    "ok1.driver.lock",
    "ok1.gate.lock",
    "ok1.launch.lock",
  ]);
  assert.deepEqual(files(env, "locks"), []);
  assert.equal((await env.status("ok1")).status, "SUCCEEDED");

  // A dry run reports and changes nothing.
  const before = { ok1: await env.status("ok1"), f1: await env.status("f1"), jobs: files(env, "jobs") };
  const dry = await env.json(["clean", "--older-than", "0", "--dry-run"]);
  assert.equal(dry.dry_run, true);
  assert.deepEqual(dry.runs.map((run: Json) => run.run_key).sort(), ["f1", "ok1"]);
  assert.deepEqual(dry.runs.find((run: Json) => run.run_key === "ok1").jobs.sort(), ok1Jobs.sort());
  assert.deepEqual(
    dry.runs.find((run: Json) => run.run_key === "ok1").files.sort(),
    [detached.stderr_log, detached.stdout_log],
  );
  assert.deepEqual({ ok1: await env.status("ok1"), f1: await env.status("f1"), jobs: files(env, "jobs") }, before);
  assert.ok(existsSync(detached.stdout_log));
  assert.deepEqual(files(env, "locks"), [], "a dry run creates no lock files");

  // --status narrows it down.
  const failedOnly = await env.json(["clean", "--older-than", "0s", "--status", "FAILED"]);
  assert.deepEqual(failedOnly.runs.map((run: Json) => run.run_key), ["f1"]);
  assert.deepEqual(failedOnly.runs[0].jobs, f1Jobs);
  assert.equal((await env.run(["status", "--run-key", "f1"])).code, 3);
  assert.deepEqual(await env.jobs("f1:a:1"), []);
  assert.ok(!files(env, "jobs").some((name) => name.startsWith(f1Jobs[0])), "f1's job files are gone");
  assert.equal((await env.status("ok1")).status, "SUCCEEDED");

  const all = await env.json(["clean", "--older-than", "0"]);
  assert.deepEqual(all.runs.map((run: Json) => run.run_key), ["ok1"]);
  assert.deepEqual(all.errors, []);
  assert.equal((await env.run(["status", "--run-key", "ok1"])).code, 3);
  assert.deepEqual(await env.jobs("ok1:a:1"), []);
  assert.deepEqual(files(env, "jobs"), []);
  assert.deepEqual(files(env, "logs"), []);
  assert.deepEqual(files(env, "locks"), []);
  assert.deepEqual(await env.json(["list"]), []);
  // Nothing left to do: the same command again deletes nothing.
  const again = await env.json(["clean", "--older-than", "0"]);
  assert.deepEqual([again.runs, again.lock_files, again.skipped], [[], [], []]);
});

flowTest(builtin, "clean never touches an unfinished run: one driven, one whose driver was killed", async (env) => {
  const go = join(env.home, "go");
  const gated = env.flow(
    "gated.yaml",
    `flow_id: gated\nsteps:\n  - {id: hold, command: ${
      JSON.stringify(`while [ ! -f '${go}' ]; do sleep 0.05; done`)
    }}\n`,
  );
  await env.json(["start", "--run-key", "done", env.flow("two.yaml", TWO_STEPS)]);
  await env.json(["start", "--run-key", "held", env.flow("bad.yaml", FAILING)], 1);
  const running = await env.json(["start", "--run-key", "running", "-d", env.flow("slow.yaml", SLEEPING)]);
  const orphan = await env.json(["start", "--run-key", "orphan", "-d", gated]);
  try {
    // Each step's job has started (a step is RUNNING a moment before its job exists): from here on
    // neither run changes until the test says so.
    const jobRunning = (id: string) => (run: Json) => step(run, id).orchesjob_status?.status === "RUNNING";
    await env.waitFor("running", "nap's job running", jobRunning("nap"));
    await env.waitFor("orphan", "hold's job running", jobRunning("hold"));
    // Kill the orphan's driver outright: its run stays RUNNING with nobody driving it.
    Deno.kill(orphan.pid, "SIGKILL");
    await eventually("the orphan's driver is dead", () => !processAlive(orphan.pid));
    await undriven(env, "orphan");
    const listed = await env.json(["list"]);
    const byKey = Object.fromEntries(listed.map((run: Json) => [run.run_key, run]));
    assert.equal(byKey.orphan.status, "RUNNING", "the situation under test: an unfinished run with no driver");
    assert.notEqual(byKey.running.driver, null, "and a run that a live driver holds");
    const before = {
      running: await env.status("running"),
      orphan: await env.status("orphan"),
      locks: files(env, "locks").filter((name) => !name.startsWith("done.") && !name.startsWith("held.")),
      logs: files(env, "logs"),
    };
    assert.ok(before.locks.includes("orphan.driver.lock") && before.locks.includes("running.driver.lock"));

    const cleaned = await (async () => {
      using _held = await env.holdDriverLock("held"); // a finished run that some process holds
      return await env.json(["clean", "--older-than", "0"]);
    })();
    assert.deepEqual(cleaned.runs.map((run: Json) => run.run_key), ["done"]);
    assert.deepEqual(cleaned.skipped, [{ run_key: "held", reason: "a process holds its driver lock" }]);
    for (const path of cleaned.lock_files) assert.ok(!/\/(running|orphan)\./.test(path), path);
    assert.deepEqual(await env.status("running"), before.running);
    assert.deepEqual(await env.status("orphan"), before.orphan);
    assert.deepEqual(files(env, "locks").filter((name) => !name.startsWith("held.")), before.locks);
    assert.deepEqual(files(env, "logs"), before.logs);
    assert.equal((await env.jobs("orphan:hold:1")).length, 1, "the orphan's job is kept");
    assert.equal((await env.status("held")).status, "FAILED", "the held run is kept");
    assert.ok(existsSync(running.stdout_log) && existsSync(orphan.stdout_log));
  } finally {
    Deno.writeTextFileSync(go, "");
    await env.run(["cancel", "--run-key", "running", "--grace-seconds", "1"]);
    await env.run(["cancel", "--run-key", "orphan", "--grace-seconds", "1"]);
  }
});

flowTest(
  builtin,
  "clean deletes a run but leaves its lock file that a process holds (a start -d of the key again) to a later clean",
  async (env) => {
    await env.json(["start", "-q", "--run-key", "r", env.flow("two.yaml", TWO_STEPS)]);
    const launch = join(env.home, "locks", "r.launch.lock");
    const cleaned = await (async () => {
      // As a `start -d` of a new run of the key holds it while it launches the driver.
      using held = Deno.openSync(launch, { create: true, write: true });
      held.lockSync(true);
      const cleaned = await env.json(["clean", "--older-than", "0"]);
      // Before: unlinked under its holder, so a second start -d made a new file and launched beside it.
      assert.ok(existsSync(launch), "the held lock file is still at its path");
      assert.equal(Deno.statSync(launch).ino, held.statSync().ino);
      return cleaned;
    })();
    assert.deepEqual(cleaned.runs.map((run: Json) => run.run_key), ["r"]);
    assert.deepEqual(files(env, "locks"), ["r.launch.lock"], "the driver and gate lock files went");
    const reported = cleaned.runs[0].files as string[];
    assert.ok(reported.some((path) => path.endsWith("r.driver.lock")), "the files it did delete are listed");
    assert.ok(!reported.includes(launch), "the held lock file it kept is not listed as deleted");
    const later = await env.json(["clean", "--older-than", "0"]);
    assert.deepEqual(later.lock_files, [launch], "once let go, it goes as a run's that no longer exists");
    assert.deepEqual(files(env, "locks"), []);
  },
);

flowTest(
  builtin,
  "clean removes a .launch file that a start killed before storing its job left, once it is an hour old",
  async (env) => {
    await env.json(["start", "-q", "--run-key", "kept", env.flow("two.yaml", TWO_STEPS)]);
    const launches = () => files(env, "jobs").filter((name) => name.endsWith(".launch"));
    const keptJobs = [...await env.jobs("kept:a:1"), ...await env.jobs("kept:b:1")].map((job: Json) => job.job_id);
    assert.deepEqual(launches(), keptJobs.map((id: string) => `${id}.launch`).sort());
    // Killed between writing the job's .launch and committing its row: the file, and no job.
    const crashed = await runCrashingAt(env, "runner:launch-written", ["job", "start", "--run-key", "k", "--", "true"]);
    assert.equal(crashed.log.length, 1);
    assert.equal((await env.run(["job", "status", "--run-key", "k"])).code, 3, "no job was stored");
    const [orphan] = launches().filter((name) => !keptJobs.includes(name.slice(0, -".launch".length)));
    assert.ok(orphan, "the killed start left its .launch");
    const orphanPath = join(env.home, "jobs", orphan);
    // A job of another state file beside this one (they share jobs/): not this file's, and claimed.
    const beside = ["--db", join(env.home, "beside.sqlite3")];
    const besideJob = await env.json(["job", "start", "--run-key", "beside", ...beside, "--", "true"]);
    const besideLaunch = `${besideJob.job_id}.launch`;
    assert.ok(launches().includes(besideLaunch) && existsSync(join(env.home, "jobs", `${besideJob.job_id}.claim`)));
    // Young, it may be a start's whose row is on its way: left.
    assert.deepEqual((await env.json(["clean", "--older-than", "1d"])).launch_files, []);
    assert.ok(existsSync(orphanPath));
    const hoursAgo = Date.now() / 1000 - 7200;
    for (const name of launches()) Deno.utimeSync(join(env.home, "jobs", name), hoursAgo, hoursAgo);
    const dry = await env.json(["clean", "--older-than", "1d", "--dry-run"]);
    assert.deepEqual(dry.launch_files, [orphanPath]);
    assert.ok(existsSync(orphanPath), "a dry run removes nothing");
    // Before: nothing ever removed it (it holds the start's environment).
    const cleaned = await env.json(["clean", "--older-than", "1d"]);
    assert.deepEqual([cleaned.launch_files, cleaned.errors], [[orphanPath], []]);
    assert.deepEqual(
      launches(),
      [...keptJobs.map((id: string) => `${id}.launch`), besideLaunch].sort(),
      "the stored jobs' stay, and so does a claimed job's of another state file",
    );
    assert.equal((await env.status("kept")).status, "SUCCEEDED");
  },
);

flowTest(builtin, "clean: bad input is exit 2 with one JSON line", async (env) => {
  const cases: [string[], RegExp][] = [
    [["clean"], /^clean: --older-than is required/],
    [["clean", "--older-than", "soon"], /^clean: option --older-than needs a duration/],
    [["clean", "--older-than", "1d", "--status", "RUNNING"], /^clean: option --status must be one of SUCCEEDED/],
  ];
  for (const [args, pattern] of cases) {
    const result = await env.run(args);
    assert.equal(result.code, 2, `${args.join(" ")}: ${result.stderr}`);
    assert.match(errorLine(result).error, pattern);
  }
});

flowTest(
  builtin,
  "a clean killed before it deletes the run's row leaves a run the next clean finishes",
  async (env) => {
    const detached = await env.json(["start", "--run-key", "k", "-d", env.flow("two.yaml", TWO_STEPS)]);
    await env.waitFor("k", "it ends", (run) => run.status === "SUCCEEDED");
    await undriven(env, "k");
    const killed = await env.run(["clean", "--older-than", "0"], { ORCHESJOB_FLOW_CRASH_AT: "clean:files-removed" });
    assert.equal(killed.code, 137, killed.stderr);
    // Its jobs and files are gone, but the run itself is still there to be found.
    assert.equal((await env.status("k")).status, "SUCCEEDED");
    assert.deepEqual(await env.jobs("k:a:1"), []);
    assert.ok(!existsSync(detached.stdout_log));
    const finished = await env.json(["clean", "--older-than", "0"]);
    assert.deepEqual(finished.runs.map((run: Json) => run.run_key), ["k"]);
    assert.equal((await env.run(["status", "--run-key", "k"])).code, 3);
    assert.deepEqual([files(env, "jobs"), files(env, "logs"), files(env, "locks")], [[], [], []]);
  },
);

flowTest(
  builtin,
  "a job clean killed between the files and the rows leaves jobs the next clean finishes",
  async (env) => {
    const started = await env.run(["job", "start", "--sync", "--run-key", "j", "--", "sh", "-c", "echo out"]);
    assert.equal(started.code, 0, started.stderr);
    const job = JSON.parse(started.stdout);
    assert.ok(existsSync(job.stdout_file));
    const killed = await env.run(["job", "clean", "--all"], { ORCHESJOB_FLOW_CRASH_AT: "job-clean:files-removed" });
    assert.equal(killed.code, 137, killed.stderr);
    // The files went first: the row is still there, pointing to no output, never output no row points to.
    assert.ok(!existsSync(job.stdout_file));
    const kept = await env.run(["job", "status", "--run-key", "j"]);
    assert.equal(kept.code, 0, kept.stderr);
    assert.equal(JSON.parse(kept.stdout).job_id, job.job_id);
    const finished = JSON.parse((await env.run(["job", "clean", "--all"])).stdout);
    assert.deepEqual(finished.items.map((item: Json) => item.job_id), [job.job_id]);
    assert.equal((await env.run(["job", "status", "--run-key", "j"])).code, 3);
  },
);

flowTest(builtin, "clean leaves a run whose cancel is still aborting its steps", async (env) => {
  const file = env.flow("stubborn.yaml", STUBBORN);
  const detached = await env.json(["start", "-d", "--run-key", "c", file]);
  const run = await env.waitFor("c", "a runs", (run) => step(run, "a").orchesjob_status?.target_pid > 0);
  const pid: number = step(run, "a").orchesjob_status.target_pid;
  // No driver holds the run (it would keep clean away): only the cancel does.
  Deno.kill(detached.pid, "SIGKILL");
  await eventually("the driver is gone", () => !processAlive(detached.pid));
  const cancel = env.spawn(["cancel", "--run-key", "c", "--grace-seconds", "30"]);
  await env.waitFor("c", "the cancel is committed", (run) => run.status === "CANCELLED");
  assert.ok(processAlive(pid), "the command lives through the grace");
  const cleaned = await env.json(["clean", "--older-than", "0"]);
  assert.deepEqual(cleaned.skipped, [{ run_key: "c", reason: "a cancel of it is under way" }]);
  assert.ok(existsSync(join(env.home, "locks", "c.cancel.lock")));
  assert.equal((await env.status("c")).status, "CANCELLED", "the run is still there");
  assert.equal((await env.run(["cancel", "--run-key", "c", "--grace-seconds", "0"])).code, 0);
  assert.equal((await cancel.output()).code, 0, "the first cancel ends without an error");
  assert.ok(!processAlive(pid));
});

flowTest(
  builtin,
  "clean leaves a run whose cancel was killed in its grace until a cancel ends the step",
  async (env) => {
    const file = env.flow("stubborn.yaml", STUBBORN);
    const detached = await env.json(["start", "-d", "--run-key", "c", file]);
    const run = await env.waitFor("c", "a runs", (run) => step(run, "a").orchesjob_status?.target_pid > 0);
    const pid: number = step(run, "a").orchesjob_status.target_pid;
    try {
      await cleanAfterHalfCancel(env, detached.pid, pid);
    } finally {
      // Should the test fail with the command still alive, the command must not outlive it.
      if (processAlive(pid)) Deno.kill(pid, "SIGKILL");
    }
  },
);

async function cleanAfterHalfCancel(env: FlowEnv, driverPid: number, pid: number) {
  // The cancel dies between its SIGTERM (which the command ignores) and its SIGKILL, due in a minute.
  await runCrashingAt(env, "runner:abort-grace", ["cancel", "--run-key", "c", "--grace-seconds", "60"]);
  await eventually("the driver let go of the cancelled run", () => !processAlive(driverPid));
  const left = await env.status("c");
  assert.deepEqual([left.status, statuses(left)], ["CANCELLED", { a: "RUNNING" }]);
  const jobs = await env.jobs("c:a:1");
  assert.deepEqual(jobs.map((job: Json) => job.status), ["ABORTED"], "recorded before the SIGTERM");
  assert.ok(processAlive(pid), "the command lives on in the grace");
  const cleaned = await env.json(["clean", "--older-than", "0"]);
  // Before the fix: the run and its ABORTED job were deleted, with the file holding the SIGKILL's time,
  // and the command ran on, out of reach of any command.
  assert.deepEqual(cleaned.runs, []);
  assert.deepEqual(cleaned.skipped, [{
    run_key: "c",
    reason: "step a is still RUNNING (a cancel that did not finish?): cancel the run again first",
  }]);
  assert.equal((await env.run(["cancel", "--run-key", "c", "--grace-seconds", "0"])).code, 0);
  assert.ok(!processAlive(pid), "the second cancel ended the command");
  assert.deepEqual((await env.json(["clean", "--older-than", "0"])).runs.map((r: Json) => r.run_key), ["c"]);
}

/** A detached run of STUBBORN (a command that ignores SIGTERM) whose driver is killed: only a cancel holds it. */
async function stubbornUndriven(env: FlowEnv): Promise<{ pid: number; jobId: string }> {
  const detached = await env.json(["start", "-d", "--run-key", "c", env.flow("stubborn.yaml", STUBBORN)]);
  const run = await env.waitFor("c", "a runs", (run) => step(run, "a").orchesjob_status?.target_pid > 0);
  Deno.kill(detached.pid, "SIGKILL");
  await eventually("the driver is gone", () => !processAlive(detached.pid));
  return { pid: step(run, "a").orchesjob_status.target_pid, jobId: step(run, "a").orchesjob_status.job_id };
}

/** `job clean`'s report, which must keep the job `jobId` as an abort not done. */
function assertAbortKept(report: Json, jobId: string): void {
  // Before the fix: deleted (items), with its files, the abort's deadline and the supervisor's claim.
  assert.deepEqual(report.items ?? [], [], "job clean deleted the ABORTED job of an abort in its grace");
  assert.deepEqual(report.skipped, [{
    job_id: jobId,
    run_key: "c:a:1",
    reason: "its abort is not done: its process group still runs (SIGKILL at the abort's deadline)",
  }]);
}

flowTest(
  builtin,
  "job clean in a cancel's grace keeps the aborted job: the cancel still sends its SIGKILL",
  async (env) => {
    const { pid, jobId } = await stubbornUndriven(env);
    try {
      // The cancel stops itself between its SIGTERM (which the command ignores) and its SIGKILL. No
      // reader runs before the clean: past the deadline, a reader of the job sends the SIGKILL itself.
      const cancel = await spawnStopped(
        env,
        ["cancel", "--run-key", "c", "--grace-seconds", "10"],
        "runner:abort-grace",
      );
      assert.ok(processAlive(pid), "the command lives on in the grace");
      const deadline = Number(Deno.readTextFileSync(join(env.home, "jobs", `${jobId}.abort`)));
      assertAbortKept(await env.json(["job", "clean", "--all"]), jobId);
      assert.ok(Date.now() / 1000 < deadline, "the situation under test: the clean ran in the abort's grace");
      assert.deepEqual((await env.jobs("c:a:1")).map((job: Json) => job.status), ["ABORTED"]);
      assert.equal((await env.status("c")).status, "CANCELLED", "the run has finished: no flow run keeps the job");
      assert.ok(existsSync(join(env.home, "jobs", `${jobId}.abort`)), "the abort's deadline is kept");
      // Before the fix the cancel, its job's files gone, took the group for ended: no SIGKILL, exit 5
      // ("abort left job … RUNNING"), and the command ran on.
      const cancelled = await cancel.finish();
      assert.equal(cancelled.code, 0, cancelled.stderr);
      await eventually("the cancel's SIGKILL ended the command", () => !processAlive(pid));
      const later = await env.json(["job", "clean", "--all"]);
      assert.deepEqual(later.items.map((item: Json) => item.job_id), [jobId], "a clean after the abort deletes it");
    } finally {
      if (processAlive(pid)) Deno.kill(pid, "SIGKILL");
    }
  },
);

flowTest(builtin, "job clean keeps the aborted job of a cancel killed in its grace, even with --force", async (env) => {
  const { pid, jobId } = await stubbornUndriven(env);
  try {
    // The cancel dies between its SIGTERM (which the command ignores) and its SIGKILL, due in a minute.
    await runCrashingAt(env, "runner:abort-grace", ["cancel", "--run-key", "c", "--grace-seconds", "60"]);
    assert.deepEqual((await env.jobs("c:a:1")).map((job: Json) => job.status), ["ABORTED"]);
    assert.equal((await env.status("c")).status, "CANCELLED");
    assert.ok(processAlive(pid), "the command lives on in the grace");
    assertAbortKept(await env.json(["job", "clean", "--all"]), jobId);
    assertAbortKept(await env.json(["job", "clean", "--job-id", jobId, "--force"]), jobId);
    // The job and its deadline are still there: a second cancel finishes the abort. Before the fix it
    // found no job ("orchesjob no longer knows run key c:a:1", exit 5) and the command ran on.
    const again = await env.run(["cancel", "--run-key", "c", "--grace-seconds", "0"]);
    assert.equal(again.code, 0, again.stderr);
    await eventually("the second cancel ended the command", () => !processAlive(pid));
    const later = await env.json(["job", "clean", "--all"]);
    assert.deepEqual(later.items.map((item: Json) => item.job_id), [jobId]);
  } finally {
    if (processAlive(pid)) Deno.kill(pid, "SIGKILL");
  }
});

flowTest(
  builtin,
  "a clean whose deletion of a run meets a write lock and is tried again reports what it deleted in the first try",
  async (env) => {
    const started = await env.json(["start", "--run-key", "ok1", "-d", env.flow("two.yaml", TWO_STEPS)]);
    await env.waitFor("ok1", "it ends", (run) => run.status === "SUCCEEDED");
    await undriven(env, "ok1");
    const jobs = [...await env.jobs("ok1:a:1"), ...await env.jobs("ok1:b:1")].map((job: Json) => job.job_id);
    assert.equal(jobs.length, 2);
    // Stopped once it removed the run's jobs (files and rows) and driver logs, before the run's row. A
    // short busy timeout: its wait for the lock is said on stderr within the test's hold of the lock.
    const clean = await spawnStopped(env, ["clean", "--older-than", "0"], "clean:files-removed", {
      ORCHESJOB_FLOW_BUSY_TIMEOUT_MS: "300",
    });
    assert.deepEqual(await env.jobs("ok1:a:1"), [], "the first try deleted the jobs");
    assert.equal(existsSync(started.stdout_log), false, "and the driver logs");
    {
      // The row's deletion meets the lock (in a slice of the wait) and the deletion is tried again.
      await using _lock = await holdWriteLock(env, 60);
      Deno.kill(clean.pid, "SIGCONT");
      await new Promise((resolve) => setTimeout(resolve, 1000));
      assertLockHeld(env);
      assert.equal((await env.status("ok1")).status, "SUCCEEDED", "the row is still there: the try was lost");
    }
    const result = await clean.finish();
    assert.equal(result.code, 0, result.stderr);
    // Said only when a try is lost to the lock: the first one, past its look for the lock when it
    // stopped, met it at the row (else its report would hold all it removed, fix or not).
    assert.match(result.stderr, /is locked by another process; waiting until it lets go/, "the first try was lost");
    const report = JSON.parse(result.stdout);
    assert.equal((await env.run(["status", "--run-key", "ok1"])).code, 3, "the run is gone");
    assert.deepEqual(report.runs.map((run: Json) => run.run_key), ["ok1"]);
    assert.deepEqual(report.runs[0].jobs.sort(), jobs.sort(), "the jobs it deleted");
    assert.ok(report.runs[0].files.includes(started.stdout_log), `the driver logs it deleted: ${report.runs[0].files}`);
  },
);

flowTest(
  builtin,
  "clean and job clean keep an ABORTED job whose abort is in its grace, and say why in one wording",
  async (env) => {
    assert.equal((await env.run(["start", "--run-key", "c", "-q", env.flow("bad.yaml", FAILING)])).code, 1);
    // A job started by hand under the ended run's step key, which ignores SIGTERM: a `job abort` of it
    // stops itself between its SIGTERM and its SIGKILL, due in a minute. The run's own steps had
    // ended: a run's driver or cancel waits for such an abort, and its step ends only after it.
    const stubborn = ["sh", "-c", "trap '' TERM; while :; do sleep 0.1; done"];
    const started = await env.json(["job", "start", "--run-key", "c:a:1", "--", ...stubborn]);
    const pid: number = started.target_pid;
    assert.equal(started.status, "RUNNING");
    try {
      const abort = await spawnStopped(
        env,
        ["job", "abort", "--job-id", started.job_id, "--grace-seconds", "60"],
        "runner:abort-grace",
      );
      // The situation under test: the run has ended, a job of it is ABORTED, and its command still runs.
      assert.equal((await env.status("c")).status, "FAILED");
      assert.equal((await env.json(["job", "status", "--job-id", started.job_id])).status, "ABORTED");
      assert.ok(processAlive(pid), "the command lives on in the grace");
      const cleaned = await env.json(["clean", "--older-than", "0"]);
      const jobCleaned = await env.json(["job", "clean", "--all"]);
      const reason = "its abort is not done: its process group still runs (SIGKILL at the abort's deadline)";
      assert.deepEqual([cleaned.runs, cleaned.skipped], [[], [{
        run_key: "c",
        reason: `job c:a:1 is ABORTED, but ${reason}`,
      }]]);
      assert.deepEqual(jobCleaned.skipped, [{ job_id: started.job_id, run_key: "c:a:1", reason }]);
      // Once its group is gone, the run goes.
      Deno.kill(abort.pid, "SIGKILL");
      Deno.kill(pid, "SIGKILL");
      await eventually("the command is gone", () => !processAlive(pid));
      assert.deepEqual((await env.json(["clean", "--older-than", "0"])).runs.map((r: Json) => r.run_key), ["c"]);
    } finally {
      if (processAlive(pid)) Deno.kill(pid, "SIGKILL");
    }
  },
);

flowTest(
  builtin,
  "clean --older-than 0 deletes every finished run, also one whose end is ahead of the clock",
  async (env) => {
    await env.json(["start", "--run-key", "ahead", "-q", env.flow("two.yaml", TWO_STEPS)]);
    // The clock stepped back (NTP, a VM restored) since the run ended: its end is an hour ahead of now.
    const sqlite = new DatabaseSync(stateFile(env));
    sqlite.exec("UPDATE flow_runs SET finished_at = finished_at + 3600 WHERE run_key = 'ahead'");
    sqlite.close();
    const ended = (await env.status("ahead")).finished_at;
    assert.ok(ended > Date.now() / 1000 + 3000, "the run's end is ahead of the clock");
    // A time limit is a limit: an hour ago, the run had not ended by its own account.
    assert.deepEqual((await env.json(["clean", "--older-than", "1s"])).runs, []);
    const cleaned = await env.json(["clean", "--older-than", "0"]);
    assert.deepEqual(cleaned.runs.map((run: Json) => run.run_key), ["ahead"]);
    assert.equal((await env.run(["status", "--run-key", "ahead"])).code, 3);
  },
);
