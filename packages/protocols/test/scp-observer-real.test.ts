/**
 * The legacy scp observer on real `scp -O` traffic (OpenSSH's scp on both ends, the "remote" one
 * run through a fake ssh): one record per file with its remote path, size and outcome, the same
 * when the bytes are cut anywhere; uploads announced (write-ahead) before their data is relayed.
 */
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ScpCompletion, ScpTransfer } from "../src/ssh/scp-observer.js";
import { ScpObserver, parseScpCommand } from "../src/ssh/scp-observer.js";
import type { ScpCapture } from "./helpers/scp-capture.js";
import { captureScp, scpAvailable } from "./helpers/scp-capture.js";

interface Recorded {
  command: string;
  outcome: string;
  details: Record<string, unknown>;
  announced: boolean;
}

function observe(capture: ScpCapture, cut?: (bytes: Uint8Array) => Uint8Array[]): Recorded[] {
  const command = parseScpCommand(capture.command);
  expect(command, capture.command).toBeDefined();
  const announced = new Set<number>();
  const records: Recorded[] = [];
  let clock = 0;
  let feeding: "client" | "server" = "client";
  const observer = new ScpObserver(
    {
      commandStarted: (t: ScpTransfer) => {
        // Write-ahead: an upload is announced while the client's C line is in hand, before it is relayed.
        expect(feeding).toBe("client");
        announced.add(t.id);
      },
      commandCompleted: (t: ScpTransfer, c: ScpCompletion) => records.push({ command: t.command, outcome: c.outcome, details: { ...c.details }, announced: announced.has(t.id) }),
    },
    { now: () => (clock += 7), command: command! },
  );
  for (const chunk of capture.chunks) for (const piece of cut ? cut(chunk.bytes) : [chunk.bytes]) {
      feeding = chunk.from;
      if (chunk.from === "client") observer.client(piece);
      else observer.server(piece);
    }
  observer.end();
  return records;
}

const splitAt = (n: number) => (bytes: Uint8Array) => (n > 0 && n < bytes.byteLength ? [bytes.subarray(0, n), bytes.subarray(n)] : [bytes]);

describe.skipIf(!scpAvailable())("ScpObserver on real scp -O traffic", () => {
  let dir: string;
  const size = 1024 * 1024 + 3;
  const captures: Record<string, ScpCapture> = {};

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "gh-scp-"));
    writeFileSync(join(dir, "big.bin"), randomBytes(size));
    mkdirSync(join(dir, "tree/sub"), { recursive: true });
    writeFileSync(join(dir, "tree/a.txt"), "alpha\n");
    writeFileSync(join(dir, "tree/sub/b.txt"), "beta beta\n");
    mkdirSync(join(dir, "remote"));
    captures.upload = await captureScp(dir, ["big.bin", `localhost:${dir}/remote/`], "upload");
    captures.uploadTree = await captureScp(dir, ["-rp", "tree", `localhost:${dir}/remote`], "tree");
    captures.download = await captureScp(dir, [`localhost:${dir}/remote/big.bin`, "back.bin"], "download");
    captures.downloadTree = await captureScp(dir, ["-r", `localhost:${dir}/remote/tree`, "back-tree"], "dtree");
    captures.missing = await captureScp(dir, [`localhost:${dir}/nonexistent`, "x"], "missing");
    captures.refused = await captureScp(dir, ["tree/a.txt", `localhost:${dir}/no/such/dir/`], "refused");
    expect(readFileSync(join(dir, "back.bin")).byteLength).toBe(size);
    expect(readFileSync(join(dir, "back-tree/sub/b.txt"), "utf8")).toBe("beta beta\n");
    expect(captures.missing.exitCode).not.toBe(0);
    expect(captures.refused.exitCode).not.toBe(0);
  });

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("reads the remote command line scp runs", () => {
    expect(parseScpCommand(captures.upload!.command)).toEqual({ direction: "upload", paths: [`${dir}/remote/`], recursive: false, preserveTimes: false, targetIsDirectory: false });
    expect(parseScpCommand(captures.uploadTree!.command)).toMatchObject({ direction: "upload", recursive: true, preserveTimes: true });
    expect(parseScpCommand(`scp -f '/tmp/a b' "c d"`)).toMatchObject({ direction: "download", paths: ["/tmp/a b", "c d"] });
    expect(parseScpCommand("ls -la")).toBeUndefined();
    expect(parseScpCommand("scp -x -t /tmp")).toBeUndefined();
  });

  it("records an upload with its remote path and size, announced before its data", () => {
    expect(observe(captures.upload!)).toEqual([
      { command: `upload ${dir}/remote/big.bin (${size} bytes)`, outcome: "ok", announced: true, details: { path: `${dir}/remote/big.bin`, size, bytes: size, mode: "0644" } },
    ]);
  });

  it("records each file of a recursive upload under its directory", () => {
    const records = observe(captures.uploadTree!);
    expect(records.map((r) => `${r.outcome} ${r.command}`).sort()).toEqual([`ok upload ${dir}/remote/tree/a.txt (6 bytes)`, `ok upload ${dir}/remote/tree/sub/b.txt (10 bytes)`]);
    expect(records.every((r) => r.announced && r.details.pathUncertain === true)).toBe(true);
  });

  it("records downloads, single and recursive, not as mutations", () => {
    expect(observe(captures.download!)).toEqual([
      { command: `download ${dir}/remote/big.bin (${size} bytes)`, outcome: "ok", announced: false, details: { path: `${dir}/remote/big.bin`, size, bytes: size, mode: "0644" } },
    ]);
    expect(observe(captures.downloadTree!).map((r) => r.command).sort()).toEqual([`download ${dir}/remote/tree/a.txt (6 bytes)`, `download ${dir}/remote/tree/sub/b.txt (10 bytes)`]);
  });

  it("records the errors scp reports: a missing source, a target that cannot be written", () => {
    expect(observe(captures.missing!)).toEqual([
      { command: `download ${dir}/nonexistent`, outcome: "error", announced: false, details: { path: `${dir}/nonexistent`, message: `scp: ${dir}/nonexistent: No such file or directory` } },
    ]);
    const [refused] = observe(captures.refused!);
    expect(refused).toMatchObject({ command: `upload ${dir}/no/such/dir/a.txt (6 bytes)`, outcome: "error", announced: true, details: { bytes: 0 } });
    expect(refused!.details.message).toMatch(/No such file or directory/);
  });

  it("says the same when the bytes are cut at every offset", () => {
    for (const name of ["uploadTree", "downloadTree", "missing", "refused"]) {
      const capture = captures[name]!;
      const whole = observe(capture);
      const longest = Math.max(...capture.chunks.map((c) => c.bytes.byteLength));
      for (let n = 1; n < longest; n++) expect(observe(capture, splitAt(n)), `${name} split ${n}`).toEqual(whole);
      expect(observe(capture, (bytes) => Array.from(bytes, (b) => Uint8Array.of(b)))).toEqual(whole);
    }
    for (const name of ["upload", "download"]) {
      const whole = observe(captures[name]!);
      for (const n of [1, 2, 5, 13, 100, 4095, 65_537]) expect(observe(captures[name]!, splitAt(n))).toEqual(whole);
    }
  });
});

