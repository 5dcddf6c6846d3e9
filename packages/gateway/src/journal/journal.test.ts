import { closeSync, mkdtempSync, openSync, readdirSync, readSync, rmSync, statSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { GatewayError } from "../errors.js";
import { createLogger } from "../logger.js";
import type { JournalEntry } from "./entries.js";
import { Journal, type JournalOptions } from "./journal.js";
import { canMountTmpfs, fillDisk, mountTmpfs } from "../../test/support/tmpfs.js";

const logger = createLogger("fatal");
const dirs: string[] = [];
const open: Journal[] = [];
afterEach(async () => {
  for (const j of open.splice(0)) await j.close().catch(() => undefined);
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "gatehouse-journal-"));
  dirs.push(dir);
  return dir;
}

async function openJournal(dir: string, options: Partial<JournalOptions> = {}) {
  const result = await Journal.open({ dir, logger, segmentBytes: 64 * 1024, ...options });
  open.push(result.journal);
  return result;
}

async function reopen(journal: Journal, dir: string, options: Partial<JournalOptions> = {}) {
  await journal.close();
  open.splice(open.indexOf(journal), 1);
  return openJournal(dir, options);
}

const session = (id: string) => ({ id, identity: { name: "agent" }, connection: "app", protocol: "postgres", startedUs: 1 });
const openEntry = (id: string): JournalEntry => ({ t: "open", session: session(id), genesis: "00".repeat(32) });
const eventEntry = (id: string, seq: number, command = `select ${seq}`): JournalEntry => ({
  t: "event",
  event: { sessionId: id, seq, timeUs: seq, kind: "query", command, prevHash: "00".repeat(32), hash: seq.toString(16).padStart(64, "0") },
});

async function durable(journal: Journal): Promise<void> {
  await journal.whenDurable(journal.lastLsn);
}

async function readAll(journal: Journal, from = 1) {
  const cursor = journal.cursor(from);
  const out: { lsn: number; entry: JournalEntry }[] = [];
  for (;;) {
    const batch = await cursor.read(1000, 1 << 30);
    if (batch.length === 0) return out;
    out.push(...batch);
  }
}

const segmentFiles = (dir: string) => readdirSync(join(dir)).filter((n) => n.endsWith(".seg")).sort();

