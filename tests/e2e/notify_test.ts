/**
 * Event-driven hand-off with the built-in runner: the driver learns of a job's end from a change
 * notification, and polling still finishes the run when notifications are lost.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { FlowEnv, type Json, step } from "./flow_env.ts";

const POLL = 0.5;

/**
 * A chain a → b → c of `sleep 1`, `sleep 1`, `true`, long enough for the poll backoff to reach POLL;
 * `tail` adds steps after c.
 */
function chain(env: FlowEnv, tail = ""): string {
  return env.flow(
    "chain.yaml",
    `flow_id: chain
steps:
  - {id: a, command: ["sleep", "1"]}
  - {id: b, when: a, command: ["sleep", "1"]}
  - {id: c, when: b, command: ["true"]}
${tail}`,
  );
}

/** The file whose arrival announces the end of a step's job (the supervisor's exit file). */
async function exitFile(env: FlowEnv, runKey: string, id: string): Promise<string> {
  const [job] = await env.jobs(`${runKey}:${id}:1`);
  return (job.stdout_file as string).replace(/\.stdout$/, ".exit");
}

/** When a step's job ended by its own clock: the supervisor's exit file, renamed in as its last act. */
async function jobEnd(env: FlowEnv, runKey: string, id: string): Promise<number> {
  return Deno.statSync(await exitFile(env, runKey, id)).mtime!.getTime() / 1000;
}

async function handOffs(env: FlowEnv, run: Json): Promise<number[]> {
  return [
    step(run, "b").started_at - await jobEnd(env, run.run_key, "a"),
    step(run, "c").started_at - await jobEnd(env, run.run_key, "b"),
  ];
}

Deno.test("notifications delivered: each job end reaches the driver as a notification", async () => {
  using env = new FlowEnv("builtin");
  const notes = join(env.home, "notifications");
  // A last step after c keeps the driver (and its watcher) alive after c's end: the notification of
  // the run's last job end may come after a poll has already ended the run, and then go unread.
  const run = await env.json(
    [
      "--poll-interval",
      String(POLL),
      "start",
      "--run-key",
      "n",
      chain(env, '  - {id: d, when: c, command: ["sleep", "1"]}\n'),
    ],
    0,
    { ORCHESJOB_FLOW_TEST_NOTIFY_LOG: notes },
  );
  assert.equal(run.status, "SUCCEEDED");
  const delivered = Deno.readTextFileSync(notes).split("\n").filter((line) => /^delivered .*\.exit$/.test(line));
  for (const id of ["a", "b", "c"]) {
    // By file name: the watcher may report the directory by another path (macOS: /private/var for /var).
    const exit = (await exitFile(env, "n", id)).split("/").at(-1)!;
    assert.ok(delivered.some((line) => line.endsWith(`/${exit}`)), `no notification of ${id}'s end: ${delivered}`);
  }
  for (const gap of await handOffs(env, run)) assert.ok(gap >= 0, `step started before its predecessor ended`);
});

Deno.test("notifications lost on purpose: polling still completes the run, each hand-off within a poll interval", async () => {
  using env = new FlowEnv("builtin");
  const notes = join(env.home, "notifications");
  const run = await env.json(
    ["--poll-interval", String(POLL), "start", "--run-key", "l", chain(env)],
    0,
    { ORCHESJOB_FLOW_TEST_NOTIFY_LOG: notes, ORCHESJOB_FLOW_TEST_LOSE_NOTIFICATIONS: "1" },
  );
  assert.equal(run.status, "SUCCEEDED");
  const lines = Deno.readTextFileSync(notes).split("\n").filter(Boolean);
  assert.ok(lines.some((line) => /^lost .*\.exit$/.test(line)), "no notification was lost: the test proves nothing");
  assert.ok(!lines.some((line) => line.startsWith("delivered")), "a notification got through");
  // The poll sleeps at most POLL; the slack covers a tick and a loaded machine, not another poll scheme.
  for (const gap of await handOffs(env, run)) assert.ok(gap >= 0 && gap < POLL + 2, `hand-off took ${gap} s`);
});

Deno.test("external orchesjob: a change in its state directory is a hint that wakes the driver", async () => {
  using env = new FlowEnv("external");
  const notes = join(env.home, "notifications");
  // The wrapper keeps its jobs under the same home, so $ORCHESJOB_HOME is the directory to watch.
  const run = await env.json(
    ["--poll-interval", String(POLL), "start", "--run-key", "x", chain(env)],
    0,
    { ORCHESJOB_HOME: env.home, ORCHESJOB_FLOW_TEST_NOTIFY_LOG: notes },
  );
  assert.equal(run.status, "SUCCEEDED");
  const delivered = Deno.readTextFileSync(notes).split("\n").filter((line) => line.startsWith("delivered "));
  assert.ok(delivered.some((line) => /\.exit$/.test(line)), `no hint of a job's end: ${JSON.stringify(delivered)}`);
});
