/** Durations and points in time as operators type them: `90`, `90s`, `15m`, `6h`, `7d`, or ISO 8601. Pure. */
import { LONGEST_DURATION_SEC, parseIsoTime } from "../shared/mod.ts";
import { UserError } from "./errors.ts";

const UNIT_SECONDS: Record<string, number> = { "": 1, s: 1, m: 60, h: 3600, d: 86400, w: 604800 };

/**
 * Seconds in `text`: a number followed by s, m, h, d or w; at most 100 years. A number without a unit
 * is refused (0 aside, which is 0 in any unit): `clean --older-than 7` meant as a week would
 * otherwise delete every run that ended more than 7 seconds ago.
 */
export function parseDuration(text: string, option: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*([smhdw]?)$/i.exec(text.trim());
  if (!match) {
    throw new UserError(`option ${option} needs a duration such as 90s, 15m, 6h or 7d, got ${JSON.stringify(text)}`);
  }
  if (match[2] === "" && Number(match[1]) !== 0) {
    throw new UserError(
      `option ${option} needs a unit: ${JSON.stringify(text)} alone could mean seconds or days; ` +
        `write ${match[1]}s, ${match[1]}m, ${match[1]}h, ${match[1]}d or ${match[1]}w`,
    );
  }
  const seconds = Number(match[1]) * UNIT_SECONDS[match[2].toLowerCase()];
  // 400 digits are Infinity: a time that far back is NaN or -Infinity, and never what was meant.
  if (!(seconds <= LONGEST_DURATION_SEC)) {
    throw new UserError(
      `option ${option} takes at most 100 years (${LONGEST_DURATION_SEC / 86_400}d), got ${JSON.stringify(text)}`,
    );
  }
  return seconds;
}

/**
 * A point in time (epoch seconds): `now` minus a duration, or an ISO 8601 date or date-time (local
 * time when it has no offset) of a day that exists.
 */
export function parseSince(text: string, option: string, now: number): number {
  const trimmed = text.trim();
  if (/^\d{4}-\d{2}-\d{2}/.test(trimmed)) {
    const at = parseIsoTime(trimmed);
    if (at === null) {
      throw new UserError(`option ${option} needs a duration (6h) or an ISO 8601 time, got ${JSON.stringify(text)}`);
    }
    if (typeof at !== "number") throw new UserError(`option ${option} ${JSON.stringify(text)} ${at.problem}`);
    return at;
  }
  // Neither a time nor a number: the message names both forms (parseDuration's names only the one).
  if (!/^\d/.test(trimmed)) {
    throw new UserError(
      `option ${option} needs a duration such as 90s, 15m, 6h or 7d, or an ISO 8601 time such as 2026-01-01 or ` +
        `2026-01-01T08:00:00Z, got ${JSON.stringify(text)}`,
    );
  }
  return now - parseDuration(trimmed, option);
}
