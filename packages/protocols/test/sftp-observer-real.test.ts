/**
 * The SFTP observer on real traffic: OpenSSH's `sftp -b` talking to OpenSSH's sftp-server (over
 * stdio through a tap, no sshd needed). The record must say what the batch did, with the paths,
 * flags, byte counts and errors a user would check; replayed split at every offset it must say
 * the same; write-ahead must announce each mutating operation before its request is complete.
 */
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SftpCompletion, SftpOperation } from "../src/ssh/sftp-observer.js";
import { SftpObserver } from "../src/ssh/sftp-observer.js";
import type { CapturedChunk } from "./helpers/sftp-capture.js";
import { captureSftpBatch, sftpAvailable } from "./helpers/sftp-capture.js";

interface Recorded {
  command: string;
  outcome: string;
  details: Record<string, unknown>;
  mutating: boolean;
  startedBeforeComplete: boolean;
}

/** Feeds chunks in their captured order; `split` re-cuts each chunk at that offset. */
function observe(chunks: readonly CapturedChunk[], split?: number): { records: Recorded[]; started: string[] } {
  const started: string[] = [];
  const startedIds = new Set<number>();
  let feeding: "client" | "server" = "client";
  const records: Recorded[] = [];
  let clock = 1_000_000;
  const observer = new SftpObserver(
    {
      commandStarted: (op: SftpOperation) => {
        // Write-ahead: a mutating request is announced while the client's chunk is in hand, before it is relayed.
        expect(feeding).toBe("client");
        started.push(op.command);
        startedIds.add(op.id);
      },
      commandCompleted: (op: SftpOperation, done: SftpCompletion) => {
        records.push({ command: op.command, outcome: done.outcome, details: { ...done.details }, mutating: op.mutating, startedBeforeComplete: startedIds.has(op.id) });
      },
    },
    { now: () => (clock += 10) },
  );
  for (const chunk of chunks) {
    feeding = chunk.from;
    const feed = (bytes: Uint8Array) => (chunk.from === "client" ? observer.client(bytes) : observer.server(bytes));
    if (split === undefined || split <= 0 || split >= chunk.bytes.byteLength) feed(chunk.bytes);
    else {
      feed(chunk.bytes.subarray(0, split));
      feed(chunk.bytes.subarray(split));
    }
  }
  observer.end();
  return { records, started };
}

describe.skipIf(!sftpAvailable())("SftpObserver on real sftp ↔ sftp-server traffic", () => {
  let dir: string;
  let chunks: CapturedChunk[];
  const size = 3 * 1024 * 1024 + 17;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "gh-sftp-"));
    writeFileSync(join(dir, "big.bin"), randomBytes(size));
    const r = join(dir, "remote");
    const capture = await captureSftpBatch(dir, [
      `mkdir ${r}`,
      `put big.bin ${r}/big.bin`,
      `get ${r}/big.bin back.bin`,
      `chmod 600 ${r}/big.bin`,
      `rename ${r}/big.bin ${r}/moved.bin`,
      `ln -s ${r}/moved.bin ${r}/link`,
      `ls ${r}`,
      `ln ${r}/moved.bin ${r}/hard`,
      `df ${r}`,
      `rm ${r}/hard`,
      `-rm ${dir}/nonexistent`,
      `rm ${r}/link`,
      `rm ${r}/moved.bin`,
      `rmdir ${r}`,
    ]);
    chunks = capture.chunks;
    expect(readFileSync(join(dir, "back.bin")).byteLength).toBe(size);
  });

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("records each operation with its paths, flags, byte counts and errors", () => {
    const { records } = observe(chunks);
    const r = join(dir, "remote");
    const find = (command: string) => {
      const found = records.filter((x) => x.command === command);
      expect(found, command).toHaveLength(1);
      return found[0]!;
    };
    expect(find(`mkdir ${r}`)).toMatchObject({ outcome: "ok", mutating: true, startedBeforeComplete: true });
    expect(find(`open ${r}/big.bin (write,create,truncate)`)).toMatchObject({ outcome: "ok", mutating: true, startedBeforeComplete: true, details: { mode: "0644" } });
    const closes = records.filter((x) => x.command === `close ${r}/big.bin`);
    expect(closes.map((x) => [x.details.bytesWritten, x.details.bytesRead])).toEqual([
      [size, 0],
      [0, size],
    ]);
    expect(find(`open ${r}/big.bin (read)`)).toMatchObject({ outcome: "ok", mutating: false, startedBeforeComplete: false });
    expect(find(`setstat ${r}/big.bin (mode 0600)`)).toMatchObject({ outcome: "ok", mutating: true, details: { mode: "0600" } });
    expect(find(`rename ${r}/big.bin ${r}/moved.bin`)).toMatchObject({ outcome: "ok", mutating: true, details: { newPath: `${r}/moved.bin` } });
    expect(find(`symlink ${r}/link -> ${r}/moved.bin`)).toMatchObject({ outcome: "ok", mutating: true });
    expect(find(`hardlink ${r}/hard -> ${r}/moved.bin`)).toMatchObject({ outcome: "ok", mutating: true, startedBeforeComplete: true });
    expect(records.some((x) => x.command.startsWith("lookup ") && (x.details.paths as string[]).includes(`statvfs ${r}`))).toBe(true);
    // `ls` is one listing with the entry count the server returned (., .., moved.bin, link).
    expect(find(`list ${r}/ (4 entries)`)).toMatchObject({ outcome: "ok", details: { entries: 4 } });
    expect(find(`remove ${dir}/nonexistent`)).toMatchObject({ outcome: "error", details: { status: "NO_SUCH_FILE", statusCode: 2 } });
    expect(find(`remove ${r}/link`).outcome).toBe("ok");
    expect(find(`remove ${r}/hard`).outcome).toBe("ok");
    expect(find(`remove ${r}/moved.bin`).outcome).toBe("ok");
    expect(find(`rmdir ${r}`)).toMatchObject({ outcome: "ok", mutating: true, startedBeforeComplete: true });
    // Lookups are batched, never one record each, and no READ/WRITE is recorded on its own.
    const lookups = records.filter((x) => x.command.startsWith("lookup "));
    expect(lookups.length).toBeGreaterThan(0);
    expect(lookups.reduce((n, x) => n + (x.details.count as number), 0)).toBeGreaterThanOrEqual(lookups.length);
    expect(records.length).toBeLessThan(30);
    // Every mutating operation was announced (write-ahead) before it completed.
    expect(records.filter((x) => x.mutating).every((x) => x.startedBeforeComplete)).toBe(true);
  });

  it("says the same when every chunk is cut at other offsets", () => {
    const whole = observe(chunks).records;
    for (const split of [1, 2, 3, 4, 5, 7, 9, 13, 17, 100, 4096, 32_768]) {
      expect(observe(chunks, split).records, `split ${split}`).toEqual(whole);
    }
  });
});

