import { describe, expect, it } from "vitest";
import { saslprep } from "./saslprep.js";

// Examples from RFC 4013 §3 plus the Postgres rule that ASCII passes untouched.
describe("saslprep", () => {
  it("leaves ASCII alone, even control characters (as Postgres does)", () => {
    expect(saslprep("pencil")).toBe("pencil");
    expect(saslprep("a\u0007b")).toBe("a\u0007b");
  });
  it("maps and normalizes per RFC 4013", () => {
    expect(saslprep("I\u00adX")).toBe("IX"); // SOFT HYPHEN mapped to nothing
    expect(saslprep("\u00aa")).toBe("a"); // NFKC
    expect(saslprep("\u2168")).toBe("IX"); // ROMAN NUMERAL NINE → IX
    expect(saslprep("a\u00a0b")).toBe("a b"); // non-ASCII space → space
    expect(saslprep("pässwörd")).toBe("pässwörd");
  });
  it("rejects prohibited strings so the caller falls back to the raw password", () => {
    expect(saslprep("\u0007é")).toBeUndefined(); // ASCII control with non-ASCII present
    expect(saslprep("a\ue000")).toBeUndefined(); // private use
    expect(saslprep("\u05d0a\u05d0")).toBeUndefined(); // RandAL mixed with L
    expect(saslprep("\u05d0\u05d1")).toBe("\u05d0\u05d1");
    expect(saslprep("\u00ad")).toBeUndefined(); // empty after mapping
  });
});
