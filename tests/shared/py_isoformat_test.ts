import assert from "node:assert/strict";
import { parsePythonIsoFields, parsePythonIsoTime } from "../../src/shared/py_isoformat.ts";

/**
 * Epoch seconds for a time with an offset; the wall clock of a naive (local) time; "refused" where
 * Python raises "Invalid isoformat string"; "problem" where it reads the string and then refuses the
 * fields. Every expectation was printed by CPython 3.11.7's `datetime.fromisoformat(text)` (and
 * `.timestamp()`); the test itself needs no Python.
 */
type Expected = number | { local: string; microsecond: number } | "refused" | "problem";

Deno.test("parsePythonIsoTime reads what Python 3.11's datetime.fromisoformat reads, as it reads it", () => {
  const table: [string, Expected][] = [
    ["2026-01-01", { local: "2026-01-01T00:00:00", microsecond: 0 }],
    ["2026-01-01T12:00:00+09:00", 1767236400.0],
    ["2026-01-01 12:00", { local: "2026-01-01T12:00:00", microsecond: 0 }],
    ["2026-01-01T12:00:00.250Z", 1767268800.25],
    ["20260101", { local: "2026-01-01T00:00:00", microsecond: 0 }],
    ["20260101T120000", { local: "2026-01-01T12:00:00", microsecond: 0 }],
    ["20260101T1200Z", 1767268800.0],
    ["20260101T120000+0530", 1767249000.0],
    ["2026-01-01T12", { local: "2026-01-01T12:00:00", microsecond: 0 }],
    ["2026-01-01T12Z", 1767268800.0],
    ["2026-01-01T1230", { local: "2026-01-01T12:30:00", microsecond: 0 }],
    ["2026-W01-1", { local: "2025-12-29T00:00:00", microsecond: 0 }],
    ["2026W011", { local: "2025-12-29T00:00:00", microsecond: 0 }],
    ["2026-W01", { local: "2025-12-29T00:00:00", microsecond: 0 }],
    ["2026W01", { local: "2025-12-29T00:00:00", microsecond: 0 }],
    ["2026-W53-1", { local: "2026-12-28T00:00:00", microsecond: 0 }],
    ["2020-W53-7", { local: "2021-01-03T00:00:00", microsecond: 0 }],
    ["2026-W01-1T08:30", { local: "2025-12-29T08:30:00", microsecond: 0 }],
    ["2026W0112", "refused"],
    ["2026-01-01T12:00:00,5", { local: "2026-01-01T12:00:00", microsecond: 500000 }],
    ["2026-01-01T12:00:00.1234567Z", 1767268800.123456],
    ["20260101T120000,25-01", 1767272400.25],
    ["2026-01-01T12:00Z", 1767268800.0],
    ["2026-01-01T12:00+05", 1767250800.0],
    ["2026-01-01T12:00-0330", 1767281400.0],
    ["2026-01-01T12:00+05:30:15", 1767248985.0],
    ["2026-01-01T12:00+05:30:15.5", 1767248984.5],
    ["2026-01-01T12:00-00:00", 1767268800.0],
    ["2026-01-01T12:00+23:59:59.999999", 1767182400.000001],
    ["2026-01-01t12:00", { local: "2026-01-01T12:00:00", microsecond: 0 }],
    ["2026-01-01x12:00", { local: "2026-01-01T12:00:00", microsecond: 0 }],
    ["2026-01-01\u00e912:00", { local: "2026-01-01T12:00:00", microsecond: 0 }],
    ["2026-01-01T12:00:00.Z", 1767268800.0],
    ["2026-01-01T12:00:00:5", { local: "2026-01-01T12:00:00", microsecond: 500000 }],
    ["2026-01-01T12:00+00:00:00.5", 1767268800.0],
    ["0001-01-01T00:00Z", -62135596800.0],
    ["9999-12-31T23:59:59", { local: "9999-12-31T23:59:59", microsecond: 0 }],
    ["2026-001", "refused"],
    ["2026001", "refused"],
    ["2026-1-01", "refused"],
    ["2026-0101", "refused"],
    ["202601-01", "refused"],
    [" 2026-01-01", "refused"],
    ["2026-01-01 ", "refused"],
    ["2026-01-01T", "refused"],
    ["2026-01-01T1", "refused"],
    ["2026-01-01T12:0000", "refused"],
    ["2026-01-01T1200:00", "refused"],
    ["2026-01-01T12:00z", "refused"],
    ["2026-01-01T12:00+1", "refused"],
    ["2026-01-01T12:00+123", "refused"],
    ["2026-01-01T12:00Z+01", "refused"],
    ["2026-01-01T12:00:00,", "refused"],
    ["2026-01-01T12:00:00.12345a", "refused"],
    ["2026-W01-8", "refused"],
    ["2026-W00-1", "refused"],
    ["2026-W54-1", "refused"],
    ["2026-W53-1X", "refused"],
    ["2026W01-1", "refused"],
    ["2026-W011", "refused"],
    ["2021-W53-1", "refused"],
    ["+026-01-01", "refused"],
    ["\uff12\uff10\uff12\uff16-01-01", "refused"],
    ["yesterday", "refused"],
    ["", "refused"],
    ["1767225600", "refused"],
    ["2026-02-29", "problem"],
    ["2026-02-30T10:00:00Z", "problem"],
    ["0000-01-01", "problem"],
    ["2026-13-01", "problem"],
    ["2026-01-01T24:00", "problem"],
    ["2026-01-01T12:60", "problem"],
    ["2026-01-01T12:00:60", "problem"],
    ["2026-01-01T12:00+24:00", "problem"],
    ["2026-01-01T12:00-24", "problem"],
    ["9999-W52-6", "problem"],
    ["0000-W01-1", "problem"],
  ];
  for (const [text, expected] of table) {
    const got = parsePythonIsoTime(text);
    if (expected === "refused") assert.equal(got, null, text);
    else if (expected === "problem") assert.ok(got !== null && typeof got === "object", `${text}: ${got}`);
    else if (typeof expected === "number") assert.equal(got, expected, text);
    else {
      // A naive time is local, whatever TZ the suite runs under; JavaScript reads such a date-time as local.
      const local = new Date(expected.local).getTime() / 1000 + expected.microsecond / 1e6;
      assert.equal(got, local, text);
    }
  }
});

