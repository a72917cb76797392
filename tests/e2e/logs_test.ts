/** `logs`, and the failure reason in a step's error, through the real CLI on both executors. */
import assert from "node:assert/strict";
import { join } from "node:path";
import { existsSync } from "node:fs";
import { CLI, type CliResult, collectText, errorLine, eventually, REPO } from "../helpers.ts";
import { runCrashingAt, waitForFile } from "./fault_helpers.ts";
import { flowTest, step } from "./flow_env.ts";
import { both, builtin, TWO_STEPS, undrivenRun } from "./operator_env.ts";

/** Attempt n prints five lines on stdout and two on stderr, then fails; one retry, so two attempts. */
function noisyFlow(counter: string): string {
  const script = `n=$(cat '${counter}' 2>/dev/null || echo 0); n=$((n+1)); echo $n > '${counter}'; ` +
    `for i in 1 2 3 4 5; do echo "out $n.$i"; done; echo "warning $n" >&2; ` +
    `echo "cannot open /data/input.csv ($n)" >&2; exit 3`;
  return `flow_id: noisy\nsteps:\n  - id: load\n    retries: 1\n    command: ${JSON.stringify(script)}\n` +
    `  - {id: blank, command: "echo 'the real reason' >&2; echo >&2; echo '   ' >&2; exit 1"}\n` +
    `  - {id: quiet, command: "echo 'stdout only'; exit 2"}\n` +
    `  - {id: missing, command: [no-such-program-ojf]}\n` +
    `  - {id: wordy, command: "printf 'x%.0s' $(seq 400) >&2; exit 1"}\n`;
}

flowTest(
  both,
  "logs prints an attempt's stdout and stderr; a failed step's error ends with its stderr",
  async (env) => {
    const file = env.flow("noisy.yaml", noisyFlow(join(env.home, "counter")));
    const run = await env.json(["start", "--run-key", "n1", file], 1);
    const load = step(run, "load");
    assert.equal(load.attempt_no, 2);
    assert.equal(load.error, "orchesjob status FAILED (exit code 3): cannot open /data/input.csv (2)");
    assert.equal(step(run, "blank").error, "orchesjob status FAILED (exit code 1): the real reason");
    assert.equal(step(run, "quiet").error, "orchesjob status FAILED (exit code 2)", "no stderr, nothing added");
    // The case that hid the reason behind "exit code -1": a program that cannot be executed.
    assert.match(step(run, "missing").error, /^orchesjob status FAILED \(exit code -?\d+\): .*no-such-program-ojf/);
    // A very long last line is cut, so the table stays readable.
    assert.equal(step(run, "wordy").error, `orchesjob status FAILED (exit code 1): ${"x".repeat(297)}...`);
    const table = await env.run(["status", "--run-key", "n1", "--format", "table"]);
    assert.match(table.stdout, /FAILED .* cannot open \/data\/input\.csv \(2\)\n/);

    const latest = await env.run(["logs", "--run-key", "n1", "--step", "load"]);
    assert.equal(latest.code, 0, latest.stderr);
    assert.equal(latest.stdout, [1, 2, 3, 4, 5].map((i) => `out 2.${i}\n`).join(""));
    assert.equal(latest.stderr, "warning 2\ncannot open /data/input.csv (2)\n");

    const first = await env.run(["logs", "--run-key", "n1", "--step", "load", "--attempt", "1", "--stream", "stdout"]);
    assert.equal(first.stdout, [1, 2, 3, 4, 5].map((i) => `out 1.${i}\n`).join(""));
    assert.equal(first.stderr, "");
    const errors = await env.run(["logs", "--run-key", "n1", "--step", "load", "--stream", "stderr"]);
    assert.equal(errors.stdout, "warning 2\ncannot open /data/input.csv (2)\n", "one stream goes to stdout");
    const tail = await env.run(["logs", "--run-key", "n1", "--step", "load", "--stream", "stdout", "--tail", "2"]);
    assert.equal(tail.stdout, "out 2.4\nout 2.5\n");
    const tailBoth = await env.run(["logs", "--run-key", "n1", "--step", "load", "--tail", "1"]);
    assert.deepEqual([tailBoth.stdout, tailBoth.stderr], ["out 2.5\n", "cannot open /data/input.csv (2)\n"]);
  },
);

