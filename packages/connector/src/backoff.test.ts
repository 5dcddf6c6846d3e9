import { describe, expect, it } from "vitest";
import { Backoff } from "./backoff.js";

describe("Backoff", () => {
  it("doubles the ceiling from the base up to the cap", () => {
    // random() just under 1 shows each ceiling.
    const b = new Backoff({ baseMs: 500, capMs: 30_000, random: () => 0.999999 });
    const delays = Array.from({ length: 10 }, () => b.next());
    expect(delays).toEqual([499, 999, 1999, 3999, 7999, 15_999, 29_999, 29_999, 29_999, 29_999]);
    expect(b.attempt).toBe(10);
  });

  it("applies full jitter: the delay is random() times the ceiling", () => {
    const draws = [0, 0.5, 0.25];
    const b = new Backoff({ baseMs: 1000, capMs: 10_000, random: () => draws.shift() ?? 0 });
    expect([b.next(), b.next(), b.next()]).toEqual([0, 1000, 1000]);
  });

  it("stays at the cap after many attempts (no overflow)", () => {
    const b = new Backoff({ baseMs: 500, capMs: 30_000, random: () => 0.5 });
    for (let i = 0; i < 2000; i++) b.next();
    expect(b.next()).toBe(15_000);
  });

  it("resets only after the link stayed up for resetAfterMs", () => {
    let now = 0;
    const b = new Backoff({ baseMs: 100, capMs: 10_000, resetAfterMs: 60_000, random: () => 0.999999, now: () => now });
    b.next();
    b.next();
    b.next();
    // Up for less than the period: a flapping link keeps escalating.
    b.succeeded();
    now += 59_999;
    b.lost();
    expect(b.attempt).toBe(3);
    expect(b.next()).toBe(799);
    // Up for the whole period: back to the base.
    b.succeeded();
    now += 60_000;
    b.lost();
    expect(b.attempt).toBe(0);
    expect(b.next()).toBe(99);
  });

  it("does not reset on a loss without a success", () => {
    let now = 0;
    const b = new Backoff({ now: () => now });
    b.next();
    now += 1e9;
    b.lost();
    expect(b.attempt).toBe(1);
  });

  it("rejects inconsistent options", () => {
    expect(() => new Backoff({ baseMs: 0 })).toThrow(RangeError);
    expect(() => new Backoff({ baseMs: 1000, capMs: 10 })).toThrow(RangeError);
  });
});
