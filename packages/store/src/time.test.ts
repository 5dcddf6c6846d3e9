import { describe, expect, it } from "vitest";
import { StoreError } from "./errors.js";
import { usToIso } from "./time.js";

describe("usToIso", () => {
  it("keeps all six fractional digits", () => {
    expect(usToIso(1_700_000_000_123_456)).toBe("2023-11-14T22:13:20.123456Z");
    expect(usToIso(1_700_000_000_000_001)).toBe("2023-11-14T22:13:20.000001Z");
    expect(usToIso(0)).toBe("1970-01-01T00:00:00.000000Z");
  });

  it("is exact at the ends of the safe-integer range", () => {
    expect(usToIso(Number.MAX_SAFE_INTEGER)).toBe("2255-06-05T23:47:34.740991Z");
    expect(usToIso(-Number.MAX_SAFE_INTEGER)).toBe("1684-07-28T00:12:25.259009Z");
  });

  it("handles times before 1970", () => {
    expect(usToIso(-1)).toBe("1969-12-31T23:59:59.999999Z");
    expect(usToIso(-1_000_001)).toBe("1969-12-31T23:59:58.999999Z");
  });

  it("refuses what Postgres could not read back exactly", () => {
    expect(() => usToIso(1.5)).toThrow(StoreError);
    expect(() => usToIso(Number.MAX_SAFE_INTEGER + 1)).toThrow(/safe integer/);
    expect(() => usToIso(Number.NaN)).toThrow(StoreError);
  });
});
