/**
 * Typed lines from the bytes a real terminal sends: tmux types into a raw-mode pane (keys by name,
 * as a person presses them: Backspace, Ctrl-W, Tab, Up, a bracketed paste), we log the bytes and
 * replay them through ShellLineExtractor, whole and cut at every offset.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ShellLineExtractor, type TypedLine } from "../src/ssh/shell-lines.js";

const LOGGER = fileURLToPath(new URL("./helpers/raw-input-log.mjs", import.meta.url));

function lines(chunks: readonly Uint8Array[]): Omit<TypedLine, "timeUs">[] {
  const extractor = new ShellLineExtractor();
  return chunks.flatMap((chunk, i) => extractor.push(chunk, i)).map(({ timeUs: _t, ...rest }) => rest);
}

describe.skipIf(!existsSync("/usr/bin/tmux"))("ShellLineExtractor on keys typed through tmux", () => {
  let dir: string;
  let input: Uint8Array;
  const session = `gh-lines-${process.pid}`;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "gh-lines-"));
    const log = join(dir, "input.log");
    writeFileSync(log, "");
    const tmux = (...args: string[]) => execFileSync("tmux", ["-L", session, ...args]);
    tmux("new-session", "-d", "-s", session, "-x", "120", "-y", "30", `${process.execPath} ${LOGGER} ${log}`);
    try {
      // Wait until the pane's program has put the terminal in raw mode.
      for (let i = 0; i < 200 && !existsSync(`${log}.ready`); i++) await new Promise((r) => setTimeout(r, 25));
      const type = (text: string) => tmux("send-keys", "-t", session, "-l", text);
      const keys = (...names: string[]) => tmux("send-keys", "-t", session, ...names);
      type("echo hello");
      keys("Enter");
      type("ls -la /tmpx");
      keys("BSpace", "Enter");
      type("rm -rf /");
      keys("C-c");
      type("git status");
      keys("C-w");
      type("log");
      keys("Enter");
      type("cat /et");
      keys("Tab", "Enter");
      keys("Up", "Enter");
      type("echo wrong");
      keys("C-u");
      type("echo right");
      keys("Enter");
      type("echo héllo wörld ✓");
      keys("Enter");
      tmux("set-buffer", "-b", session, "echo pasted\necho second");
      tmux("paste-buffer", "-p", "-b", session, "-t", session);
      keys("Enter");
      type("echo ab");
      keys("Left");
      type("x");
      keys("Enter");
      type("__END__");
      keys("Enter");
      for (let i = 0; i < 100 && !readFileSync(log, "latin1").includes("__END__"); i++) await new Promise((r) => setTimeout(r, 50));
    } finally {
      tmux("kill-server");
    }
    input = readFileSync(log);
  });

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const expected = [
    { line: "echo hello", uncertain: false, reasons: [], truncated: false },
    { line: "ls -la /tmp", uncertain: false, reasons: [], truncated: false },
    { line: "git log", uncertain: false, reasons: [], truncated: false },
    { line: "cat /et", uncertain: true, reasons: ["completion"], truncated: false },
    { line: "", uncertain: true, reasons: ["history"], truncated: false },
    { line: "echo right", uncertain: false, reasons: [], truncated: false },
    { line: "echo héllo wörld ✓", uncertain: false, reasons: [], truncated: false },
    { line: "echo pasted\necho second", uncertain: false, reasons: [], truncated: false },
    { line: "echo abx", uncertain: true, reasons: ["cursor"], truncated: false },
    { line: "__END__", uncertain: false, reasons: [], truncated: false },
  ];

  it("replays the edits into the lines the shell ran, flagging what it could not see", () => {
    expect(lines([input])).toEqual(expected);
  });

  it("gives the same lines when the input is cut at every offset, or sent a byte at a time", () => {
    for (let n = 1; n < input.byteLength; n++) expect(lines([input.subarray(0, n), input.subarray(n)]), `cut at ${n}`).toEqual(expected);
    expect(lines(Array.from(input, (b) => Uint8Array.of(b)))).toEqual(expected);
  });
});
