/** Durations, times and "did you mean" as operators type them. */
import assert from "node:assert/strict";
import { suggestName } from "../../src/cli/args.ts";
import { UserError } from "../../src/cli/errors.ts";
import { parseDuration, parseSince } from "../../src/cli/time_args.ts";
import { join } from "node:path";
import { cli, eventually, processAlive, tempDir, thrown, writeFile } from "../helpers.ts";

Deno.test("durations: a number with s, m, h, d or w; a bare number only when it is 0", () => {
  const cases: [string, number][] = [
    ["90s", 90],
    ["15m", 900],
    ["6h", 21600],
    ["7d", 604800],
    [
      "2w",
      1209600,
    ],
    ["1.5h", 5400],
    ["0", 0],
  ];
  for (const [text, seconds] of cases) assert.equal(parseDuration(text, "--x"), seconds, text);
  for (const bad of ["", "soon", "-1h", "1y", "h", "1e400s", "90", "7", "0.5"]) {
    assert.throws(() => parseDuration(bad, "--x"), UserError, bad);
  }
  // At most 100 years: 400 digits are Infinity, and a time that far back is NaN or -Infinity.
  assert.equal(parseDuration("36525d", "--x"), 3_155_760_000);
  for (const long of ["36526d", "3155760001s", "9".repeat(400) + "s", "9".repeat(400) + "w"]) {
    assert.equal(
      thrown(() => parseDuration(long, "--older-than"), UserError).message,
      `option --older-than takes at most 100 years (36525d), got ${JSON.stringify(long)}`,
    );
  }
});

Deno.test("since: now minus a duration, or an ISO 8601 date or time", () => {
  assert.equal(parseSince("1h", "--since", 10_000), 6400);
  assert.equal(parseSince("2026-01-01T00:00:00Z", "--since", 0), Date.UTC(2026, 0, 1) / 1000);
  assert.equal(parseSince("2026-01-01", "--since", 0), new Date(2026, 0, 1).getTime() / 1000, "local midnight");
  assert.throws(() => parseSince("2026-13-45", "--since", 0), UserError);
  // A day the month does not have is refused, not rolled over (2026-02-30 was March 2).
  assert.equal(
    thrown(() => parseSince("2026-02-30", "--since", 0), UserError).message,
    'option --since "2026-02-30" is not a date: February 2026 has 28 days',
  );
  assert.match(thrown(() => parseSince("2026-04-31T10:00:00Z", "--since", 0), UserError).message, /April 2026 has 30/);
  assert.throws(() => parseSince("9".repeat(400) + "d", "--since", 0), UserError);
  // A word is neither form: the message offers both (it named only durations, though a time is taken too).
  assert.match(
    thrown(() => parseSince("yesterday", "--since", 0), UserError).message,
    /duration such as .* ISO 8601 time/,
  );
});

Deno.test("suggestions: a unique prefix first, then a near typo, never a far guess", () => {
  const commands = ["start", "status", "list", "logs", "retry", "clean", "wait", "watch", "cancel"];
  assert.equal(suggestName("stat", commands), "status");
  assert.equal(suggestName("satus", commands), "status");
  assert.equal(suggestName("rety", commands), "retry");
  assert.equal(suggestName("frobnicate", commands), undefined);
  assert.equal(suggestName("runkey", ["run-key", "step"]), "run-key");
  assert.equal(suggestName("failed", ["PENDING", "FAILED"]), "FAILED");
});

Deno.test("--not-before: the last time taken (9999-12-31T23:59:59Z) is stored and shown, never as NaN", async () => {
  using dir = tempDir();
  const flow = writeFile(dir.path, "t.yaml", 'flow_id: t\nsteps:\n  - {id: s, command: ["true"]}\n');
  const base = ["--db", join(dir.path, "state.sqlite3"), "--executor", "builtin", "--poll-interval", "0.1"];
  const started = await cli([
    ...base,
    "start",
    "-d",
    "--run-key",
    "late",
    "--not-before",
    "9999-12-31T23:59:59Z",
    flow,
  ]);
  assert.equal(started.code, 0, started.stderr);
  const detached = JSON.parse(started.stdout);
  assert.equal(detached.status, "SCHEDULED");
  assert.equal(detached.not_before, 253_402_300_799);
  const status = await cli([...base, "status", "--run-key", "late", "--format", "table"]);
  const list = await cli([...base, "list", "--format", "table"]);
  for (const table of [status.stdout, list.stdout]) {
    assert.match(table, /(Begins:|SCHEDULED until) (9999-12-3[01]|10000-01-01) \d{2}:\d{2}:\d{2}/, table);
    assert.doesNotMatch(table, /NaN/);
  }
  const cancelled = await cli([...base, "cancel", "--run-key", "late"]);
  assert.equal(JSON.parse(cancelled.stdout).status, "CANCELLED", cancelled.stderr);
  await eventually("the detached driver exits", () => !processAlive(detached.pid));
});
