import { describe, expect, it } from "vitest";
import { isoFromUs, systemClock, usFromText } from "./clock.js";

describe("clock", () => {
  it("formats and parses microseconds exactly", () => {
    const us = 1_795_000_000_123_456;
    expect(isoFromUs(us)).toBe("2026-11-18T11:06:40.123456Z");
    expect(usFromText(isoFromUs(us))).toBe(us);
    expect(usFromText("2026-11-18T11:06:40Z")).toBe(1_795_000_000_000_000);
    expect(usFromText("2026-11-18")).toBe(Date.parse("2026-11-18T00:00:00Z") * 1000);
    expect(usFromText(String(us))).toBe(us);
    expect(usFromText("yesterday")).toBeUndefined();
  });

  it("stays within a few ms of the wall clock and never runs backwards within a burst", () => {
    const a = systemClock();
    const b = systemClock();
    expect(b).toBeGreaterThanOrEqual(a);
    expect(Math.abs(a - Date.now() * 1000)).toBeLessThan(5_000);
  });
});
