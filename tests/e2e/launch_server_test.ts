/**
 * The built-in runner's launch server (src/executor/builtin/launch_server.ts) through the real CLI: a
 * driver launches its jobs through one long-lived bash, the server goes when its driver goes, and a
 * server that dies mid-run costs no step and runs none twice.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { flowTest, statuses } from "./flow_env.ts";
import { eventually, isStopped, processAlive } from "../helpers.ts";
import { assertNoJobProcesses, countLines, logged, waitForLines } from "./fault_helpers.ts";

const builtin = ["builtin"] as const;

/** Each claim's "PID MARK" (a launch server's jobs) or "PID" (a spawned supervisor's), and on Linux " @START". */
function claims(home: string): { pid: number; mark: string | null }[] {
  const found = [];
  for (const entry of Deno.readDirSync(join(home, "jobs"))) {
    if (!entry.isFile || !entry.name.endsWith(".claim")) continue;
    const match = /^(\d+)(?: ([^@\s]\S*))?(?: @\d+)?\n$/.exec(Deno.readTextFileSync(join(home, "jobs", entry.name)));
    if (match) found.push({ pid: Number(match[1]), mark: match[2] ?? null });
  }
  return found;
}

/** PIDs of live processes whose command line holds `text` and which lead their session (the server). */
function sessionLeadersWith(text: string): number[] {
  const leaders = [];
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const cmdline = Deno.readTextFileSync(`/proc/${entry.name}/cmdline`);
      const stat = Deno.readTextFileSync(`/proc/${entry.name}/stat`);
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (cmdline.includes(text) && fields[0] !== "Z" && Number(fields[3]) === Number(entry.name)) {
        leaders.push(Number(entry.name));
      }
    } catch { /* gone */ }
  }
  return leaders;
}

const linux = Deno.build.os === "linux";

flowTest(
  builtin,
  "a driver launches every job of a run through one launch server, which leaves with it",
  async (env) => {
    const log = join(env.home, "ran");
    const chain = Array.from(
      { length: 6 },
      (_, i) => `  - {id: s${i}, ${i ? `when: s${i - 1}, ` : ""}command: ${logged(log, `s${i}`)}}`,
    );
    const fan = Array.from({ length: 5 }, (_, i) => `  - {id: f${i}, when: s5, command: ${logged(log, `f${i}`)}}`);
    const file = env.flow("server.yaml", `flow_id: server\nsteps:\n${[...chain, ...fan].join("\n")}\n`);
    const final = await env.json(["start", "--run-key", "k", file]);
    assert.equal(final.status, "SUCCEEDED", JSON.stringify(final));
    assert.deepEqual(Object.values(countLines(log)), Array(11).fill(1));
    const marks = claims(env.home).map((claim) => claim.mark);
    assert.equal(marks.length, 11);
    assert.equal(new Set(marks).size, 1, `one server launched them all: ${marks}`);
    assert.notEqual(marks[0], null, "the jobs were launched by a server, not by spawned supervisors");
    if (linux) {
      await eventually(
        "the server left with its driver",
        () => sessionLeadersWith(marks[0]!).length === 0,
        20,
      );
    }
    await assertNoJobProcesses(env.home);
  },
);

flowTest(
  builtin,
  "a launch server killed mid-run: the driver launches without it, every step once; a killed driver's server leaves",
  async (env) => {
    const log = join(env.home, "ran");
    const release = join(env.home, "release");
    const file = env.flow(
      "kill.yaml",
      `flow_id: kill
steps:
  - {id: a, command: ${logged(log, "a", `while [ ! -e '${release}' ]; do sleep 0.05; done`)}}
  - {id: b, when: a, command: ${logged(log, "b")}}
  - {id: c, when: a, command: ${logged(log, "c")}}
  - {id: d, when: b && c, command: ${logged(log, "d", "sleep 30")}}
`,
    );
    const driver = env.spawn(["start", "--run-key", "k", file]);
    await waitForLines(log, 1);
    const [first] = claims(env.home);
    assert.ok(first?.mark, `step a was launched by a server: ${JSON.stringify(claims(env.home))}`);
    const [server] = linux ? sessionLeadersWith(first.mark) : [];
    if (linux) {
      assert.ok(server, "the server is running");
      Deno.kill(server, "SIGKILL");
      await eventually("the server is gone", () => !processAlive(server));
    }
    Deno.writeTextFileSync(release, "");
    // b and c, then d, launch without the dead server.
    await waitForLines(log, 4);
    const launched = claims(env.home);
    assert.equal(launched.length, 4);
    if (linux) {
      assert.ok(launched.some((claim) => claim.mark !== first.mark), "no job after the kill came from the dead server");
    }
    // The driver dies while d runs: its new server leaves with it; d lives on. (d came from a server
    // the driver started after the first one died, alive at the kill: otherwise "it leaves" proves nothing.)
    const later = launched.map((claim) => claim.mark).filter((mark) => mark !== null && mark !== first.mark);
    if (linux) {
      assert.ok(later.some((mark) => sessionLeadersWith(mark!).length === 1), `a live later server: ${later}`);
    }
    driver.kill("SIGKILL");
    await driver.output();
    const marks = new Set(claims(env.home).map((claim) => claim.mark).filter((mark) => mark !== null));
    if (linux) {
      await eventually(
        "no server outlives its driver",
        () => [...marks].every((m) => sessionLeadersWith(m!).length === 0),
        20,
      );
    }
    const resumed = await env.waitFor(
      "k",
      "d running",
      (run) => run.steps.find((s: { id: string }) => s.id === "d")?.status === "RUNNING",
    );
    assert.equal(resumed.status, "RUNNING");
    await env.json(["cancel", "--run-key", "k"]);
    const final = await env.status("k");
    assert.deepEqual(statuses(final), { a: "SUCCEEDED", b: "SUCCEEDED", c: "SUCCEEDED", d: "CANCELLED" });
    assert.deepEqual(countLines(log), { a: 1, b: 1, c: 1, d: 1 });
    await assertNoJobProcesses(env.home);
  },
);