Deno.test("parsePythonIsoTime says which field Python's datetime refuses", () => {
  const table: [string, string][] = [
    ["2026-02-29", "is not a date: February 2026 has 28 days"],
    ["2026-13-01T00:00Z", "is not a date: there is no month 13"],
    ["0000-01-01", "is not a date: there is no year 0 (1 to 9999)"],
    ["9999-W52-6", "is not a date: there is no year 10000 (1 to 9999)"],
    ["2026-01-01T24:00", "is not a time: there is no hour 24"],
    ["2026-01-01T12:60", "is not a time: there is no minute 60"],
    ["2026-01-01T12:00:60", "is not a time: there is no second 60"],
    ["2026-01-01T12:00+24:00", "has an offset of 24 hours or more"],
    // Python checks the offset first, then the date, then the time.
    ["2026-02-30T24:00+24", "has an offset of 24 hours or more"],
    ["2026-02-30T24:00", "is not a date: February 2026 has 28 days"],
  ];
  for (const [text, problem] of table) assert.deepEqual(parsePythonIsoTime(text), { problem }, text);
});

Deno.test("parsePythonIsoFields keeps the offset and the microseconds as Python does", () => {
  assert.deepEqual(parsePythonIsoFields("20260101T120000,25-0130"), {
    year: 2026,
    month: 1,
    day: 1,
    hour: 12,
    minute: 0,
    second: 0,
    microsecond: 250_000,
    offsetMicros: -5_400_000_000,
  });
  assert.equal((parsePythonIsoFields("2026-W01-1") as { offsetMicros: null }).offsetMicros, null);
});