flowTest(builtin, "logs: bad input is exit 2, nothing to show is exit 3, each a JSON line", async (env) => {
  const file = env.flow("noisy.yaml", noisyFlow(join(env.home, "counter")));
  await env.json(["start", "--run-key", "n1", file], 1);
  await undrivenRun(env, "p1", file);
  const cases: [string[], number, RegExp][] = [
    [["logs", "--step", "load"], 2, /^logs: --run-key is required$/],
    [["logs", "--run-key", "n1"], 2, /^logs: --step is required$/],
    [["logs", "--run-key", "n1", "--step", "lod"], 2, /^logs: run n1 has no step "lod"; did you mean "load"\?$/],
    [["logs", "--run-key", "n1", "--step", "load", "--attempt", "0"], 2, /^logs: option --attempt must be >= 1/],
    [["logs", "--run-key", "n1", "--step", "load", "--attempt", "3"], 3, /^logs: step load has attempts 1 to 2$/],
    [["logs", "--run-key", "n1", "--step", "load", "--tail", "x"], 2, /needs a number/],
    [["logs", "--run-key", "n1", "--step", "load", "--stream", "all"], 2, /must be one of stdout, stderr, both/],
    [["logs", "--run-key", "nope", "--step", "load"], 3, /^logs: run not found: nope/],
    [["logs", "--run-key", "p1", "--step", "load"], 3, /^logs: step load has not started$/],
  ];
  for (const [args, code, pattern] of cases) {
    const result = await env.run(args);
    assert.equal(result.code, code, `${args.join(" ")}: ${result.stderr}`);
    assert.match(errorLine(result).error, pattern, args.join(" "));
  }
});