describe.skipIf(!sftpAvailable())("SftpObserver on a small real session, split at every byte", () => {
  let dir: string;
  let chunks: CapturedChunk[];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "gh-sftp-small-"));
    writeFileSync(join(dir, "note.txt"), "hello\n");
    chunks = (await captureSftpBatch(dir, [`put note.txt ${dir}/copy.txt`, `ls ${dir}`, `-rename ${dir}/absent ${dir}/x`, `rm ${dir}/copy.txt`])).chunks;
  });

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("gives the same record when each chunk is cut at every offset, and when fed byte by byte", () => {
    const whole = observe(chunks).records;
    expect(whole.map((x) => x.command)).toEqual(
      expect.arrayContaining([`open ${dir}/copy.txt (write,create,truncate)`, `close ${dir}/copy.txt`, `rename ${dir}/absent ${dir}/x`, `remove ${dir}/copy.txt`]),
    );
    expect(whole.find((x) => x.command === `close ${dir}/copy.txt`)?.details.bytesWritten).toBe(6);
    expect(whole.find((x) => x.command.startsWith("rename"))).toMatchObject({ outcome: "error", details: { status: "NO_SUCH_FILE" } });
    const longest = Math.max(...chunks.map((c) => c.bytes.byteLength));
    for (let split = 1; split < longest; split++) expect(observe(chunks, split).records).toEqual(whole);
    const bytewise = chunks.flatMap((c) => Array.from(c.bytes, (b) => ({ from: c.from, bytes: Uint8Array.of(b) })));
    expect(observe(bytewise).records).toEqual(whole);
  });
});

describe.skipIf(!sftpAvailable())("SftpObserver on a recursive put and get of 40 files", () => {
  let dir: string;
  let chunks: CapturedChunk[];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "gh-sftp-tree-"));
    mkdirSync(join(dir, "src"));
    for (let i = 0; i < 40; i++) writeFileSync(join(dir, "src", `f${String(i).padStart(2, "0")}.txt`), `file ${i}\n`);
    const tree = join(dir, "remote");
    chunks = (await captureSftpBatch(dir, [`put -r ${dir}/src ${tree}`, `get -r ${tree} ${dir}/back`, `ls -l ${tree}`])).chunks;
  });

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("records one open and one close per file, listings as one record each, lookups batched", () => {
    const { records } = observe(chunks);
    const count = (prefix: string) => records.filter((x) => x.command.startsWith(prefix)).length;
    expect(count("open ")).toBe(80);
    expect(count("close ")).toBe(80);
    expect(records.filter((x) => x.command.startsWith("close ")).reduce((n, x) => n + (x.details.bytesWritten as number) + (x.details.bytesRead as number), 0)).toBe(
      2 * Array.from({ length: 40 }, (_, i) => `file ${i}\n`.length).reduce((a, b) => a + b, 0),
    );
    const lists = records.filter((x) => x.command.startsWith("list "));
    expect(lists.length).toBeGreaterThanOrEqual(2);
    // The listing of the uploaded tree: 40 files plus . and .. (put -r creates no more).
    expect(lists.every((x) => x.details.entries === 42)).toBe(true);
    // Every lookup the client made is counted, in far fewer records than lookups.
    const lookups = records.filter((x) => x.command.startsWith("lookup "));
    const looked = lookups.reduce((n, x) => n + (x.details.count as number), 0);
    expect(looked).toBeGreaterThan(lookups.length);
    expect(records.length).toBeLessThan(80 + 80 + 2 * 40 + 10);
  });
});
