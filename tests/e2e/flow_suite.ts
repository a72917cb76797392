/**
 * End-to-end behaviour of flow runs through the real CLI with real processes. Registered once per
 * executor: the built-in runner, and the external adapter driving the `orchesjob-flow job` wrapper.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { collectText, eventually, processAlive } from "../helpers.ts";
import { type ExecutorMode, flowTest, type Json, statuses, step } from "./flow_env.ts";
import { countLines, logged } from "./fault_helpers.ts";

export function registerFlowSuite(mode: ExecutorMode): void {
  const modes = [mode];

  flowTest(modes, "daily-import example succeeds; the failure notification is SKIPPED", async (env) => {
    const run = await env.json(["start", "--run-key", "daily", "examples/daily-import.yaml"]);
    assert.equal(run.status, "SUCCEEDED");
    assert.deepEqual(statuses(run), {
      download: "SUCCEEDED",
      validate: "SUCCEEDED",
      import: "SUCCEEDED",
      notify_failed: "SKIPPED",
    });
    assert.deepEqual(Object.keys(run).slice(0, 7), [
      "run_key",
      "flow_id",
      "status",
      "started_at",
      "finished_at",
      "error",
      "steps",
    ]);
    assert.deepEqual(Object.keys(run.steps[0]), [
      "id",
      "run_key",
      "status",
      "attempt_no",
      "max_retries",
      "next_attempt_at",
      "started_at",
      "finished_at",
      "error",
      "orchesjob_status",
      "retry_history",
      "executor_error",
    ]);
    const download = step(run, "download");
    assert.equal(download.run_key, "daily:download:1");
    assert.equal(download.orchesjob_status.status, "SUCCEEDED");
    assert.equal(download.orchesjob_status.run_key, "daily:download:1");
    assert.equal(run.executor.kind, mode === "builtin" ? "builtin" : "orchesjob");
  });

  flowTest(
    modes,
    "branching examples take the success branch, the failure branch, and the parenthesised branch",
    async (env) => {
      const ok = await env.json(["start", "--run-key", "b1", "examples/branching-hello-flow.yaml"]);
      assert.deepEqual(statuses(ok), {
        A: "SUCCEEDED",
        B: "SUCCEEDED",
        C: "SUCCEEDED",
        E: "SKIPPED",
        F: "SKIPPED",
        D: "SUCCEEDED",
      });
      assert.equal(ok.status, "SUCCEEDED");

      const failed = await env.json(["start", "--run-key", "b2", "examples/branching-hello-failure-flow.yaml"], 1);
      assert.deepEqual(statuses(failed), {
        A: "FAILED",
        B: "SKIPPED",
        C: "SKIPPED",
        E: "SUCCEEDED",
        F: "SUCCEEDED",
        D: "SUCCEEDED",
      });
      assert.equal(failed.status, "FAILED");
      assert.match(step(failed, "A").error, /FAILED \(exit code 1\)/);

      const parens = await env.json(["start", "--run-key", "b3", "examples/branching-hello-parens-flow.yaml"]);
      assert.equal(step(parens, "D").status, "SUCCEEDED", "B && F held");
      const notC = await env.json(["start", "--run-key", "b4", "examples/branching-hello-parens-flow.yaml"], 1, {
        HELLO_FAIL_STEPS: "C B",
      });
      assert.deepEqual(statuses(notC), {
        A: "SUCCEEDED",
        B: "FAILED",
        E: "SUCCEEDED",
        F: "SUCCEEDED",
        C: "FAILED",
        D: "SUCCEEDED",
      });
    },
  );

  flowTest(modes, "retries use new run keys :1 :2 :3 and stop when an attempt succeeds", async (env) => {
    const counter = join(env.home, "count");
    const file = env.flow(
      "retry.yaml",
      `flow_id: retry
steps:
  - id: flaky
    retries: 3
    command: ${JSON.stringify(`echo x >> '${counter}'; [ $(wc -l < '${counter}') -ge 3 ]`)}
  - id: always_fails
    retries: 2
    command: "exit 7"
`,
    );
    const run = await env.json(["start", "--run-key", "r", file], 1);
    const flaky = step(run, "flaky");
    assert.equal(flaky.status, "SUCCEEDED");
    assert.equal(flaky.attempt_no, 3);
    assert.equal(flaky.run_key, "r:flaky:3");
    const fails = step(run, "always_fails");
    assert.equal(fails.status, "FAILED");
    assert.equal(fails.attempt_no, 3);
    assert.equal(fails.max_retries, 2);
    assert.equal(fails.error, "orchesjob status FAILED (exit code 7)");
    for (const n of [1, 2, 3]) {
      const jobs = await env.jobs(`r:always_fails:${n}`);
      assert.equal(jobs.length, 1, `exactly one job under r:always_fails:${n}`);
      assert.equal(jobs[0].exit_code, 7);
    }
    assert.deepEqual(await env.jobs("r:always_fails:4"), []);
  });

  flowTest(modes, "retry_delay_sec makes the step DELAYED with next_attempt_at, then retries", async (env) => {
    const file = env.flow(
      "delay.yaml",
      `flow_id: delay
steps:
  - id: s
    retries: 1
    retry_delay_sec: 1.5
    command: "exit 3"
`,
    );
    // Advanced by hand (tick) up to DELAYED, the run holds still there while the test looks at it: a
    // driver could start the retry between two looks on a loaded machine.
    {
      using _lock = await env.holdDriverLock("dl");
      assert.equal((await env.json(["start", "-d", "--run-key", "dl", file])).status, "PENDING");
    }
    let delayed = await env.json(["tick", "--run-key", "dl"]);
    for (let i = 0; i < 100 && ["PENDING", "RUNNING"].includes(step(delayed, "s").status); i++) {
      delayed = await env.json(["tick", "--run-key", "dl"]);
    }
    const s = step(delayed, "s");
    assert.equal(s.status, "DELAYED");
    assert.equal(delayed.status, "RUNNING");
    assert.equal(s.attempt_no, 1);
    assert.equal(typeof s.next_attempt_at, "number");
    assert.ok(s.next_attempt_at > s.started_at);
    const table = await env.run(["status", "--run-key", "dl", "--format", "table"]);
    assert.match(table.stdout, /s +~ DELAYED +1\/2 /);
    // A driver takes the run from here: it waits for next_attempt_at, then retries.
    const driven = await env.json(["start", "--run-key", "dl", file], 1);
    const final = step(driven, "s");
    assert.equal(final.status, "FAILED");
    assert.equal(final.attempt_no, 2);
    assert.ok(final.started_at >= s.next_attempt_at, "the retry waited for next_attempt_at");
  });

  flowTest(modes, "timeout_sec aborts the attempt: the process is really gone, and the step fails", async (env) => {
    const file = env.flow(
      "timeout.yaml",
      `flow_id: timeout
steps:
  - id: slow
    timeout_sec: 0.5
    command: ["sleep", "30"]
  - id: after
    when: "!slow"
    command: ["true"]
`,
    );
    const run = await env.json(["start", "--run-key", "t", file], 1);
    const slow = step(run, "slow");
    assert.equal(slow.status, "FAILED");
    assert.equal(slow.error, "timed out after 0.5 s");
    assert.equal(slow.orchesjob_status.status, "ABORTED");
    assert.ok(!processAlive(slow.orchesjob_status.target_pid), "the timed-out process is gone");
    assert.equal(step(run, "after").status, "SUCCEEDED");
  });

  flowTest(
    modes,
    "cancel: running processes are gone, pending steps are CANCELLED, nothing starts afterwards",
    async (env) => {
      const log = join(env.home, "ran");
      const file = env.flow(
        "cancel.yaml",
        `flow_id: cancel
steps:
  - id: long
    command: ${logged(log, "long", "sleep 30")}
  - id: later
    when: long
    command: ${logged(log, "later")}
  - id: fallback
    when: "!long"
    command: ${logged(log, "fallback")}
`,
      );
      const started = await env.json(["start", "-d", "--run-key", "c", file]);
      assert.equal(started.detached, true);
      const running = await env.waitFor("c", "long RUNNING with a pid", (run) => {
        return step(run, "long").orchesjob_status?.target_pid != null;
      });
      const pid = step(running, "long").orchesjob_status.target_pid;
      const cancelled = await env.json(["cancel", "--run-key", "c", "--grace-seconds", "2"]);
      assert.equal(cancelled.status, "CANCELLED");
      assert.deepEqual(statuses(cancelled), { long: "CANCELLED", later: "CANCELLED", fallback: "CANCELLED" });
      assert.equal(step(cancelled, "later").error, "flow cancelled");
      await eventually("the step's process to be gone", () => !processAlive(pid));
      // The detached driver stops; watch reports the cancellation with exit 4.
      assert.equal((await env.run(["watch", "--run-key", "c", "--mode", "append", "--interval", "0.2"])).code, 4);
      // Once the driver has exited, nothing can start a step any more: what it started is on record.
      await eventually("the detached driver exits", () => !processAlive(started.pid), 60);
      assert.deepEqual(await env.jobs("c:later:1"), []);
      assert.deepEqual(await env.jobs("c:fallback:1"), []);
      assert.deepEqual(countLines(log), { long: 1 }, "nothing started after the cancel");
      assert.deepEqual(statuses(await env.status("c")), statuses(cancelled));
    },
  );

  flowTest(
    modes,
    "cancel of jobs that ended on their own while no driver looked: a failure with no retry left is FAILED",
    async (env) => {
      // Each step's command waits for `go`, so that it is still running when tick has started it;
      // then every job ends, and the cancel is the first to look at them.
      const go = join(env.home, "go");
      const gated = (code: number) => JSON.stringify(`while [ ! -f '${go}' ]; do sleep 0.05; done; exit ${code}`);
      const file = env.flow(
        "ended.yaml",
        `flow_id: ended
steps:
  - {id: failed, command: ${gated(3)}}
  - {id: retryable, retries: 2, command: ${gated(4)}}
  - {id: ok, command: ${gated(0)}}
  - {id: later, when: "!failed", command: ["true"]}
`,
      );
      const alone = env.flow("alone.yaml", `flow_id: alone\nsteps:\n  - {id: failed, command: ${gated(3)}}\n`);
      for (const [key, flow] of [["ce", file], ["ca", alone]]) {
        using _lock = await env.holdDriverLock(key);
        assert.equal((await env.json(["start", "-d", "--run-key", key, flow])).detached, false);
      }
      for (const key of ["ce", "ca"]) {
        const ticked = await env.json(["tick", "--run-key", key]);
        assert.ok(ticked.steps.every((s: Json) => s.status === (s.id === "later" ? "PENDING" : "RUNNING")), key);
      }
      Deno.writeTextFileSync(go, "");
      const ended = {
        "ce:failed:1": "FAILED",
        "ce:retryable:1": "FAILED",
        "ce:ok:1": "SUCCEEDED",
        "ca:failed:1": "FAILED",
      };
      for (const [key, status] of Object.entries(ended)) {
        await eventually(`${key} ends ${status}`, async () => (await env.jobs(key))[0]?.status === status);
      }
      for (const key of ["ce", "ca"]) {
        const running = await env.status(key);
        assert.ok(running.steps.some((s: Json) => s.status === "RUNNING"), `${key}: no driver recorded the ends`);
      }
      const cancelled = await env.json(["cancel", "--run-key", "ce"]);
      assert.deepEqual(statuses(cancelled), {
        failed: "FAILED",
        retryable: "CANCELLED",
        ok: "SUCCEEDED",
        later: "CANCELLED",
      });
      assert.equal(step(cancelled, "failed").error, "orchesjob status FAILED (exit code 3)");
      assert.equal(step(cancelled, "retryable").error, "flow cancelled");
      assert.equal(cancelled.status, "CANCELLED");
      // Nothing was left to cancel: the run ends as its steps say.
      const settled = await env.json(["cancel", "--run-key", "ca"]);
      assert.deepEqual([settled.status, step(settled, "failed").status], ["FAILED", "FAILED"]);
      assert.equal((await env.run(["wait", "--run-key", "ca"])).code, 1);
    },
  );

  flowTest(modes, "start -d returns at once with pid and logs; watch follows the run to the end", async (env) => {
    // The first step runs until the test creates `go`, after watch has shown the unfinished run: a
    // flow of fixed-length steps could end before a loaded machine has watch running.
    const go = join(env.home, "go");
    const file = env.flow(
      "gated.yaml",
      `flow_id: gated
steps:
  - {id: hold, command: ${JSON.stringify(`while [ ! -f '${go}' ]; do sleep 0.05; done`)}}
  - {id: a, when: hold, command: ["true"]}
  - {id: b, when: hold, command: ["true"]}
  - {id: c, depends_on: [a, b], command: ["true"]}
`,
    );
    const detached = await env.json(["start", "-d", "--run-key", "w", file]);
    assert.equal(detached.detached, true);
    assert.equal(typeof detached.pid, "number");
    assert.ok(["PENDING", "RUNNING"].includes(detached.status));
    assert.equal(detached.stdout_log, join(env.home, "logs", "orchesjob-flow-w.stdout.log"));
    const watcher = env.spawn(["watch", "--run-key", "w", "--mode", "append", "--interval", "0.3"]);
    const stdout = collectText(watcher.stdout);
    const stderr = collectText(watcher.stderr);
    await eventually("watch shows the unfinished run", () => /Status: \S+ (PENDING|RUNNING)/.test(stdout.text), 60);
    Deno.writeTextFileSync(go, "");
    const code = (await watcher.status).code;
    const watched = await stdout.done;
    assert.equal(code, 0, await stderr.done);
    assert.match(watched, /Status: OK SUCCEEDED {2}Steps: 4\/4 done, 0 running, 0 failed/);
    assert.ok(watched.split("Flow: gated").length > 2, "append mode printed more than one table");
    assert.equal((await env.status("w")).status, "SUCCEEDED");
    // Starting a finished run prints it and exits with its outcome.
    const again = await env.json(["start", "--run-key", "w", file]);
    assert.equal(again.status, "SUCCEEDED");
    assert.equal("detached" in again, false);
    // So does `start -d` (and `resume -d`), saying that it launched no driver.
    for (const command of [["start", "-d", "--run-key", "w", file], ["resume", "-d", "--run-key", "w"]]) {
      const shown = await env.json(command);
      assert.deepEqual([shown.status, shown.detached, shown.driver], ["SUCCEEDED", false, null], command.join(" "));
    }
  });

  flowTest(modes, "three concurrent start -d of one run key run each step once", async (env) => {
    const log = join(env.home, "ran");
    const file = env.flow(
      "once.yaml",
      `flow_id: once
steps:
  - {id: a, command: ${logged(log, "a", "sleep 0.3")}}
  - {id: b, when: a, command: ${logged(log, "b")}}
  - {id: c, when: a, command: ${logged(log, "c")}}
  - {id: d, depends_on: [b, c], command: ${logged(log, "d")}}
`,
    );
    const results = await Promise.all([1, 2, 3].map(() => env.run(["start", "-d", "--run-key", "x", file])));
    for (const result of results) assert.equal(result.code, 0, result.stderr);
    await env.waitFor("x", "SUCCEEDED", (run) => run.status === "SUCCEEDED");
    assert.deepEqual(countLines(log), { a: 1, b: 1, c: 1, d: 1 });
    for (const id of ["a", "b", "c", "d"]) assert.equal((await env.jobs(`x:${id}:1`)).length, 1, id);
  });

  flowTest(modes, "tick advances a PENDING run one round at a time", async (env) => {
    const file = env.flow(
      "tick.yaml",
      `flow_id: tick
steps:
  - {id: a, command: ["sleep", "1"]}
  - {id: b, when: "!a", command: ["true"]}
`,
    );
    // a takes a second: an external orchesjob's start answers once the job runs, and a job that had
    // already ended by then (a bare true, on a slow minute) would let the first tick finish the run.
    {
      using _lock = await env.holdDriverLock("tk");
      const created = await env.json(["start", "-d", "--run-key", "tk", file]);
      assert.equal(created.detached, false, "the held lock counts as a driver");
      assert.equal(created.status, "PENDING");
      assert.deepEqual(statuses(created), { a: "PENDING", b: "PENDING" });
      const blocked = await env.json(["tick", "--run-key", "tk"]);
      assert.equal(blocked.status, "PENDING", "tick does not advance a run another process drives");
    }
    const first = await env.json(["tick", "--run-key", "tk"]);
    assert.equal(first.status, "RUNNING");
    assert.equal(step(first, "a").status, "RUNNING");
    assert.equal(step(first, "b").status, "PENDING");
    let run = first;
    for (let i = 0; i < 50 && run.status === "RUNNING"; i++) {
      run = await env.json(["tick", "--run-key", "tk"]);
    }
    assert.deepEqual(statuses(run), { a: "SUCCEEDED", b: "SKIPPED" });
    assert.equal(run.status, "SUCCEEDED");
  });
}