flowTest(
  both,
  "logs --follow waits for the step, streams while it runs, and ends when the attempt ends",
  async (env) => {
    const go = join(env.home, "go");
    const file = env.flow(
      "follow.yaml",
      `flow_id: follow
steps:
  - {id: first, command: ["true"]}
  - id: talk
    when: first
    command: ${JSON.stringify(`echo tick 1; while [ ! -f '${go}' ]; do sleep 0.05; done; echo tick 2; echo bye >&2`)}
`,
    );
    await undrivenRun(env, "f1", file);
    // Followed before the step has started: it waits for it.
    const follower = new Deno.Command(CLI[0], {
      args: [...CLI.slice(1), ...env.globals(), "logs", "--run-key", "f1", "--step", "talk", "--follow"],
      cwd: REPO,
      env: env.env(),
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const stderr = new Response(follower.stderr).text();
    const reader = follower.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let seen = "";
    try {
      assert.equal((await env.json(["start", "--run-key", "f1", "-d", file])).detached, true);
      await eventually("tick 1 is streamed while the step waits", async () => {
        const { value, done } = await reader.read();
        if (done) throw new Error(`logs --follow ended early: ${seen} / ${await stderr}`);
        seen += value;
        return seen.includes("tick 1\n");
      }, 60);
      assert.equal(step(await env.status("f1"), "talk").status, "RUNNING", "the step was still running");
      assert.ok(!seen.includes("tick 2"));
      Deno.writeTextFileSync(go, "");
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        seen += value;
      }
      const status = await follower.status;
      assert.equal(status.code, 0, await stderr);
      assert.equal(seen, "tick 1\ntick 2\n");
      // The follower may have looked before the driver took the run: then it said so, once.
      const lines = (await stderr).split("\n").filter((line) => line !== "");
      assert.equal(lines.at(-1), "bye");
      const notes = lines.slice(0, -1);
      assert.ok(notes.length <= 1, await stderr);
      for (const note of notes) {
        assert.match(JSON.parse(note).warning, /^Driver: none; step talk starts once the run is resumed/);
      }
      await env.waitFor("f1", "the run ends", (run) => run.status === "SUCCEEDED");
    } finally {
      Deno.writeTextFileSync(go, "");
      try {
        follower.kill();
      } catch { /* already gone */ }
    }
  },
);

flowTest(["external"], "logs through an orchesjob that cannot be run is exit 1 with the reason", async (env) => {
  const file = env.flow("noisy.yaml", noisyFlow(join(env.home, "counter")));
  await env.json(["start", "--run-key", "n1", file], 1);
  Deno.renameSync(env.wrapper, `${env.wrapper}.moved`);
  try {
    const result = await env.run(["logs", "--run-key", "n1", "--step", "load"]);
    assert.equal(result.code, 1);
    assert.match(errorLine(result).error, /^logs: cannot read the job: orchesjob not found: .*orchesjob-wrapper$/);
  } finally {
    Deno.renameSync(`${env.wrapper}.moved`, env.wrapper);
  }
});

flowTest(builtin, "logs --follow stops with 130 on SIGTERM, and the step runs on", async (env) => {
  const go = join(env.home, "go");
  const file = env.flow(
    "follow.yaml",
    `flow_id: f\nsteps:\n  - {id: talk, command: ${
      JSON.stringify(`echo tick 1; while [ ! -f '${go}' ]; do sleep 0.05; done`)
    }}\n`,
  );
  await env.json(["start", "--run-key", "s", "-d", file]);
  const follower = env.spawn(["logs", "--run-key", "s", "--step", "talk", "--follow"]);
  const reader = follower.stdout.pipeThrough(new TextDecoderStream()).getReader();
  try {
    let seen = "";
    await eventually("the follower prints tick 1", async () => {
      const { value, done } = await reader.read();
      if (done) throw new Error(`ended early: ${seen}`);
      seen += value;
      return seen.includes("tick 1\n");
    }, 60);
    follower.kill("SIGTERM");
    assert.equal((await follower.status).code, 130);
    assert.equal(step(await env.status("s"), "talk").status, "RUNNING", "following is only reading");
  } finally {
    reader.releaseLock();
    await follower.stdout.cancel().catch(() => {});
    await follower.stderr.cancel().catch(() => {});
    Deno.writeTextFileSync(go, "");
    await env.waitFor("s", "the run ends", (run) => run.status === "SUCCEEDED");
  }
});

flowTest(
  builtin,
  "logs reads large output in pieces: whole, its last lines, and a closed pipe ends a follow; a file or job gone is an error",
  async (env) => {
    // 300k numbered lines (~2.3 MB per 100k): several read pieces, lines cut across their edges.
    const go = join(env.home, "go");
    const file = env.flow(
      "big.yaml",
      `flow_id: big\nsteps:\n  - id: a\n    command: ${
        JSON.stringify(`seq 1 1000000; seq 1 1000000 >&2; ${waitForFile(go)}`)
      }\n  - {id: b, when: a, command: ["true"]}\n`,
    );
    assert.equal((await env.json(["start", "--run-key", "g", "-d", file])).detached, true);
    await env.waitFor("g", "a's job runs", (run) => step(run, "a").orchesjob_status?.status === "RUNNING");
    const full = Array.from({ length: 1_000_000 }, (_, i) => `${i + 1}\n`).join("");
    // stderr is written after stdout: its last line means both are whole.
    await eventually(
      "a printed everything",
      async () =>
        (await env.run(["logs", "--run-key", "g", "--step", "a", "--stream", "stderr", "--tail", "1"])).stdout ===
          "1000000\n",
    );
    const whole = await env.run(["logs", "--run-key", "g", "--step", "a", "--stream", "stdout"]);
    assert.equal(whole.code, 0, whole.stderr);
    assert.ok(whole.stdout.length > 6_000_000 && whole.stdout === full, "byte for byte, across pieces");
    const last = await env.run(["logs", "--run-key", "g", "--step", "a", "--stream", "stdout", "--tail", "3"]);
    assert.equal(last.stdout, "999998\n999999\n1000000\n");

    // `| head -1` closes the pipe: the follow ends although the step still runs.
    const piped = await new Deno.Command("bash", {
      args: [
        "-c",
        'timeout 20 "$@" | head -1; echo "follow exited ${PIPESTATUS[0]}" >&2',
        "bash",
        ...CLI,
        ...env.globals(),
        ...["logs", "--run-key", "g", "--step", "a", "--stream", "stdout", "--follow"],
      ],
      env: env.env(),
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(new TextDecoder().decode(piped.stdout), "1\n");
    assert.equal(new TextDecoder().decode(piped.stderr), "follow exited 0\n", "it ended by itself, not by the timeout");
    assert.equal(step(await env.status("g"), "a").status, "RUNNING", "the step still ran when the follow ended");
    // Both streams, stdout closed early: stderr is still written whole (its own reader is there).
    const errFile = join(env.home, "err");
    const both = await new Deno.Command("bash", {
      args: [
        "-c",
        '"$@" 2> "$ERR" | head -1',
        "bash",
        ...CLI,
        ...env.globals(),
        "logs",
        "--run-key",
        "g",
        "--step",
        "a",
      ],
      env: { ...env.env(), ERR: errFile },
      stdout: "piped",
    }).output();
    assert.equal(new TextDecoder().decode(both.stdout), "1\n");
    assert.ok(Deno.readTextFileSync(errFile) === full, "stderr whole although stdout closed");
    Deno.writeTextFileSync(go, "");
    await env.waitFor("g", "the run ends", (run) => run.status === "SUCCEEDED");

    // An output file removed by hand is an error, not an empty log.
    const job = step(await env.status("g"), "b").orchesjob_status;
    Deno.removeSync(job.stdout_file);
    const gone = await env.run(["logs", "--run-key", "g", "--step", "b", "--stream", "stdout"]);
    assert.equal(gone.code, 1, gone.stderr);
    assert.match(errorLine(gone).error, /^logs: cannot read the stdout of job .* \(run key g:b:1\): its file is gone$/);

    // A job removed by `job clean` (its row and its files) is an error too, not an empty log.
    const cleaned = await env.run(["job", "clean", "--all"]);
    assert.equal(cleaned.code, 0, cleaned.stderr);
    assert.equal((await env.run(["job", "status", "--run-key", "g:a:1"])).code, 3, "the job is gone");
    const forgotten = await env.run(["logs", "--run-key", "g", "--step", "a", "--stream", "stderr"]);
    assert.equal(forgotten.code, 1, forgotten.stderr);
    assert.equal(forgotten.stdout, "");
    assert.equal(
      errorLine(forgotten).error,
      `logs: cannot read the stderr of job ${step(await env.status("g"), "a").orchesjob_status.job_id} ` +
        "(run key g:a:1): the executor no longer knows the job (it was cleaned), and its output went with it",
    );
  },
);

flowTest(
  builtin,
  "logs of a job that ended before it had output files: nothing to print, not an error",
  async (env) => {
    const file = env.flow("lost.yaml", `flow_id: lost\nsteps:\n  - {id: a, command: ["true"]}\n`);
    const { code } = await runCrashingAt(
      env,
      "supervisor:before-output-files",
      ["start", "--run-key", "k", file],
      false,
    );
    assert.equal(code, 1, "the job is LOST, the step FAILED");
    const job = step(await env.status("k"), "a").orchesjob_status;
    assert.deepEqual([job.status, job.target_pid, job.exit_code], ["LOST", null, null]);
    assert.ok(!existsSync(job.stdout_file) && !existsSync(job.stderr_file), "the job never had output files");
    const logs = await env.run(["logs", "--run-key", "k", "--step", "a"]);
    assert.deepEqual([logs.code, logs.stdout, logs.stderr], [0, "", ""]);
  },
);

flowTest(builtin, "logs --follow of a step in a run nobody drives says so once, and keeps waiting", async (env) => {
  const file = env.flow(
    "two.yaml",
    `flow_id: two\nsteps:\n  - {id: a, command: ["true"]}\n  - {id: b, when: a, command: ["true"]}\n`,
  );
  await undrivenRun(env, "u", file);
  const follower = env.spawn(["logs", "--run-key", "u", "--step", "b", "--follow"]);
  const stderr = collectText(follower.stderr);
  await eventually("the notice", () => stderr.text.includes("\n"), 10);
  const notice = stderr.text;
  assert.deepEqual(JSON.parse(notice.trim()), {
    warning: "Driver: none; step b starts once the run is resumed: orchesjob-flow resume --run-key u",
  });
  // Several more looks at the run (every 0.1 s), none of which says it again.
  await new Promise((resolve) => setTimeout(resolve, 1500));
  assert.equal(step(await env.status("u"), "b").status, "PENDING");
  follower.kill("SIGTERM");
  assert.equal((await follower.status).code, 130, "still waiting when interrupted");
  assert.equal((await stderr.done).slice(notice.length), "", "the notice came once");
  await follower.stdout.cancel();
});

flowTest(
  builtin,
  "logs --follow of a step the run ended without: exit 3 and one JSON line, not 0 and nothing",
  async (env) => {
    await undrivenRun(env, "e", env.flow("two.yaml", TWO_STEPS));
    const follower = env.spawn(["logs", "--run-key", "e", "--step", "b", "--follow"]);
    const stderr = collectText(follower.stderr);
    // Its notice says it is waiting for b to start; then the run ends without it.
    await eventually("the follower waits", () => stderr.text.includes("Driver: none"), 10);
    assert.equal((await env.json(["cancel", "--run-key", "e"])).status, "CANCELLED");
    const expected = "logs: step b has not started, and will not: run e ended CANCELLED (step b is CANCELLED)";
    assert.equal((await follower.status).code, 3);
    const lines = (await stderr.done).trim().split("\n");
    assert.equal(lines.length, 2, lines.join("\n"));
    assert.deepEqual(JSON.parse(lines[1]), { error: expected });
    assert.equal(await new Response(follower.stdout).text(), "");
    // A follow begun once the run has ended says so at once.
    const late = await env.run(["logs", "--run-key", "e", "--step", "b", "--follow"]);
    assert.deepEqual([late.code, late.stdout, errorLine(late).error], [3, "", expected]);
  },
);

flowTest(
  builtin,
  "logs --follow of a step SKIPPED while the run goes on: exit 3 at once, not a wait for the run's end",
  async (env) => {
    const go = join(env.home, "go");
    const file = env.flow(
      "skip.yaml",
      `flow_id: skip
steps:
  - {id: a, command: ["false"]}
  - {id: b, when: a, command: ["true"]}
  - {id: long, command: ${JSON.stringify(`while [ ! -f '${go}' ]; do sleep 0.05; done`)}}
`,
    );
    await env.json(["start", "--run-key", "s", "-d", file]);
    try {
      const live = await env.waitFor(
        "s",
        "b skipped, long running",
        (run) => step(run, "b").status === "SKIPPED" && step(run, "long").status === "RUNNING",
      );
      assert.equal(live.status, "RUNNING");
      // Before, it waited for the run's end, which only the file `go` brings: a follower still waiting
      // after the generous bound of `eventually` fails the test (and the finally ends the run).
      let follow: CliResult | null = null;
      const following = env.run(["logs", "--run-key", "s", "--step", "b", "--follow"]);
      following.then((done) => (follow = done));
      await eventually("the follower ends by itself while the run goes on", () => follow !== null, 60);
      follow = await following;
      assert.deepEqual([follow.code, follow.stdout, errorLine(follow).error], [
        3,
        "",
        "logs: step b has not started, and will not: it is SKIPPED (run s is RUNNING)",
      ]);
      assert.equal((await env.status("s")).status, "RUNNING", "it did not wait for the run's end");
    } finally {
      Deno.writeTextFileSync(go, "");
    }
    await env.waitFor("s", "the run ends", (run) => run.status === "FAILED");
  },
);
