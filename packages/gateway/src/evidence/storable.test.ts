import { describe, expect, it } from "vitest";
import { escapeText, needsEscape, storableDraft, storableValue, unescapeText } from "./storable.js";

describe("storable text", () => {
  it("finds NUL and unpaired surrogates, and nothing else", () => {
    for (const bad of ["a\u0000b", "\ud800", "x\udc00", "\ud83d", "🙂\ud800", "\udfff🙂"]) expect(needsEscape(bad), JSON.stringify(bad)).toBe(true);
    for (const fine of ["", "select 1", "🙂", "\\u0000", "é\t\n", "\uffff", "\ud83d\ude42"]) expect(needsEscape(fine), JSON.stringify(fine)).toBe(false);
  });

  it("escapes reversibly and only into what Postgres stores", () => {
    const samples = ["a\u0000b", "\\0 is not NUL \u0000", "lone \ud800 high", "lone \udc00 low", "pair 🙂 stays", "\\\\\u0000\\", "\u0000\u0000"];
    for (const text of samples) {
      const escaped = escapeText(text);
      expect(needsEscape(escaped)).toBe(false);
      expect(unescapeText(escaped)).toBe(text);
    }
    expect(escapeText("a\u0000b\\c\ud800")).toBe("a\\0b\\\\c\\uD800");
  });

  it("leaves clean values as the same objects, and marks what it escaped", () => {
    const clean = { kind: "query", command: "select 1", params: ["1", null, { hex: "00" }], details: { rows: 1 } };
    expect(storableDraft(clean)).toBe(clean);
    const dirty = storableDraft({ kind: "query", command: "select 'a\u0000'", params: ["x\u0000", ["\ud800"]], details: { payload: "n\u0000", rows: 1 } });
    expect(dirty).toEqual({
      kind: "query",
      command: "select 'a\\0'",
      params: [{ $escaped: "x\\0" }, [{ $escaped: "\\uD800" }]],
      details: { payload: { $escaped: "n\\0" }, rows: 1, escaped: ["command"] },
    });
    // The store's own test for what Postgres refuses: an unescaped \u0000 or lone-surrogate escape.
    expect(JSON.stringify(dirty)).not.toMatch(/(?<!\\)(?:\\\\)*\\u(?:0000|d[89a-f][0-9a-f]{2})/i);
    expect(storableValue({ "k\u0000": 1 })).toEqual({ "k\\0": 1 });
  });
});
