/**
 * Clocks and date formats. Flow times are epoch seconds with millisecond precision; orchesjob's are
 * whole epoch seconds.
 */
import { readEnv } from "./env.ts";

/** What the engine asks for the time, so tests can set it. */
export interface Clock {
  /** Epoch seconds, millisecond precision. */
  now(): number;
}

/**
 * Test-only: the file named by this variable holds a number of seconds added to this process's wall
 * clock, read again at each look, so a test can step the clock of running processes (NTP, a VM
 * restored) without touching the machine's. Nothing sets it outside tests; unset, it costs one
 * environment read per process.
 */
export const CLOCK_OFFSET_FILE_VARIABLE = "ORCHESJOB_FLOW_TEST_CLOCK_OFFSET_FILE";
let offsetFile: string | undefined | null = null;

/** The wall clock in epoch milliseconds: Date.now(), shifted by the test hook when it is set. */
function wallMs(): number {
  if (offsetFile === null) offsetFile = readEnv(CLOCK_OFFSET_FILE_VARIABLE);
  if (offsetFile === undefined) return Date.now();
  let offset = 0;
  try {
    offset = Number(Deno.readTextFileSync(offsetFile).trim()) || 0;
  } catch { /* no file yet: no offset */ }
  return Date.now() + offset * 1000;
}

export function epochNow(): number {
  return Math.round(wallMs()) / 1000;
}

export const systemClock: Clock = { now: epochNow };

/** Whole seconds since the epoch, as orchesjob stores them. */
export function nowSeconds(): number {
  return Math.floor(wallMs() / 1000);
}

/** The local calendar date, wall time and UTC offset of an instant. */
function localParts(epochSeconds: number): { date: string; time: string; offset: string } {
  const d = new Date(epochSeconds * 1000);
  const pad = (n: number) => String(Math.abs(n)).padStart(2, "0");
  const offset = -d.getTimezoneOffset();
  return {
    date: `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`,
    time: `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`,
    offset: `${offset >= 0 ? "+" : "-"}${pad(Math.trunc(offset / 60))}:${pad(offset % 60)}`,
  };
}

/** Local time, ISO 8601 with offset and no fraction, e.g. `2026-11-22T17:40:25+00:00`; null for null. */
export function isoLocal(epochSeconds: number | null): string | null {
  if (epochSeconds === null) return null;
  const { date, time, offset } = localParts(epochSeconds);
  return `${date}T${time}${offset}`;
}

/** Local time as `YYYY-MM-DD HH:MM:SS` (for people), or `-`. */
export function localDateTime(epochSeconds: number | null): string {
  if (epochSeconds === null) return "-";
  // A time past JavaScript's dates (stored before time arguments were bounded) shows its number, not NaN.
  if (Number.isNaN(new Date(epochSeconds * 1000).getTime())) return `epoch ${epochSeconds}`;
  const { date, time } = localParts(epochSeconds);
  return `${date} ${time}`;
}

/** The local time zone as tables name it once in their header: `Europe/Paris (UTC+01:00)`, or `UTC+00:00`. */
export function localZoneLabel(epochSeconds: number): string {
  const { offset } = localParts(epochSeconds);
  const name = Intl.DateTimeFormat().resolvedOptions().timeZone;
  return name && name !== "UTC" ? `${name} (UTC${offset})` : `UTC${offset}`;
}

const DURATION_UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };
const ISO_DATE_TIME = /^(\d{4}-\d{2}-\d{2})(?:[T ](\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?))?(Z|[+-]\d{2}:?\d{2})?$/;

/**
 * 10000-01-01T00:00:00Z: every time an argument gives must be earlier, in the years ISO 8601 writes
 * with four digits. JavaScript's dates end in the year 275760, after which a time prints as NaN, and
 * epoch milliseconds given for seconds (1796206651000) land far past this bound.
 */
export const END_OF_TIME = 253_402_300_800;

/** The longest duration an argument may give: 100 years of 365.25 days (36,525 d, 3,155,760,000 s). */
export const LONGEST_DURATION_SEC = 36_525 * 86_400;

/** Why an argument written as a time is not a usable one, to follow the quoted argument. */
export interface TimeProblem {
  problem: string;
}

/**
 * A point in time as an operator writes it, in epoch seconds: ISO 8601 (`2026-11-23T02:00:00+09:00`;
 * without an offset it is local time, and a date alone is local midnight), `+DURATION` from `now`
 * (`+90`, `+90s`, `+15m`, `+1h30m`, `+2d`), or epoch seconds. A {@link TimeProblem} for a date that
 * does not exist (`2026-02-30`) or a time not before {@link END_OF_TIME}; null when `text` is none of
 * these forms.
 */
export function parseTimeArgument(text: string, now: number): number | TimeProblem | null {
  const trimmed = text.trim();
  const at = trimmed.startsWith("+")
    ? afterDuration(trimmed.slice(1), now)
    : /^\d+(\.\d+)?$/.test(trimmed)
    ? Number(trimmed)
    : parseIsoTime(trimmed);
  if (typeof at !== "number") return at;
  return at < END_OF_TIME ? at : { problem: "is later than the year 9999" };
}

/** `now` plus `+DURATION` without its `+` (`90`, `15m`, `1h30m`), or null. */
function afterDuration(body: string, now: number): number | null {
  if (/^\d+(\.\d+)?$/.test(body)) return now + Number(body);
  const parts = [...body.matchAll(/(\d+(?:\.\d+)?)([smhd])/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join("") !== body) return null;
  return now + parts.reduce((sum, [, value, unit]) => sum + Number(value) * DURATION_UNITS[unit], 0);
}

/**
 * An ISO 8601 date or date-time in epoch seconds (without an offset it is local time, and a date
 * alone is local midnight); a {@link TimeProblem} for a day its month does not have, which
 * JavaScript would roll over (`2026-02-30` into March 2); null when `text` is not ISO 8601.
 */
export function parseIsoTime(text: string): number | TimeProblem | null {
  const match = ISO_DATE_TIME.exec(text.trim());
  if (!match) return null;
  const [, date, time, zone] = match;
  const [year, month, day] = date.split("-").map(Number);
  const missing = missingDay(year, month, day);
  if (missing !== null) return { problem: `is not a date: ${missing}` };
  // JavaScript reads a date without a time as UTC; an operator means the local day.
  const offset = zone === undefined ? "" : zone === "Z" ? "Z" : zone.replace(/^([+-]\d{2})(\d{2})$/, "$1:$2");
  const millis = Date.parse(`${date}T${time ?? "00:00"}${offset}`);
  return Number.isNaN(millis) ? null : millis / 1000;
}

const MONTHS = [
  "January",
  "February",
  "March",
  "April",
  "May",
  "June",
  "July",
  "August",
  "September",
  "October",
  "November",
  "December",
];

/** Why year, month and day name no day of the proleptic Gregorian calendar, or null. */
export function missingDay(year: number, month: number, day: number): string | null {
  if (month < 1 || month > 12) return `there is no month ${month}`;
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  const days = month === 2 ? (leap ? 29 : 28) : [4, 6, 9, 11].includes(month) ? 30 : 31;
  if (day < 1 || day > days) return `${MONTHS[month - 1]} ${year} has ${days} days`;
  return null;
}
