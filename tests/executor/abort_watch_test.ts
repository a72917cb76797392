/**
 * AbortWatch, with stand-in jobs and a stand-in /proc pass: every round probes each watched job, then
 * makes at most one pass for all those that need it; a SIGKILL (atDeadline) follows only a look that
 * found the group still the job's past its deadline.
 */
import assert from "node:assert/strict";
import { AbortWatch, type Probe, type WatchedJob } from "../../src/executor/builtin/abort_watch.ts";
import type { LiveGroup } from "../../src/executor/builtin/processes.ts";

/** A stand-in /proc: the groups in `live` live; every probe and pass is recorded in `events`. */
function world() {
  const live = new Map<number, LiveGroup>();
  const events: string[] = [];
  const scan = (pgids: number[]) => {
    events.push(`scan ${pgids.join(",")}`);
    return new Map(pgids.filter((pgid) => live.has(pgid)).map((pgid) => [pgid, live.get(pgid)!]));
  };
  const job = (group: number, probe: () => Probe = () => "group", owns = true): WatchedJob => ({
    group,
    probe: () => {
      events.push(`probe ${group}`);
      return probe();
    },
    owns: () => owns,
  });
  return { live, events, scan, job };
}

const scans = (events: string[]) => events.filter((event) => event.startsWith("scan"));

Deno.test("one pass per round answers for every job whose probe cannot tell, after all the probes", async () => {
  const { live, events, scan, job } = world();
  // The groups empty over the passes: 12 after the first, 11 and 13 after the third.
  let passes = 0;
  const watch = new AbortWatch((pgids) => {
    const seen = scan(pgids);
    passes++;
    if (passes === 1) live.delete(12);
    if (passes === 3) live.clear();
    return seen;
  });
  for (const group of [11, 12, 13]) live.set(group, { leaderStarted: null, leaderTicks: null });
  const ends = [11, 12, 13].map((group) => watch.until(job(group), Infinity, 0.01, () => assert.fail("a SIGKILL")));
  assert.deepEqual(await Promise.all(ends), [true, true, true]);
  assert.deepEqual(scans(events), ["scan 11,12,13", "scan 11,12,13", "scan 11,13", "scan 11,13"]);
  // Each pass comes after the probes of its round, of every job watched then.
  assert.deepEqual(events.filter((event) => !event.startsWith("scan")).length, 3 + 3 + 2 + 2);
  for (let i = 0; i < events.length; i++) {
    if (!events[i].startsWith("scan")) continue;
    const asked = events[i].slice(5).split(",");
    assert.deepEqual(events.slice(i - asked.length, i), asked.map((group) => `probe ${group}`));
  }
});

Deno.test("the SIGKILL follows a look that found the group the job's past its deadline, and only that", async () => {
  const { live, events, scan, job } = world();
  const watch = new AbortWatch(scan);
  live.set(51, { leaderStarted: null, leaderTicks: null });
  const kills: string[] = [];
  const end = watch.until(job(51), performance.now() + 30, 0.01, () => kills.push(events.at(-1)!));
  assert.equal(await end, false);
  assert.deepEqual(kills, ["scan 51"], "sent right after the pass that found the group live");
});

Deno.test("a pass asks only about the jobs whose probe cannot tell; a group no longer the job's is gone, not killed", async () => {
  const { live, events, scan, job } = world();
  const watch = new AbortWatch(scan);
  // 21: its supervisor holds the PID; 22: the PID is another program's; 23: /proc shows the group
  // live, but led by a process that took the id since (owns says no).
  live.set(23, { leaderStarted: 1, leaderTicks: null });
  const kills: number[] = [];
  const kill = (group: number) => () => kills.push(group);
  const ends = [
    watch.until(job(21, () => "alive"), performance.now() + 50, 0.01, kill(21)),
    watch.until(job(22, () => "gone"), performance.now() + 50, 0.01, kill(22)),
    watch.until(job(23, () => "group", false), performance.now() + 50, 0.01, kill(23)),
  ];
  assert.deepEqual(await Promise.all(ends), [false, true, true]);
  assert.deepEqual(kills, [21]);
  assert.deepEqual(scans(events), ["scan 23"]);
});

Deno.test("a deadline already past: the SIGKILL follows the first look, which comes in the next round", async () => {
  const { live, events, scan, job } = world();
  const watch = new AbortWatch(scan);
  live.set(31, { leaderStarted: null, leaderTicks: null });
  let killed = 0;
  const end = watch.until(job(31), performance.now(), 0.05, () => killed++);
  assert.deepEqual(events, [], "no look in the caller's turn");
  assert.equal(await end, false);
  assert.equal(killed, 1);
  assert.deepEqual(events, ["probe 31", "scan 31"]);
});

Deno.test("a pass that fails fails every abort of its round with its error, and sends nothing", async () => {
  const { job } = world();
  const watch = new AbortWatch(() => {
    throw new Error("/proc unreadable");
  });
  let killed = 0;
  const ends = [41, 42].map((group) => watch.until(job(group), performance.now(), 0.01, () => killed++));
  for (const end of ends) await assert.rejects(end, /\/proc unreadable/);
  assert.equal(killed, 0);
});
