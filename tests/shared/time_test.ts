import assert from "node:assert/strict";
import { END_OF_TIME, localDateTime, parseIsoTime, parseTimeArgument } from "../../src/shared/time.ts";

Deno.test("parseTimeArgument: ISO 8601, +DURATION and epoch seconds", () => {
  const now = 1_800_000_000.5;
  const local = (text: string) => new Date(text).getTime() / 1000;
  const table: [string, number | null][] = [
    ["+90", now + 90],
    ["+1.5", now + 1.5],
    ["+90s", now + 90],
    ["+15m", now + 900],
    ["+1h30m", now + 5400],
    ["+2d", now + 172800],
    ["+1d2h3m4s", now + 86400 + 7200 + 180 + 4],
    ["1777831200", 1777831200],
    ["2026-05-04T03:00:00+09:00", 1777831200],
    ["2026-05-04T03:00:00+0900", 1777831200],
    ["2026-05-03T18:00:00Z", 1777831200],
    ["2026-05-03T18:00:00.250Z", 1777831200.25],
    ["2026-05-04T03:00", local("2026-05-04T03:00")],
    ["2026-05-04 03:00:30", local("2026-05-04T03:00:30")],
    // A date alone is local midnight, not UTC midnight.
    ["2026-05-04", local("2026-05-04T00:00")],
    ["", null],
    ["+", null],
    ["+5x", null],
    ["+5m3", null],
    ["+-5", null],
    ["tomorrow", null],
    ["2026-05-04T25:00", null],
    ["04/05/2026", null],
  ];
  for (const [text, expected] of table) assert.equal(parseTimeArgument(text, now), expected, text);
});

Deno.test("parseTimeArgument: a day its month lacks is refused, not rolled over into the next month", () => {
  const now = 1_800_000_000;
  const table: [string, string][] = [
    ["2026-02-30T10:00:00Z", "is not a date: February 2026 has 28 days"],
    ["2026-02-29", "is not a date: February 2026 has 28 days"],
    ["2100-02-29T00:00", "is not a date: February 2100 has 28 days"],
    ["2026-04-31 12:00", "is not a date: April 2026 has 30 days"],
    ["2026-01-32", "is not a date: January 2026 has 31 days"],
    ["2026-05-00", "is not a date: May 2026 has 31 days"],
    ["2026-00-10", "is not a date: there is no month 0"],
    ["2026-13-01", "is not a date: there is no month 13"],
  ];
  for (const [text, problem] of table) assert.deepEqual(parseTimeArgument(text, now), { problem }, text);
  assert.equal(parseTimeArgument("2028-02-29T00:00:00Z", now), Date.UTC(2028, 1, 29) / 1000, "a leap day");
  assert.equal(parseTimeArgument("2000-02-29T00:00:00Z", now), Date.UTC(2000, 1, 29) / 1000, "a leap day");
  assert.deepEqual(parseIsoTime("1900-02-29"), { problem: "is not a date: February 1900 has 28 days" });
});

Deno.test("parseTimeArgument: every time is before the year 10000, so none prints as NaN", () => {
  const now = 1_800_000_000;
  const later = { problem: "is later than the year 9999" };
  assert.equal(parseTimeArgument("9999-12-31T23:59:59.999Z", now), END_OF_TIME - 0.001);
  assert.equal(parseTimeArgument(String(END_OF_TIME - 1), now), END_OF_TIME - 1);
  for (
    const text of [
      String(END_OF_TIME),
      "1796206651000", // epoch milliseconds given for seconds
      "99999999999999999999",
      "9".repeat(400), // Infinity
      "+999999999d",
      "+" + "9".repeat(400),
      "+1" + "9".repeat(400) + "d",
      `+${END_OF_TIME - now}`,
    ]
  ) {
    assert.deepEqual(parseTimeArgument(text, now), later, text);
  }
  // JavaScript's own dates end in the year 275760: a longer year is no ISO 8601 time here at all.
  assert.equal(parseTimeArgument("275760-09-14", now), null);
});

Deno.test("localDateTime shows a time past JavaScript's dates as its number, never NaN", () => {
  assert.equal(localDateTime(1e20), "epoch 100000000000000000000");
  assert.doesNotMatch(localDateTime(END_OF_TIME - 1), /NaN/);
});
