/** Microseconds since the Unix epoch. Injected wherever time is recorded so tests can freeze it. */
export type Clock = () => number;

let origin = Date.now() * 1000 - Math.round(performance.now() * 1000);

/**
 * Wall-clock µs with sub-millisecond resolution from the monotonic timer,
 * re-anchored to the wall clock whenever the two drift apart by over 2 ms
 * (NTP steps, long uptimes), so recorded times stay true to the wall clock.
 */
export const systemClock: Clock = () => {
  const perf = Math.round(performance.now() * 1000);
  const wall = Date.now() * 1000;
  if (Math.abs(origin + perf - wall) > 2000) origin = wall - perf;
  return origin + perf;
};

/** ISO 8601 with microseconds: 2026-11-24T07:41:37.123456Z. */
export function isoFromUs(us: number): string {
  const ms = Math.floor(us / 1000);
  const iso = new Date(ms).toISOString();
  const micro = String(Math.floor(us - ms * 1000)).padStart(3, "0");
  return `${iso.slice(0, -1)}${micro}Z`;
}

/** Accepts ISO 8601 (any precision up to µs) or a number of µs; undefined when unparseable. */
export function usFromText(text: string): number | undefined {
  if (/^\d+$/.test(text)) return Number(text);
  const match = /^(.*?)(?:\.(\d{1,6}))?(Z|[+-]\d\d:?\d\d)?$/.exec(text);
  if (!match) return undefined;
  const base = Date.parse(`${match[1]}${match[3] ?? "Z"}`);
  if (Number.isNaN(base)) return undefined;
  const fraction = Number((match[2] ?? "").padEnd(6, "0") || "0");
  return base * 1000 + fraction;
}
