import type { Clock } from "../clock.js";
import { usFromText } from "../clock.js";

/** The most sessions or events one `GET /api/v1/sessions` or `/api/v1/events` (and the CLI's lists) returns. */
export const MAX_SESSION_LIMIT = 1000;

/** What `since`/`until` accept, for error messages and --help. */
export const TIME_FORMS = 'an ISO 8601 time (2026-11-24T07:00:00Z), microseconds since the epoch, or a duration ago (30m, 24h, 7d)';

/** A query parameter that cannot be used; `parameter` names it, `message` says what it takes. */
export class BadParameter extends Error {
  constructor(
    readonly parameter: string,
    message: string,
  ) {
    super(`${parameter}: ${message}`);
  }
}

const AGO_UNITS_US = { s: 1_000_000, m: 60_000_000, h: 3_600_000_000, d: 86_400_000_000 } as const;

/** A point in time: ISO 8601, µs since the epoch, or a duration before `now` ("7d"). */
export function parseTimeParameter(parameter: string, text: string, now: Clock): number {
  const ago = /^(\d{1,9})([smhd])$/.exec(text.trim());
  if (ago) return now() - Number(ago[1]) * AGO_UNITS_US[ago[2] as keyof typeof AGO_UNITS_US];
  const us = usFromText(text);
  if (us === undefined || !Number.isSafeInteger(us)) throw new BadParameter(parameter, `expected ${TIME_FORMS}, got "${text}"`);
  return us;
}

/** An integer from 1 to `max`. */
export function parseLimitParameter(parameter: string, text: string, max: number): number {
  const n = /^\d+$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isInteger(n) || n < 1 || n > max) throw new BadParameter(parameter, `expected an integer from 1 to ${max}, got "${text}"`);
  return n;
}
