/** Durations, times and "did you mean" as operators type them. */
import assert from "node:assert/strict";
import { suggestName } from "../../src/cli/args.ts";
import { UserError } from "../../src/cli/errors.ts";
import { parseDuration, parseSince } from "../../src/cli/time_args.ts";

Deno.test("durations: seconds, or a number with s, m, h, d or w", () => {
  const cases: [string, number][] = [
    ["90", 90],
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
  for (const bad of ["", "soon", "-1h", "1y", "h"]) assert.throws(() => parseDuration(bad, "--x"), UserError, bad);
});

Deno.test("since: now minus a duration, or an ISO 8601 date or time", () => {
  assert.equal(parseSince("1h", "--since", 10_000), 6400);
  assert.equal(parseSince("2026-01-01T00:00:00Z", "--since", 0), Date.UTC(2026, 0, 1) / 1000);
  assert.equal(parseSince("2026-01-01", "--since", 0), new Date(2026, 0, 1).getTime() / 1000, "local midnight");
  assert.throws(() => parseSince("2026-13-45", "--since", 0), UserError);
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
