/** A job whose starter died between its row and its supervisor is launched by the next reader, as the starter would have. */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { cli, eventually, tempDir } from "../helpers.ts";

Deno.test("a reader relaunches an unlaunched job in the starter's directory and environment, not its own", async () => {
  using home = tempDir();
  using first = tempDir();
  using second = tempDir();
  const out = join(home.path, "out");
  const crashLog = join(home.path, "crash.log");
  const command = ["sh", "-c", `printf '%s %s' "$MARK" "$(pwd)" > '${out}'`];
  const started = await cli(["job", "start", "--run-key", "k", "--", ...command], {
    cwd: first.path,
    env: {
      ORCHESJOB_FLOW_HOME: home.path,
      MARK: "first",
      ORCHESJOB_FLOW_CRASH_AT: "runner:after-job-row",
      ORCHESJOB_FLOW_CRASH_LOG: crashLog,
    },
  });
  // The starter really died after committing the job row and before launching anything.
  assert.match(Deno.readTextFileSync(crashLog), /^runner:after-job-row \d+\n$/);
  assert.equal(started.stdout, "");
  assert.throws(() => Deno.statSync(out), Deno.errors.NotFound);
  const read = await cli(["job", "status", "--run-key", "k"], {
    cwd: second.path,
    env: { ORCHESJOB_FLOW_HOME: home.path, MARK: "second" },
  });
  assert.equal(read.code, 0, read.stderr);
  await eventually("the relaunched job wrote its marker", () => {
    try {
      return Deno.readTextFileSync(out) !== "";
    } catch {
      return false;
    }
  });
  assert.equal(Deno.readTextFileSync(out), `first ${Deno.realPathSync(first.path)}`);
  await eventually("the job is SUCCEEDED", async () => {
    const status = await cli(["job", "status", "--run-key", "k"], { env: { ORCHESJOB_FLOW_HOME: home.path } });
    return JSON.parse(status.stdout).status === "SUCCEEDED";
  });
});

Deno.test("an abort of an unlaunched job launches nothing: its command never starts", async () => {
  using home = tempDir();
  const out = join(home.path, "out");
  const crashLog = join(home.path, "crash.log");
  const env = { ORCHESJOB_FLOW_HOME: home.path };
  const started = await cli(["job", "start", "--run-key", "k", "--", "sh", "-c", `echo ran > '${out}'`], {
    env: { ...env, ORCHESJOB_FLOW_CRASH_AT: "runner:after-job-row", ORCHESJOB_FLOW_CRASH_LOG: crashLog },
  });
  // The starter really died after committing the job row and before launching anything; its launch
  // file is there, so a reader could relaunch the job.
  assert.match(Deno.readTextFileSync(crashLog), /^runner:after-job-row \d+\n$/);
  assert.equal(started.stdout, "");
  const launches = [...Deno.readDirSync(join(home.path, "jobs"))].map((entry) => entry.name);
  assert.equal(launches.filter((name) => name.endsWith(".launch")).length, 1, launches.join(" "));
  assert.equal(launches.filter((name) => name.endsWith(".claim")).length, 0, "nothing claimed the job yet");

  const aborted = await cli(["job", "abort", "--run-key", "k", "--grace-seconds", "1"], { env });
  assert.equal(aborted.code, 0, aborted.stderr);
  const job = JSON.parse(aborted.stdout);
  assert.equal(job.status, "ABORTED");
  assert.equal(job.worker_pid, null);
  assert.equal(job.sent_term_worker, false);
  // A supervisor the abort launched claims the job within milliseconds, and then may start the command
  // before the abort's file is there to stop it. None may be launched: no claim appears, however long
  // one waits (2 s here, hundreds of times what a launched supervisor takes to claim).
  const claim = join(home.path, "jobs", `${job.job_id}.claim`);
  const claimed = await eventually("a claim of the aborted job", () => existsSync(claim), 2).then(
    () => true,
    () => false,
  );
  assert.equal(claimed, false, "the abort launched a supervisor for the job it aborted");
  assert.equal(existsSync(out), false);
  const status = JSON.parse((await cli(["job", "status", "--run-key", "k"], { env })).stdout);
  assert.equal(status.status, "ABORTED");
});
