/**
 * Descriptors that the caller left open (a lock, `exec 9>lock; flock 9`; a pipe that a CI runner or
 * `( … ) | cat` waits on) are not handed to the detached driver or to the jobs: `start -d` returns,
 * and the caller's pipe ends, while the run goes on; an interrupted foreground `start` leaves no job
 * holding it either.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { CLI, eventually, tempDir, TEST_ENV, writeFile } from "../helpers.ts";

/**
 * Runs `CLI ARGS… 7>&1 12>&1` with stdout and stderr to files, piped (its descriptors 7 and 12) into
 * `cat`; `closed` is made once cat saw the pipe's end, that is once no process holds those descriptors.
 * `background`: the CLI runs in the background of a shell in a session of its own, whose PID is written
 * to `pid`, so that the test can interrupt it.
 */
function piped(dir: string, args: string[], background: boolean): Deno.ChildProcess {
  const run = background
    ? '( setsid "$@" 7>&1 12>&1 > "$D/out" 2> "$D/err" & echo $! > "$D/pid"; wait )'
    : '( "$@" 7>&1 12>&1 > "$D/out" 2> "$D/err" )';
  return new Deno.Command("/bin/bash", {
    args: ["-c", `${run} | cat > /dev/null; : > "$D/closed"`, "bash", ...CLI, ...args],
    env: { ...TEST_ENV, D: dir },
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
}

function setup(dir: string) {
  const go = join(dir, "go");
  const marks = join(dir, "marks");
  const flow = writeFile(
    dir,
    "flow.yaml",
    `flow_id: fds\nsteps:\n  - id: a\n    command: "echo a >> '${marks}'; while [ ! -f '${go}' ]; do sleep 0.05; done"\n`,
  );
  const db = ["--db", join(dir, "state", "s.sqlite3"), "--executor", "builtin", "--poll-interval", "0.1"];
  return { go, marks, flow, db };
}

async function statusOf(db: string[], runKey: string): Promise<{ status: string; steps: { status: string }[] }> {
  const child = await new Deno.Command(CLI[0], {
    args: [...CLI.slice(1), ...db, "status", "--run-key", runKey],
    env: TEST_ENV,
    stdout: "piped",
    stderr: "piped",
  }).output();
  return JSON.parse(new TextDecoder().decode(child.stdout));
}

const exists = (path: string) => {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
};

Deno.test("start -d: the caller's pipe ends once start -d returns, while the run still runs", async () => {
  using dir = tempDir();
  const { go, marks, flow, db } = setup(dir.path);
  try {
    const shell = piped(dir.path, [...db, "start", "-d", "--run-key", "d1", flow], false);
    await eventually("the pipe ended", () => exists(join(dir.path, "closed")));
    assert.equal((await shell.status).code, 0);
    const report = JSON.parse(Deno.readTextFileSync(join(dir.path, "out")));
    assert.equal(report.detached, true, Deno.readTextFileSync(join(dir.path, "err")));
    // The situation under test: the driver and the job were alive when the pipe ended, and still are.
    await eventually("step a started", () => exists(marks));
    const running = await statusOf(db, "d1");
    assert.equal(running.status, "RUNNING");
    assert.equal(running.steps[0].status, "RUNNING");
    assert.ok(!exists(go));
  } finally {
    Deno.writeTextFileSync(go, "");
  }
  await eventually("the run ended", async () => (await statusOf(db, "d1")).status === "SUCCEEDED");
  assert.equal(Deno.readTextFileSync(marks), "a\n");
});

Deno.test("an interrupted foreground start: its job does not hold the caller's pipe", async () => {
  using dir = tempDir();
  const { go, marks, flow, db } = setup(dir.path);
  try {
    const shell = piped(dir.path, [...db, "start", "-q", "--run-key", "f1", flow], true);
    await eventually("step a started", () => exists(marks) && exists(join(dir.path, "pid")));
    await eventually("the driver saw it run", async () => (await statusOf(db, "f1")).steps[0].status === "RUNNING");
    const pid = Number(Deno.readTextFileSync(join(dir.path, "pid")).trim());
    Deno.kill(-pid, "SIGINT");
    await eventually("the pipe ended", () => exists(join(dir.path, "closed")));
    assert.equal((await shell.status).code, 0);
    // The job was still running when the pipe ended: only the go file ends it.
    assert.ok(!exists(go));
    const left = await statusOf(db, "f1");
    assert.equal(left.steps[0].status, "RUNNING");
  } finally {
    Deno.writeTextFileSync(go, "");
  }
  const resumed = await new Deno.Command(CLI[0], {
    args: [...CLI.slice(1), ...db, "wait", "--advance", "--run-key", "f1", "--timeout", "120"],
    env: TEST_ENV,
  }).output();
  assert.equal(resumed.code, 0);
  assert.equal(Deno.readTextFileSync(marks), "a\n");
});