/** How many jobs of the state home are claimed. */
function claimCount(home: string): number {
  return [...Deno.readDirSync(join(home, "jobs"))].filter((entry) => entry.name.endsWith(".claim")).length;
}

flowTest(
  builtin,
  "a server working through a backlog longer than the relaunch pause keeps its jobs: the driver relaunches none beside it",
  async (env) => {
    if (!linux) return; // the server is found, stopped and paced through /proc
    const release = join(env.home, "release");
    const fan = Array.from({ length: 30 }, (_, i) => `  - {id: f${i}, when: a, command: "true"}`);
    const file = env.flow(
      "backlog.yaml",
      `flow_id: backlog\nsteps:\n  - {id: a, command: "while [ ! -e '${release}' ]; do sleep 0.05; done"}\n${
        fan.join("\n")
      }\n`,
    );
    const driver = env.spawn(["start", "--run-key", "k", file]);
    await eventually("step a claimed", () => {
      try {
        return claims(env.home).length === 1;
      } catch {
        return false; // no jobs directory yet
      }
    });
    const [first] = claims(env.home);
    assert.ok(first.mark, "step a was launched by a server");
    const [server] = sessionLeadersWith(first.mark);
    assert.ok(server, "the server is running");
    // The server works slowly from here on: a fork at a time, as on a small machine with a fan-out of a
    // thousand, where it took 10-20 s; paced here so that its backlog outlasts the relaunch pause (5 s).
    Deno.kill(server, "SIGSTOP");
    await eventually("the server is stopped", () => isStopped(server));
    Deno.writeTextFileSync(release, "");
    const launches = () => [...Deno.readDirSync(join(env.home, "jobs"))].filter((e) => e.name.endsWith(".launch"));
    await eventually("the fan-out's jobs are stored", () => launches().length === 31);
    const sentAt = performance.now();
    const unclaimedAfterPause = await paceServer(server, env.home, 31, sentAt);
    const output = await driver.output();
    assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
    const marks = claims(env.home).map((claim) => claim.mark);
    assert.equal(marks.length, 31);
    assert.deepEqual(
      marks.filter((mark) => mark !== first.mark),
      [],
      "jobs the server held were launched beside it (claims without its mark)",
    );
    // The situation under test: jobs sent to the server were still unclaimed after the relaunch pause.
    assert.ok(unclaimedAfterPause > 0, "the backlog did not outlast the relaunch pause");
    await assertNoJobProcesses(env.home);
  },
);

/** Sends `signal` to `pid`; false when it is gone (a server whose driver ended leaves). */
function signalled(pid: number, signal: Deno.Signal): boolean {
  try {
    Deno.kill(pid, signal);
    return true;
  } catch {
    return false;
  }
}

/**
 * Lets the stopped server `pid` work slowly until `jobs` jobs of `home` are claimed: continued for an
 * instant every 0.2 s (a job now and then), and, when it has claimed none for 1.5 s, until it claims
 * one more: it keeps claiming, well within the relaunch pause (5 s), but its backlog outlasts it.
 * Returns how many jobs were still unclaimed 5.5 s after `sentAt` (0: the backlog did not last).
 */
async function paceServer(pid: number, home: string, jobs: number, sentAt: number): Promise<number> {
  let count = claimCount(home);
  let progressAt = performance.now();
  let unclaimedAfterPause = 0;
  try {
    while (count < jobs && signalled(pid, "SIGCONT")) {
      while (performance.now() - progressAt > 1500 && claimCount(home) === count && processAlive(pid)) {
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      if (!signalled(pid, "SIGSTOP")) break;
      await eventually("the server is stopped", () => isStopped(pid) || !processAlive(pid));
      if (claimCount(home) > count) [count, progressAt] = [claimCount(home), performance.now()];
      if (performance.now() - sentAt > 5500 && unclaimedAfterPause === 0) unclaimedAfterPause = jobs - count;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  } finally {
    signalled(pid, "SIGCONT");
  }
  return unclaimedAfterPause;
}
