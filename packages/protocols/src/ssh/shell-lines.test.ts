import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ShellLineExtractor } from "./shell-lines.js";

const typed = (input: string, options = {}) => new ShellLineExtractor(options).push(new TextEncoder().encode(input), 42);

describe("ShellLineExtractor", () => {
  it("drops a line abandoned with Ctrl-C and skips empty Enters", () => {
    expect(typed("rm -rf /\x03\r\r\nuptime\r").map((l) => l.line)).toEqual(["uptime"]);
  });

  it("deletes whole characters on Backspace, words on Ctrl-W", () => {
    expect(typed("echo 🎉x\x7f\x7f!\r")[0]).toMatchObject({ line: "echo !", uncertain: false, timeUs: 42 });
    expect(typed("tar czf out.tgz  \x17\x17x\r")[0]!.line).toBe("tar x");
  });

  it("flags history search, Alt keys and unknown sequences", () => {
    expect(typed("\x12ssh\r")[0]).toMatchObject({ uncertain: true, reasons: ["history"] });
    expect(typed("ls\x1bb-l \r")[0]).toMatchObject({ line: "ls-l ", reasons: ["cursor"] });
    expect(typed("ls\x1b[3~\r")[0]).toMatchObject({ reasons: ["edit"] });
    expect(typed("\x1bOAx\r")[0]).toMatchObject({ line: "x", reasons: ["history"] });
  });

  it("cuts a line past maxLineLength and says so", () => {
    expect(typed("abcdefgh\r", { maxLineLength: 4 })[0]).toMatchObject({ line: "abcd", truncated: true });
  });

  it("never throws and keeps a bounded line on any input", () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 30 }), (chunks) => {
        const extractor = new ShellLineExtractor({ maxLineLength: 100 });
        for (const chunk of chunks) for (const line of extractor.push(chunk, 0)) expect(line.line.length).toBeLessThanOrEqual(100);
        expect(extractor.pending().length).toBeLessThanOrEqual(100);
      }),
      { numRuns: 2000 },
    );
  });
});
