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
