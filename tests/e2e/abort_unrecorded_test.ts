/**
 * An abort stopped between its abort file and its ABORTED record (killed there) leaves the job for a
 * later reader to end: ABORTED only when the abort kept its command from starting, else as before (a
 * result, or LOST). The window in question is the supervisor's, between forking the command and
 * recording its PID: a supervisor killed there (SIGKILL, an OOM kill) leaves no PID although the
 * command ran. Each process is stopped (test-only SIGSTOP) at the line in question, and killed there.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { eventually, isStopped, processAlive } from "../helpers.ts";
import { flowTest } from "./flow_env.ts";
import { builtin, jobFile, lines, supervisorGone } from "./operator_env.ts";
import { readLog, spawnStopped, spawnStoppedChild } from "./stop_point.ts";
import { jobRows } from "./write_lock.ts";
import { pathExists } from "../../src/shared/mod.ts";

flowTest(
  builtin,
  "an abort killed between its abort file and its record, of a job whose supervisor was killed after starting the command and before recording its PID: LOST (the command ran), not ABORTED",
  async (env) => {
    const ran = join(env.home, "ran");
    const stops = join(env.home, "supervisor-stops.log");
    // The supervisor stops itself once the command is forked, before it writes the command's PID.
    const started = await env.json(
      ["job", "start", "--run-key", "j", "--start-timeout", "0", "--", "sh", "-c", `echo ran >> '${ran}'`],
      0,
      { ORCHESJOB_FLOW_STOP_AT: "supervisor:before-target", ORCHESJOB_FLOW_CRASH_LOG: stops },
    );
    const id = started.job_id as string;
    let supervisor = 0;
    await eventually("the supervisor stopped after forking the command", () => {
      supervisor = Number(/^supervisor:before-target (\d+)\n$/.exec(readLog(stops))?.[1] ?? 0);
      return supervisor > 0 && isStopped(supervisor);
    });
    await eventually("the command ran", () => lines(ran).length === 1);

    // An abort writes its abort file and is killed before its record.
    const abort = await spawnStoppedChild(
      env,
      ["job", "abort", "--job-id", id, "--reason", "why"],
      "runner:abort-file-written",
    );
    abort.child.kill("SIGKILL");
    await abort.output;
    // The situation under test: the abort file is there, the job is not recorded ABORTED, no command
    // PID is known, and the supervisor dies without recording one.
    assert.ok(pathExists(jobFile(env, id, "abort")), "the abort file is written");
    assert.deepEqual(jobRows(env, "j").map((job) => job.status), ["STARTING"], "the abort is not recorded");
    Deno.kill(supervisor, "SIGKILL");
    await eventually("the supervisor is gone", () => !processAlive(supervisor));
    assert.equal(pathExists(jobFile(env, id, "target")), false, "no command PID recorded");

    const read = await env.json(["job", "status", "--job-id", id]);
    assert.deepEqual(lines(ran), ["ran"], "the command ran, once");
    assert.deepEqual(
      [read.status, read.abort_reason, read.aborted_at],
      ["LOST", null, null],
      "its command ran: its result is unknown, not an abort that kept it from starting",
    );
  },
);

flowTest(
  builtin,
  "a job aborted before its supervisor came, then cleaned: the supervisor its starter launches after the clean never runs the command",
  async (env) => {
    const ran = join(env.home, "ran");
    // The job is stored and not launched: its start stops before it spawns the supervisor.
    const start = await spawnStopped(
      env,
      ["job", "start", "--run-key", "j", "--start-timeout", "0", "--", "sh", "-c", `echo ran >> '${ran}'`],
      "runner:after-job-row",
    );
    const aborted = await env.json(["job", "abort", "--run-key", "j"]);
    assert.deepEqual([aborted.status, aborted.worker_pid], ["ABORTED", null], "aborted before any supervisor came");
    const id = aborted.job_id as string;
    const cleaned = await env.json(["job", "clean", "--job-id", id]);
    assert.equal(cleaned.deleted, 1, JSON.stringify(cleaned));
    // The start goes on: it spawns the job's supervisor, which must find that the job is not to run.
    const finished = await start.finish();
    assert.equal(finished.code, 0, finished.stderr);
    // The situation under test: the supervisor came after the clean, and claimed the job (nothing was
    // there to stop it): the clean removed the claim, so the claim waited for here is its own. It exits
    // once the command (if it runs) has ended.
    await supervisorGone(env, id);
    assert.deepEqual(lines(ran), [], "the command of a job aborted (and cleaned) never runs");
  },
);
