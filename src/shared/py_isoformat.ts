/**
 * Python 3.11's `datetime.fromisoformat`, which orchesjob's `clean --before/--after` use, read the way
 * CPython's C implementation (`Modules/_datetimemodule.c`) reads it, quirks included: the forms Python
 * accepts are accepted here with the same meaning, and what it refuses is refused. Pure.
 *
 * Accepted: `YYYY-MM-DD`, `YYYYMMDD`, week dates `YYYY-Www[-D]` and `YYYYWww[D]`; then, after any one
 * character, `HH[:MM[:SS[.f]]]` or `HH[MM[SS[.f]]]` (`.` or `,` before 1-6 fraction digits, more are
 * dropped); then `Z` or `±HH[:MM[:SS[.f]]]` (also without colons). Ordinal dates (`2026-001`) are not
 * ISO 8601 to Python 3.11, nor here.
 */
import { missingDay, type TimeProblem } from "./time.ts";

const ZERO = 0x30, NINE = 0x39, DASH = 0x2d, PLUS = 0x2b, COLON = 0x3a, DOT = 0x2e, COMMA = 0x2c;
const WEEK = 0x57, ZULU = 0x5a;

/** What a date-time says, before it is placed in time. `offsetMicros` is null for a naive (local) time. */
export interface IsoFields {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
  microsecond: number;
  offsetMicros: number | null;
}

/**
 * `text` as Python 3.11's `datetime.fromisoformat(text).timestamp()` gives it, in epoch seconds (a
 * naive time is local time); a {@link TimeProblem} for fields Python's `datetime` refuses (a day its
 * month lacks, hour 24, an offset of a day or more); null when Python would not read it as ISO 8601.
 *
 * @example
 * ```ts
 * parsePythonIsoTime("20260101T120000Z"); // 1767268800
 * parsePythonIsoTime("2026-001"); // null
 * ```
 */
export function parsePythonIsoTime(text: string): number | TimeProblem | null {
  const fields = parsePythonIsoFields(text);
  if (fields === null || "problem" in fields) return fields;
  const { year, month, day, hour, minute, second, microsecond, offsetMicros } = fields;
  const pad = (n: number, width = 2) => String(n).padStart(width, "0");
  const wall = `${pad(year, 4)}-${pad(month)}-${pad(day)}T${pad(hour)}:${pad(minute)}:${pad(second)}`;
  // Without an offset JavaScript reads a date-time as local time, as Python's timestamp() does.
  const millis = Date.parse(offsetMicros === null ? wall : `${wall}Z`);
  return millis / 1000 + (microsecond - (offsetMicros ?? 0)) / 1e6;
}

/** The fields of `text` as Python 3.11's `datetime.fromisoformat` reads them; see {@link parsePythonIsoTime}. */
export function parsePythonIsoFields(text: string): IsoFields | TimeProblem | null {
  // Python counts characters; its C code then reads the UTF-8 bytes, so a separator may be any character.
  // An argument cannot hold NUL, where C strings end: refused rather than imitated.
  if ([...text].length < 7 || text.includes("\0")) return null;
  const bytes = new TextEncoder().encode(text);
  const separator = separatorAt(bytes);
  if (separator === null) return null;
  const date = parseDate(bytes, separator);
  if (date === null) return null;
  let time: TimeFields = { hour: 0, minute: 0, second: 0, microsecond: 0, offsetMicros: null };
  if (bytes.length > separator) {
    const parsed = parseTime(bytes, separator + utf8Length(bytes[separator]));
    if (parsed === null) return null;
    time = parsed;
  }
  // Only a string Python could read gets here; its fields are then checked in Python's order.
  const problem = offsetProblem(time) ?? dateProblem(date) ?? timeProblem(time);
  return problem === null ? { ...date, ...time } : { problem };
}

interface DateFields {
  year: number;
  month: number;
  day: number;
}

type TimeFields = Omit<IsoFields, keyof DateFields>;

