/**
 * Clocks and date formats. Flow times are epoch seconds with millisecond precision; orchesjob's are
 * whole epoch seconds.
 */

/** What the engine asks for the time, so tests can set it. */
export interface Clock {
  /** Epoch seconds, millisecond precision. */
  now(): number;
}

export function epochNow(): number {
  return Math.round(Date.now()) / 1000;
}

export const systemClock: Clock = { now: epochNow };

/** Whole seconds since the epoch, as orchesjob stores them. */
export function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
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
 * A point in time as an operator writes it, in epoch seconds: ISO 8601 (`2026-11-23T02:00:00+09:00`;
 * without an offset it is local time, and a date alone is local midnight), `+DURATION` from `now`
 * (`+90`, `+90s`, `+15m`, `+1h30m`, `+2d`), or epoch seconds. Null when `text` is none of these.
 */
export function parseTimeArgument(text: string, now: number): number | null {
  const trimmed = text.trim();
  if (trimmed.startsWith("+")) {
    const body = trimmed.slice(1);
    if (/^\d+(\.\d+)?$/.test(body)) return now + Number(body);
    const parts = [...body.matchAll(/(\d+(?:\.\d+)?)([smhd])/g)];
    if (parts.length === 0 || parts.map((p) => p[0]).join("") !== body) return null;
    return now + parts.reduce((sum, [, value, unit]) => sum + Number(value) * DURATION_UNITS[unit], 0);
  }
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Number(trimmed);
  const match = ISO_DATE_TIME.exec(trimmed);
  if (!match) return null;
  const [, date, time, zone] = match;
  // JavaScript reads a date without a time as UTC; an operator means the local day.
  const offset = zone === undefined ? "" : zone === "Z" ? "Z" : zone.replace(/^([+-]\d{2})(\d{2})$/, "$1:$2");
  const millis = Date.parse(`${date}T${time ?? "00:00"}${offset}`);
  return Number.isNaN(millis) ? null : millis / 1000;
}
