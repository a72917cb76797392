import assert from "node:assert/strict";
import { parseTimeArgument } from "../../src/shared/time.ts";

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
    ["2026-13-01", null],
    ["2026-05-04T25:00", null],
    ["04/05/2026", null],
  ];
  for (const [text, expected] of table) assert.equal(parseTimeArgument(text, now), expected, text);
});