function isDigit(byte: number | undefined): boolean {
  return byte !== undefined && byte >= ZERO && byte <= NINE;
}

/** The byte at `at`; 0 past the end, as the C code reads its string's terminating NUL. */
function byteAt(bytes: Uint8Array, at: number): number {
  return bytes[at] ?? 0;
}

/** The number written by the `count` digits at `at`, or null when one of them is no digit. */
function digits(bytes: Uint8Array, at: number, count: number): number | null {
  let value = 0;
  for (let k = at; k < at + count; k++) {
    const byte = byteAt(bytes, k);
    if (!isDigit(byte)) return null;
    value = value * 10 + byte - ZERO;
  }
  return value;
}

/** How many bytes the UTF-8 character starting with `lead` takes. */
function utf8Length(lead: number): number {
  if (lead < 0x80) return 1;
  if ((lead & 0xf0) === 0xf0) return 4;
  return (lead & 0xf0) === 0xe0 ? 3 : 2;
}

/**
 * Where the date ends: Python finds it from the date's shape alone (characters 4, 5, 8 and 10, and for
 * `YYYYWww` how many digits follow), never from the separator, which may be any character.
 */
function separatorAt(bytes: Uint8Array): number | null {
  const length = bytes.length;
  if (length === 7) return 7;
  if (bytes[4] === DASH) {
    if (bytes[5] !== WEEK) return 10; // YYYY-MM-DD
    if (length > 8 && bytes[8] === DASH) {
      if (length === 9) return null;
      // YYYY-Www-D, or YYYY-Www and a time after a dash separator; Python bets on the dash.
      return length > 10 && isDigit(bytes[10]) ? 8 : 10;
    }
    return 8; // YYYY-Www
  }
  if (bytes[4] !== WEEK) return 8; // YYYYMMDD
  let end = 7;
  while (end < length && isDigit(bytes[end])) end++;
  if (end < 9) return end; // YYYYWww or YYYYWwwD
  // Times come in digit pairs: an odd count of digits after the week means a weekday digit.
  return end % 2 === 0 ? 7 : 8;
}

function parseDate(bytes: Uint8Array, end: number): DateFields | null {
  const year = digits(bytes, 0, 4);
  if (year === null) return null;
  const dashed = bytes[4] === DASH;
  let at = dashed ? 5 : 4;
  if (byteAt(bytes, at) === WEEK) {
    const week = digits(bytes, at + 1, 2);
    at += 3;
    if (week === null) return null;
    let weekday: number | null = 1;
    if (at < end) {
      if (dashed && byteAt(bytes, at++) !== DASH) return null;
      weekday = digits(bytes, at, 1);
    }
    return weekday === null ? null : weekDate(year, week, weekday);
  }
  const month = digits(bytes, at, 2);
  at += 2;
  if (month === null || (dashed && byteAt(bytes, at++) !== DASH)) return null;
  const day = digits(bytes, at, 2);
  return day === null ? null : { year, month, day };
}

/** The calendar day of ISO week `week`, day `weekday` (Monday 1) of ISO year `year`. */
function weekDate(year: number, week: number, weekday: number): DateFields | null {
  // Python refuses weeks and weekdays out of range as unreadable strings; a day of year 0 comes to no year.
  if (weekday < 1 || weekday > 7 || week < 1 || week > weeksIn(year)) return null;
  const jan4 = utcDate(year, 1, 4);
  const monday1 = jan4.getTime() - ((jan4.getUTCDay() + 6) % 7) * 86_400_000;
  const at = new Date(monday1 + ((week - 1) * 7 + weekday - 1) * 86_400_000);
  return { year: at.getUTCFullYear(), month: at.getUTCMonth() + 1, day: at.getUTCDate() };
}

/** 53 when the year starts on a Thursday, or on a Wednesday in a leap year; else 52. */
function weeksIn(year: number): number {
  const jan1 = utcDate(year, 1, 1).getUTCDay();
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  return jan1 === 4 || (jan1 === 3 && leap) ? 53 : 52;
}

