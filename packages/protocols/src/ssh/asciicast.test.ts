import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { AsciicastWriter, toAsciicast, type TerminalChunk } from "./asciicast.js";

const START = 1_796_400_000_000_000;
// Real terminal output (colors, line drawing) with characters of 2, 3 and 4 bytes.
const screen = Buffer.concat([
  execFileSync("ls", ["--color=always", "-la", "/"]),
  Buffer.from("héllo wörld ✓ ─┼─ 🎉\r\n\x1b[1;31mred\x1b[0m\r\n", "utf8"),
]);

/** Cuts `bytes` into chunks of `size`, 10 ms apart. */
function chunked(bytes: Uint8Array, size: number): TerminalChunk[] {
  const out: TerminalChunk[] = [];
  for (let i = 0; i < bytes.byteLength; i += size) out.push({ kind: "output", timeUs: START + out.length * 10_000, data: bytes.subarray(i, i + size) });
  return out;
}

function outputOf(cast: string): string {
  return cast
    .trimEnd()
    .split("\n")
    .slice(1)
    .map((line) => JSON.parse(line) as [number, string, string])
    .filter(([, code]) => code === "o")
    .map(([, , data]) => data)
    .join("");
}

describe("asciicast v2", () => {
  it("writes the header a player needs", () => {
    const header = JSON.parse(new AsciicastWriter({ width: 120, height: 30, startUs: START, term: "xterm-256color", title: "web1" }).headerLine());
    expect(header).toEqual({ version: 2, width: 120, height: 30, timestamp: 1_796_400_000, env: { TERM: "xterm-256color" }, title: "web1" });
  });

  it("never breaks a character cut between chunks, whatever the chunk size", () => {
    const expected = screen.toString("utf8");
    for (let size = 1; size <= 9; size++) {
      const cast = toAsciicast({ width: 80, height: 24, startUs: START }, chunked(screen, size));
      expect(outputOf(cast), `chunks of ${size}`).toBe(expected);
      expect(cast).not.toContain("\ufffd");
    }
  });

  it("keeps times non-decreasing and in seconds from the start; resizes as r events", () => {
    const writer = new AsciicastWriter({ width: 80, height: 24, startUs: START });
    expect(JSON.parse(writer.output(Buffer.from("a"), START + 1_500_000))).toEqual([1.5, "o", "a"]);
    expect(JSON.parse(writer.input(Buffer.from("b"), START + 1_400_000))).toEqual([1.5, "i", "b"]);
    expect(JSON.parse(writer.resize(100, 40, START + 2_000_001))).toEqual([2.000001, "r", "100x40"]);
    expect(writer.output(Uint8Array.of(0xe2, 0x9c), START + 3_000_000)).toBe("");
    expect(JSON.parse(writer.end(START + 4_000_000))).toEqual([4, "o", "\ufffd"]);
  });

  it.skipIf(!existsSync("/usr/bin/asciinema") || !existsSync("/usr/bin/script"))("is accepted by asciinema, which prints the same screen back", () => {
    const dir = mkdtempSync(join(tmpdir(), "gh-cast-"));
    try {
      const chunks: TerminalChunk[] = [
        ...chunked(screen, 7),
        { kind: "input", timeUs: START + 9_000_000, data: Buffer.from("exit\r") },
        { kind: "resize", timeUs: START + 9_100_000, cols: 100, rows: 40 },
        { kind: "output", timeUs: START + 9_200_000, data: Buffer.from("logout\r\n") },
      ];
      const file = join(dir, "session.cast");
      writeFileSync(file, toAsciicast({ width: 80, height: 24, startUs: START, term: "xterm-256color" }, chunks));
      // asciinema opens /dev/tty even for `cat`: give it one with script(1), and its stdout a file.
      const printedFile = join(dir, "printed");
      execFileSync("script", ["-q", "-e", "-c", `asciinema cat ${file} > ${printedFile}`, "/dev/null"], { stdio: "ignore" });
      const printed = readFileSync(printedFile);
      expect(printed.toString("utf8")).toBe(`${screen.toString("utf8")}logout\r\n`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
