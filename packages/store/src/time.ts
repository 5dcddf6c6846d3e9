import { StoreError } from "./errors.js";

/**
 * µs since the Unix epoch → an ISO 8601 timestamp with six fractional digits, for a timestamptz
 * parameter. Built with integer math only: dividing by 1e6 as a float would round the last
 * digits away, and the record must keep the microsecond it was given.
 */
export function usToIso(us: number): string {
  if (!Number.isSafeInteger(us)) {
    throw new StoreError("INVALID_ARGUMENT", `a time in µs must be a safe integer, got ${us}`);
  }
  // `%` keeps the sign of the dividend; fold it into 0..999 so times before 1970 work too.
  const micros = ((us % 1000) + 1000) % 1000;
  const ms = (us - micros) / 1000; // exact: us - micros is a multiple of 1000
  // Safe-integer µs span the years 1684–2255, all four-digit, so toISOString's form is the
  // plain one Postgres reads.
  const iso = new Date(ms).toISOString();
  // "2023-11-14T22:13:20.123Z" → "2023-11-14T22:13:20.123456Z"
  return `${iso.slice(0, -1)}${String(micros).padStart(3, "0")}Z`;
}

/** SQL that reads a timestamptz column back as exact µs since the epoch (an int8). */
export function usOf(column: string): string {
  // extract() returns numeric since Postgres 14, so the multiplication is exact.
  return `(extract(epoch from ${column}) * 1000000)::int8`;
}