/** Midnight UTC of a day, for any year from 1 (`Date.UTC` would read years below 100 as 19xx). */
function utcDate(year: number, month: number, day: number): Date {
  const date = new Date(0);
  date.setUTCFullYear(year, month - 1, day);
  return date;
}

interface ClockReading {
  values: [number, number, number];
  microsecond: number;
  /** Whether anything but the end of the string follows; only an error when no offset follows. */
  trailing: boolean;
}

/** `HH[:?MM[:?SS[{.,}f...]]]` from `at` to `end`, C's `parse_hh_mm_ss_ff`; it may read past `end`. */
function parseClock(bytes: Uint8Array, start: number, end: number): ClockReading | null {
  const values: [number, number, number] = [0, 0, 0];
  let at = start;
  let colons = true;
  let part = 0;
  for (; part < 3; part++) {
    const value = digits(bytes, at, 2);
    if (value === null) return null;
    values[part] = value;
    const next = byteAt(bytes, at + 2);
    at += 3;
    if (part === 0) colons = next === COLON;
    if (at >= end) return { values, microsecond: 0, trailing: next !== 0 };
    if (colons && next === COLON) continue;
    if (next === DOT || next === COMMA) break;
    if (colons) return null;
    at--;
  }
  const count = Math.min(end - at, 6);
  const fraction = count > 0 ? digits(bytes, at, count) : null;
  if (fraction === null) return null;
  at += count;
  while (isDigit(bytes[at])) at++; // digits past the microseconds are dropped
  return { values, microsecond: fraction * 10 ** (6 - count), trailing: byteAt(bytes, at) !== 0 };
}

/** The time and offset after the separator, C's `parse_isoformat_time`. */
function parseTime(bytes: Uint8Array, start: number): TimeFields | null {
  const end = bytes.length;
  let zone = start;
  while (zone < end && bytes[zone] !== ZULU && bytes[zone] !== PLUS && bytes[zone] !== DASH) zone++;
  const clock = parseClock(bytes, start, zone);
  if (clock === null) return null;
  const [hour, minute, second] = clock.values;
  const time = { hour, minute, second, microsecond: clock.microsecond };
  if (zone === end) return clock.trailing ? null : { ...time, offsetMicros: null };
  if (bytes[zone] === ZULU) return zone + 1 === end ? { ...time, offsetMicros: 0 } : null;
  const offset = parseClock(bytes, zone + 1, end);
  if (offset === null || offset.trailing) return null;
  const [h, m, s] = offset.values;
  const seconds = (bytes[zone] === DASH ? -1 : 1) * (h * 3600 + m * 60 + s);
  // Python takes an offset of no whole seconds for UTC and drops its microseconds.
  return { ...time, offsetMicros: seconds === 0 ? 0 : seconds * 1e6 + Math.sign(seconds) * offset.microsecond };
}

/** Python refuses an offset of a day or more before it builds the date-time. */
function offsetProblem({ offsetMicros }: TimeFields): string | null {
  return offsetMicros !== null && Math.abs(offsetMicros) >= 86_400e6 ? "has an offset of 24 hours or more" : null;
}

/** What Python's `datetime` refuses in a date that was read (a week date may fall in the year 10000). */
function dateProblem({ year, month, day }: DateFields): string | null {
  if (year < 1 || year > 9999) return `is not a date: there is no year ${year} (1 to 9999)`;
  const missing = missingDay(year, month, day);
  return missing === null ? null : `is not a date: ${missing}`;
}

/** What Python's `datetime` refuses in a time that was read. */
function timeProblem({ hour, minute, second }: TimeFields): string | null {
  if (hour > 23) return `is not a time: there is no hour ${hour}`;
  if (minute > 59) return `is not a time: there is no minute ${minute}`;
  if (second > 59) return `is not a time: there is no second ${second}`;
  return null;
}