describe("journal", () => {
  it("makes entries durable with one sync for many appends, and reads them back in order", async () => {
    const dir = tempDir();
    const { journal, recovery } = await openJournal(dir, { segmentBytes: 1024 * 1024 });
    expect(recovery).toMatchObject({ entries: 0, tornEntries: 0, openSessions: [] });
    const flushesBefore = journal.stats.flushes;
    journal.append(openEntry("a"), true);
    const lsns = Array.from({ length: 500 }, (_, i) => journal.append(eventEntry("a", i + 1), false)!);
    expect(journal.durableLsn).toBeLessThan(lsns.at(-1)!);
    await journal.whenDurable(lsns.at(-1)!);
    // Group commit: everything appended in one go is written and synced in very few rounds.
    expect(journal.stats.flushes - flushesBefore).toBeLessThanOrEqual(3);
    expect(journal.whenDurable(lsns[0]!)).toBeUndefined();
    const entries = await readAll(journal);
    expect(entries.map((e) => e.entry.t)).toEqual(["checkpoint", "open", ...lsns.map(() => "event")]);
    expect(entries.map((e) => e.lsn)).toEqual(entries.map((_, i) => i + 1));
  });

  it("serves its own entries from memory and the rest from the files, the same entries either way", async () => {
    const dir = tempDir();
    // Memory for a few dozen entries only: the cursor must go back to the files for the others.
    const { journal } = await openJournal(dir, { segmentBytes: 16 * 1024, recentBytes: 4096 });
    journal.append(openEntry("a"), true);
    for (let i = 1; i <= 400; i++) journal.append(eventEntry("a", i, `select ${i} -- ${"x".repeat(i % 50)}`), true);
    await durable(journal);
    const cursor = journal.cursor(1);
    const mixed: { lsn: number; entry: JournalEntry }[] = [];
    for (let batch = await cursor.read(37, 1 << 30); batch.length > 0; batch = await cursor.read(37, 1 << 30)) {
      mixed.push(...batch);
      // Acknowledging lets memory go while the cursor is in the middle of a segment.
      journal.acknowledge(batch.at(-1)!.lsn);
    }
    expect(mixed.map((e) => e.lsn)).toEqual(mixed.map((_, i) => i + 1));
    const { journal: reopened } = await reopen(journal, dir);
    const fromFiles = await readAll(reopened, 1);
    expect(mixed.filter((e) => e.lsn >= fromFiles[0]!.lsn)).toEqual(fromFiles.filter((e) => e.lsn <= mixed.at(-1)!.lsn));
    expect(mixed.filter((e) => e.entry.t === "event")).toHaveLength(400);
  });

  it("recovers open sessions, their chain position and started commands after a restart", async () => {
    const dir = tempDir();
    const { journal } = await openJournal(dir);
    journal.append(openEntry("a"), true);
    journal.append(openEntry("b"), true);
    journal.append(eventEntry("a", 1), true);
    journal.append({ t: "start", sid: "a", ref: 1, draft: { kind: "query", command: "select pg_sleep(60)", timeUs: 5 } }, true);
    journal.append({ t: "start", sid: "a", ref: 2, draft: { kind: "query", command: "select 2", timeUs: 6 } }, true);
    journal.append({ ...eventEntry("a", 2), ref: 2 } as JournalEntry, true);
    journal.append({ t: "close", close: { id: "b", endedUs: 9, endReason: "client_closed", eventCount: 0 } }, true);
    await durable(journal);
    const { recovery } = await reopen(journal, dir);
    expect(recovery.tornEntries).toBe(0);
    expect(recovery.openSessions).toEqual([
      { session: session("a"), genesis: "00".repeat(32), seq: 2, lastHash: (2).toString(16).padStart(64, "0"), started: [{ ref: 1, draft: { kind: "query", command: "select pg_sleep(60)", timeUs: 5 } }] },
    ]);
  });

  it("drops a torn entry at the tail, counts it, and appends cleanly after it", async () => {
    const dir = tempDir();
    const { journal } = await openJournal(dir);
    journal.append(openEntry("a"), true);
    const last = journal.append(eventEntry("a", 1), true)!;
    await durable(journal);
    const [file] = segmentFiles(dir);
    const path = join(dir, file!);
    // Find the end of what was written, then leave half an entry there, as a crash mid-write would.
    const end = usedBytes(path);
    const fd = openSync(path, "r+");
    const partial = Buffer.alloc(40, 0x7b);
    partial.writeUInt32LE(300, 0); // claims 300 bytes of payload
    writeSync(fd, partial, 0, partial.length, end);
    closeSync(fd);

    const second = await reopen(journal, dir);
    expect(second.recovery).toMatchObject({ tornEntries: 1, lastLsn: last });
    const after = second.journal.append(eventEntry("a", 2), true)!;
    await durable(second.journal);
    expect(after).toBe(last + 1);
    const third = await reopen(second.journal, dir);
    expect(third.recovery).toMatchObject({ tornEntries: 0, lastLsn: after });
    expect((await readAll(third.journal)).map((e) => e.lsn)).toEqual(Array.from({ length: after }, (_, i) => i + 1));
  });

  it("drops the last entry when its own bytes are cut short", async () => {
    const dir = tempDir();
    const { journal } = await openJournal(dir);
    journal.append(openEntry("a"), true);
    const kept = journal.append(eventEntry("a", 1), true)!;
    journal.append(eventEntry("a", 2, "x".repeat(500)), true);
    await durable(journal);
    const path = join(dir, segmentFiles(dir)[0]!);
    const end = usedBytes(path);
    // Zero the second half of the last entry: its first half reached the disk, the rest did not.
    const fd = openSync(path, "r+");
    writeSync(fd, Buffer.alloc(250), 0, 250, end - 250);
    closeSync(fd);
    const { recovery } = await reopen(journal, dir);
    expect(recovery).toMatchObject({ tornEntries: 1, lastLsn: kept });
  });

  it("starts each segment with a checkpoint and deletes segments once the store has acknowledged them", async () => {
    const dir = tempDir();
    const { journal } = await openJournal(dir, { segmentBytes: 16 * 1024, maxBytes: 1024 * 1024 });
    journal.append(openEntry("long"), true);
    // A signed checkpoint of the gateway's chain: where the chain stands must survive its segment.
    const signed = { gateway: "0123456789abcdef", seq: 7, timeUs: 1, kind: "state", sessionId: null, details: { live: ["long"] }, prevHash: "a".repeat(64), hash: "b".repeat(64), signature: "ed25519:0123456789abcdef:x" };
    journal.append({ t: "signed", checkpoint: signed }, true);
    journal.append({ t: "start", sid: "long", ref: 1, draft: { kind: "query", command: "select pg_sleep(600)", timeUs: 1 } }, true);
    for (let i = 1; i <= 300; i++) journal.append(eventEntry("long", i, `select '${"y".repeat(100)}'`), true);
    await durable(journal);
    expect(segmentFiles(dir).length).toBeGreaterThan(2);
    journal.acknowledge(journal.durableLsn);
    await new Promise((r) => setTimeout(r, 100));
    // Only the current segment (and the next, made ahead) remain.
    expect(segmentFiles(dir).length).toBeLessThanOrEqual(2);
    // The deleted segments held the session's start and its started command: the checkpoint kept them.
    const { recovery } = await reopen(journal, dir, { segmentBytes: 16 * 1024, maxBytes: 1024 * 1024 });
    expect(recovery.openSessions).toHaveLength(1);
    expect(recovery.openSessions[0]).toMatchObject({ seq: 300, started: [{ ref: 1 }] });
    expect(recovery.chainHead).toEqual({ seq: 7, hash: "b".repeat(64) });
    expect(recovery.ackedLsn).toBe(recovery.lastLsn);
  });

  it("when full, refuses new work but takes what completes admitted work, and has room again once acknowledged", async () => {
    const dir = tempDir();
    const { journal } = await openJournal(dir, { segmentBytes: 16 * 1024, maxBytes: 32 * 1024 });
    journal.append(openEntry("a"), false);
    let seq = 0;
    while (journal.append(eventEntry("a", ++seq, "z".repeat(200)), false) !== undefined) {
      if (seq > 1000) throw new Error("never full");
    }
    expect(journal.health()).toEqual({ state: "full", maxBytes: 32 * 1024 });
    expect(journal.problem()).toEqual({ reason: "journal_full" });
    expect(journal.stats.refused).toBe(1);
    // A close (or a command's outcome) still goes in.
    const close = journal.append({ t: "close", close: { id: "a", endedUs: 1, endReason: "x", eventCount: seq - 1 } }, true);
    expect(close).toBeDefined();
    await durable(journal);
    expect(segmentFiles(dir).length).toBe(2);
    journal.acknowledge(journal.durableLsn);
    expect(journal.health()).toEqual({ state: "ok" });
    expect(journal.append(openEntry("b"), false)).toBeDefined();
    await durable(journal);
  });

  it("refuses a second gateway on the same directory", async () => {
    const dir = tempDir();
    await openJournal(dir);
    const error = await Journal.open({ dir, logger }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(GatewayError);
    expect((error as GatewayError).code).toBe("JOURNAL_FAILED");
    expect((error as GatewayError).message).toContain(`pid ${process.pid}`);
  });
});

describe.skipIf(!canMountTmpfs())("journal on a full disk (tmpfs)", () => {
  it("becomes unwritable with ENOSPC, keeps what it could not write, and catches up when space returns", async () => {
    const tmpfs = mountTmpfs("256k");
    const mount = tmpfs.path;
    try {
      const dir = join(mount, "journal");
      const { journal } = await openJournal(dir, { segmentBytes: 64 * 1024, maxBytes: 1024 * 1024, retryMs: 50 });
      // Fill the disk so the next segment cannot be made.
      const filler = join(mount, "filler");
      fillDisk(filler);
      journal.append(openEntry("a"), true);
      let seq = 0;
      const lsns: number[] = [];
      while (journal.health().state === "ok" && seq < 2000) {
        const lsn = journal.append(eventEntry("a", ++seq, "w".repeat(300)), false);
        if (lsn !== undefined) lsns.push(lsn);
        await new Promise((r) => setImmediate(r));
      }
      const health = journal.health();
      expect(health).toMatchObject({ state: "unwritable", errno: "ENOSPC" });
      expect(journal.problem()).toEqual({ reason: "journal_unwritable", errno: "ENOSPC" });
      const rejected = await journal.whenDurable(lsns.at(-1)!)!.catch((e: unknown) => e);
      expect(rejected).toMatchObject({ code: "RECORDING_UNAVAILABLE", recording: { reason: "journal_unwritable", errno: "ENOSPC" } });
      expect(journal.append(eventEntry("a", 99_999), false)).toBeUndefined();
      // Space returns: everything kept in memory reaches the disk, in order.
      rmSync(filler);
      const deadline = Date.now() + 5_000;
      while (journal.durableLsn < lsns.at(-1)! && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(journal.durableLsn).toBeGreaterThanOrEqual(lsns.at(-1)!);
      expect(journal.health()).toEqual({ state: "ok" });
      const events = (await readAll(journal)).filter((e) => e.entry.t === "event");
      expect(events.map((e) => e.lsn)).toEqual(lsns);
      await journal.close();
      open.splice(open.indexOf(journal), 1);
    } finally {
      tmpfs.unmount();
    }
  });
});

/** Offset just past the last non-zero byte of a segment: the end of what was written. */
function usedBytes(path: string): number {
  const size = statSync(path).size;
  const buf = Buffer.alloc(size);
  const fd = openSync(path, "r");
  readSync(fd, buf, 0, size, 0);
  closeSync(fd);
  let end = size;
  while (end > 0 && buf[end - 1] === 0) end--;
  return end;
}
