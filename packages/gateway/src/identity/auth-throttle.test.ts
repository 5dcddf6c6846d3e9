import { describe, expect, it } from "vitest";
import { AuthThrottle, type AuthThrottleSettings } from "./auth-throttle.js";

const settings: AuthThrottleSettings = { freeFailures: 2, delayMs: 100, maxDelayMs: 1_000, lockoutAfter: 8, lockoutMs: 30_000, forgetAfterMs: 60_000 };

function throttle(overrides: Partial<AuthThrottleSettings> = {}) {
  const clock = { ms: 1_000_000 };
  return { clock, throttle: new AuthThrottle(() => ({ ...settings, ...overrides }), () => clock.ms) };
}

describe("AuthThrottle", () => {
  it("answers the free failures at once, then doubles the delay up to the maximum, then locks out", () => {
    const { throttle: t } = throttle();
    const delays: number[] = [];
    for (let i = 0; i < 8; i++) {
      const verdict = t.verdict("10.0.0.1", "agent");
      delays.push(verdict.locked ? -1 : verdict.delayMs);
      t.failed("10.0.0.1", "agent");
    }
    expect(delays).toEqual([0, 0, 0, 100, 200, 400, 800, 1_000]);
    expect(t.verdict("10.0.0.1", "agent")).toMatchObject({ locked: true, retryAfterMs: 30_000 });
    expect(t.counters).toMatchObject({ lockouts: 2, lockedOut: 1 });
  });

  it("locks out per identity from any address, and per address for any identity", () => {
    const { throttle: t } = throttle({ lockoutAfter: 3 });
    for (let i = 0; i < 3; i++) t.failed(`10.0.0.${i}`, "agent");
    expect(t.verdict("10.9.9.9", "agent")).toMatchObject({ locked: true, by: "identity" });
    expect(t.verdict("10.0.0.1", "someone")).toMatchObject({ locked: false });
    for (let i = 0; i < 3; i++) t.failed("10.1.1.1", `name-${i}`);
    expect(t.verdict("10.1.1.1", "fresh")).toMatchObject({ locked: true, by: "address" });
  });

  it("lets a lockout end, locks again at the next failure, and forgets after a quiet while", () => {
    const { throttle: t, clock } = throttle({ lockoutAfter: 3, lockoutMs: 1_000, forgetAfterMs: 5_000 });
    for (let i = 0; i < 3; i++) t.failed("a", "agent");
    clock.ms += 1_000;
    expect(t.verdict("a", "agent")).toMatchObject({ locked: false });
    expect(t.failed("a", "agent")).toBe(true);
    expect(t.verdict("a", "agent").locked).toBe(true);
    clock.ms += 6_000;
    expect(t.verdict("a", "agent")).toEqual({ locked: false, delayMs: 0 });
  });

  it("forgets an address's and an identity's failures on a success", () => {
    const { throttle: t } = throttle();
    for (let i = 0; i < 5; i++) t.failed("a", "agent");
    expect(t.verdict("a", "agent")).toMatchObject({ delayMs: 400 });
    t.succeeded("a", "agent");
    expect(t.verdict("a", "agent")).toEqual({ locked: false, delayMs: 0 });
  });
});
