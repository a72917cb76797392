/** Durations and points in time as operators type them: `90`, `90s`, `15m`, `6h`, `7d`, or ISO 8601. Pure. */
import { UserError } from "./errors.ts";

const UNIT_SECONDS: Record<string, number> = { "": 1, s: 1, m: 60, h: 3600, d: 86400, w: 604800 };

/** Seconds in `text`: a number, optionally followed by s, m, h, d or w. */
export function parseDuration(text: string, option: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*([smhdw]?)$/i.exec(text.trim());
  if (!match) {
    throw new UserError(`option ${option} needs a duration such as 90s, 15m, 6h or 7d, got ${JSON.stringify(text)}`);
  }
  return Number(match[1]) * UNIT_SECONDS[match[2].toLowerCase()];
}

/**
 * A point in time (epoch seconds): `now` minus a duration, or an ISO 8601 date or date-time (local
 * time when it has no offset).
 */
export function parseSince(text: string, option: string, now: number): number {
  const trimmed = text.trim();
  if (/^\d{4}-\d{2}-\d{2}/.test(trimmed)) {
    let value = trimmed.replace(" ", "T");
    if (/^\d{4}-\d{2}-\d{2}$/.test(value)) value += "T00:00:00";
    const valid = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$/.test(value);
    const ms = valid ? Date.parse(value) : NaN;
    if (Number.isNaN(ms)) {
      throw new UserError(`option ${option} needs a duration (6h) or an ISO 8601 time, got ${JSON.stringify(text)}`);
    }
    return ms / 1000;
  }
  return now - parseDuration(trimmed, option);
}
