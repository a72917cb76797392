/**
 * Many runs in one state home: every built-in driver of the home watches for job ends, and what
 * another run's job does must not wake it. A job's output used to go to files in the very directory
 * the drivers watched, so each write() of a chatty step woke every driver of the home (one idle
 * driver spent 65% of a core while another run's step printed 100k lines in 1.2 s). The watcher's
 * test log (ORCHESJOB_FLOW_TEST_NOTIFY_LOG) names every event it woke for, so the cost is counted.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { eventually } from "../helpers.ts";
import { FlowEnv, step } from "./flow_env.ts";

const LINES = 2000;

Deno.test("shared home: another run's chatty step does not wake an idle driver at each write", async () => {
  using env = new FlowEnv("builtin");
  const notes = join(env.home, "notifications");
  const go = join(env.home, "go");
  // The idle run waits for `go`; a step after it keeps its driver (and watcher) alive past its end.
  const idle = env.flow(
    "idle.yaml",
    `flow_id: idle
steps:
  - {id: wait, command: ["/bin/sh", "-c", "while [ ! -f '${go}' ]; do sleep 0.05; done"]}
  - {id: after, when: wait, command: ["sleep", "1"]}
`,
  );
  const started = await env.json(["start", "-d", "--run-key", "idle", idle], 0, {
    ORCHESJOB_FLOW_TEST_NOTIFY_LOG: notes,
  });
  assert.equal(started.detached, true);
  await env.waitFor("idle", "its step running", (run) => step(run, "wait").status === "RUNNING");
  const chatty = env.flow(
    "chatty.yaml",
    `flow_id: chatty
steps:
  - id: talk
    command: 'i=0; while [ $i -lt ${LINES} ]; do echo "line $i"; i=$((i+1)); done'
`,
  );
  const talked = await env.json(["start", "-q", "--run-key", "chatty", chatty]);
  assert.equal(talked.status, "SUCCEEDED");
  // The situation under test: the step made LINES writes while the idle run's driver watched.
  const job = step(talked, "talk").orchesjob_status;
  assert.equal(Deno.readTextFileSync(job.stdout_file).split("\n").length - 1, LINES);
  const during = await env.status("idle");
  assert.equal(during.status, "RUNNING");
  assert.ok(during.driver?.pid, "the idle run lost its driver");
  const readNotes = () => {
    try {
      return Deno.readTextFileSync(notes).split("\n").filter((line) => line !== "");
    } catch {
      return [];
    }
  };
  // The chatty job's end reaches the idle driver's watcher (so it was watching), but little else of it.
  await eventually(
    "the idle driver's watcher saw the chatty job end",
    () => readNotes().some((line) => line.startsWith("delivered ") && line.includes(job.job_id)),
  );
  const woken = readNotes().filter((line) => line.includes(job.job_id));
  assert.ok(
    woken.length <= 10,
    `${woken.length} wake-ups of the idle driver for another run's job: ${woken.slice(0, 5)}`,
  );
  // And its own job's end still wakes it.
  Deno.writeTextFileSync(go, "");
  const done = await env.json(["wait", "--run-key", "idle", "--timeout", "120"]);
  assert.equal(done.status, "SUCCEEDED");
  const own = (await env.status("idle")).steps.find((s: { id: string }) => s.id === "wait").orchesjob_status.job_id;
  assert.ok(
    readNotes().some((line) => line.startsWith("delivered ") && line.includes(own)),
    "no notification of the idle run's own job end",
  );
});
