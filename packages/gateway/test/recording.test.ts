// The recording path end to end inside one process, against a real store: recorder → journal →
// shipper → store → verify. A Postgres at GATEHOUSE_TEST_STORE_URL (default the local server) gets a
// fresh database per file; without one, an in-memory embedded store is used.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openStore, StoreError, type Store } from "@gatehouse/store";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { configSchema } from "../src/config/schema.js";
import { GatewayError } from "../src/errors.js";
import { startRecording, type Recording } from "../src/evidence/recording.js";
import { parsePublicKeys } from "../src/evidence/signing.js";
import { verifySession } from "../src/evidence/verify.js";
import { verifyCheckpoints } from "../src/evidence/verify-checkpoints.js";
import { createLogger } from "../src/logger.js";
import { createStoreDatabase } from "./support/store-database.js";

const logger = createLogger("fatal");
let store: Store;
let dropDatabase: (() => Promise<void>) | undefined;
const dirs: string[] = [];
const running: Recording[] = [];

beforeAll(async () => {
  // Made with a plain client: opening the server's maintenance database as a store would migrate it.
  const database = await createStoreDatabase("gatehouse_rec").catch(() => undefined);
  if (database) {
    store = await openStore({ url: database.url(), maxConnections: 4 });
    dropDatabase = () => database.drop();
  } else {
    store = await openStore({ memory: true });
  }
});

afterAll(async () => {
  await store?.close();
  await dropDatabase?.();
});

afterEach(async () => {
  for (const r of running.splice(0)) await r.close().catch(() => undefined);
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function dataDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "gatehouse-recording-"));
  dirs.push(dir);
  return dir;
}

const settings = (overrides: Record<string, unknown> = {}) => configSchema.parse({ recording: overrides }).recording;

let clockUs = 1_800_000_000_000_000;
const clock = () => (clockUs += 7);

async function start(dir: string, options: { mode?: "strict" | "best-effort"; journal?: Record<string, number>; target?: Pick<Store, "record"> } = {}) {
  const recording = await startRecording({
    dataDir: dir,
    store: options.target ?? store,
    settings: settings({ mode: options.mode ?? "strict", ...(options.journal ? { journal: options.journal } : {}) }),
    clock,
    logger,
    shipper: { retryMinMs: 10, retryMaxMs: 50 },
  });
  running.push(recording);
  return recording;
}

/** Stops like `kill -9` after the last fsync: nothing is closed or shipped on the way out. */
async function crash(recording: Recording): Promise<void> {
  running.splice(running.indexOf(recording), 1);
  await recording.shipper.stop();
  await recording.journal.close();
}

async function verified(recording: Recording, sessionId: string) {
  const found = await store.sessions.get(sessionId);
  if (!found) throw new Error(`session ${sessionId} not in the store`);
  return { ...found, verdict: verifySession(found.session, found.events, parsePublicKeys(recording.signingKey.publicKeyPem, "test")) };
}

const meta = { identity: { name: "agent", groups: ["sre"] }, connection: "app", protocol: "postgres", connector: "dc1", clientAddress: "127.0.0.1", clientApplication: "psql" };

describe("recording", () => {
  it("records, chains, seals and ships a session; verify passes and names nothing", async () => {
    const recording = await start(dataDir());
    const session = await recording.recorder.open(meta);
    await session.record({ kind: "connect", outcome: "ok" });
    for (let i = 1; i <= 20; i++) {
      const command = { i };
      session.commandStarted(command, { kind: "query", command: `select ${i}`, timeUs: clock() });
      await session.writeAhead();
      await session.commandCompleted(command, { kind: "query", command: `select ${i}`, outcome: "ok", details: { tag: "SELECT 1", rows: 1 } });
    }
    // Text Postgres cannot store, from a client: recorded escaped, and verifiable.
    await session.record({ kind: "query", command: "select 'a\u0000b'", params: ["\ud800"], outcome: "ok" });
    await session.close("client_closed");
    expect(await recording.shipper.drain(10_000)).toBe(true);
    const { session: stored, events, verdict } = await verified(recording, session.id);
    expect(verdict).toMatchObject({ ok: true, open: false, events: 22 });
    expect(stored).toMatchObject({ endReason: "client_closed", eventCount: 22, identity: { name: "agent", groups: ["sre"] } });
    expect(stored.sealSignature).toMatch(/^ed25519:[0-9a-f]{16}:/);
    expect(events.map((e) => e.seq)).toEqual(Array.from({ length: 22 }, (_, i) => i + 1));
    expect(events[21]).toMatchObject({ command: "select 'a\\0b'", params: [{ $escaped: "\\uD800" }], details: { escaped: ["command"] } });
  });

  it("after a crash, closes the session as gateway_restart, its started command interrupted, and it verifies", async () => {
    const dir = dataDir();
    const first = await start(dir);
    const session = await first.recorder.open(meta);
    const done = { n: 1 };
    session.commandStarted(done, { kind: "query", command: "select 1", timeUs: clock() });
    await session.writeAhead();
    await session.commandCompleted(done, { kind: "query", command: "select 1", outcome: "ok" });
    // Journaled as the client sent it (a NUL included); escaped when it becomes an event.
    session.commandStarted({ n: 2 }, { kind: "query", command: "select pg_sleep(600) /* a\u0000b */", params: null, timeUs: clock() });
    await session.writeAhead();
    await crash(first);

    const second = await start(dir);
    expect(second.recovery.openSessions.map((s) => s.session.id)).toEqual([session.id]);
    expect(await second.shipper.drain(10_000)).toBe(true);
    const { session: stored, events, verdict } = await verified(second, session.id);
    expect(verdict.ok).toBe(true);
    expect(stored.endReason).toBe("gateway_restart");
    expect(events.map((e) => [e.command, e.outcome, e.details?.["status"] ?? null])).toEqual([
      ["select 1", "ok", null],
      ["select pg_sleep(600) /* a\\0b */", null, "interrupted"],
    ]);
  });

  it("keeps one checkpoint chain across a crash, a clean stop and a lost journal, and it verifies", async () => {
    const dir = dataDir();
    const first = await start(dir);
    const sealed = await first.recorder.open(meta);
    await sealed.record({ kind: "connect", outcome: "ok" });
    await sealed.close("client_closed");
    const crashed = await first.recorder.open(meta);
    await crash(first);

    // Recovery seals the session the crash left open, into the same chain.
    const second = await start(dir);
    expect(second.checkpoints.head.seq).toBeGreaterThanOrEqual(4);
    await second.close();
    running.splice(running.indexOf(second), 1);
    // The journal lost (a new disk): the chain goes on from the store's last checkpoint.
    rmSync(join(dir, "journal"), { recursive: true, force: true });
    const third = await start(dir);
    expect(await third.shipper.drain(10_000)).toBe(true);

    const gateway = third.signingKey.keyId;
    const stored = (await store.checkpoints.scan({ limit: 1000 })).filter((c) => c.gateway === gateway);
    // open, seal, state (start), open, [crash] state (start: the crashed session live), seal
    // (recovery), state (stop: nothing live), [journal lost] state (start).
    expect(stored.map((c) => [c.seq, c.kind, c.sessionId])).toEqual([
      [1, "state", null],
      [2, "open", sealed.id],
      [3, "seal", sealed.id],
      [4, "open", crashed.id],
      [5, "seal", crashed.id],
      [6, "state", null],
      [7, "state", null],
    ]);
    const sessions = new Map((await store.sessions.list({ limit: 1000 })).filter((s) => [sealed.id, crashed.id].includes(s.id)).map((s) => [s.id, s]));
    const report = verifyCheckpoints({ stored, sessions, complete: false, keys: parsePublicKeys(third.signingKey.publicKeyPem, "test") });
    expect([...report.chainFailures, ...report.sessionFailures]).toEqual([]);
  });

  it("rotates to a new key when the store says its key was retired, even across a crash, and both keys' seals verify", async () => {
    const dir = dataDir();
    const first = await start(dir);
    const oldKey = first.signingKey;
    expect((await store.gatewayKeys.list()).find((k) => k.keyId === oldKey.keyId)).toMatchObject({ retiredUs: null });
    const sealed = await first.recorder.open(meta);
    await sealed.close("client_closed");
    const crashed = await first.recorder.open(meta);
    await crash(first);
    expect(await store.gatewayKeys.retire(oldKey.keyId, clock())).toBe("retired");

    // The next start seals the crashed session, and everything after, with a new key in a chain of its own.
    const second = await start(dir);
    expect(second.signingKey.keyId).not.toBe(oldKey.keyId);
    expect(await second.shipper.drain(10_000)).toBe(true);
    expect((await store.gatewayKeys.list()).find((k) => k.keyId === second.signingKey.keyId)).toMatchObject({ retiredUs: null });
    const keys = [...parsePublicKeys(oldKey.publicKeyPem, "old"), ...parsePublicKeys(second.signingKey.publicKeyPem, "new")];
    for (const [id, key] of [[sealed.id, oldKey.keyId], [crashed.id, second.signingKey.keyId]] as const) {
      const found = (await store.sessions.get(id))!;
      expect(found.session.sealSignature).toMatch(new RegExp(`^ed25519:${key}:`));
      expect(verifySession(found.session, found.events, keys).ok).toBe(true);
    }
    const stored = (await store.checkpoints.scan({ limit: 1000 })).filter((c) => c.gateway === oldKey.keyId || c.gateway === second.signingKey.keyId);
    expect(stored.filter((c) => c.gateway === second.signingKey.keyId).map((c) => [c.seq, c.kind, c.sessionId])).toEqual([
      [1, "seal", crashed.id],
      [2, "state", null],
    ]);
    const sessions = new Map((await store.sessions.list({ limit: 1000 })).filter((s) => [sealed.id, crashed.id].includes(s.id)).map((s) => [s.id, s]));
    const report = verifyCheckpoints({ stored, sessions, complete: false, keys });
    expect([...report.chainFailures, ...report.sessionFailures]).toEqual([]);
  });

  it("ships again from the start after losing its acknowledgements, without a single duplicate", async () => {
    const dir = dataDir();
    const first = await start(dir);
    const ids: string[] = [];
    for (let s = 0; s < 3; s++) {
      const session = await first.recorder.open(meta);
      ids.push(session.id);
      for (let i = 0; i < 50; i++) await session.record({ kind: "query", command: `select ${i}`, outcome: "ok" });
      await session.close("client_closed");
    }
    expect(await first.shipper.drain(10_000)).toBe(true);
    await crash(first);
    rmSync(join(dir, "journal", "acked"));

    const second = await start(dir);
    expect(second.recovery.ackedLsn).toBe(0);
    expect(await second.shipper.drain(10_000)).toBe(true);
    for (const id of ids) {
      const { events, verdict, session } = await verified(second, id);
      expect(verdict.ok).toBe(true);
      expect(events).toHaveLength(50);
      expect(session.eventCount).toBe(50);
    }
  });

  it("strict: with the store away and the journal full, new commands and sessions are refused; all resumes when the store returns", async () => {
    let down = true;
    const target: Pick<Store, "record"> = {
      record: (batch) => (down ? Promise.reject(new StoreError("CONNECT_FAILED", "the store does not answer")) : store.record(batch)),
    };
    const recording = await start(dataDir(), { target, journal: { maxBytes: 64 * 1024, segmentBytes: 16 * 1024 } });
    const session = await recording.recorder.open(meta);
    let n = 0;
    let refusal: unknown;
    for (; n < 5000; n++) {
      const command = { n };
      session.commandStarted(command, { kind: "query", command: `insert into t values (${n}) -- ${"p".repeat(100)}`, timeUs: clock() });
      try {
        await session.writeAhead();
      } catch (error) {
        refusal = error;
        break;
      }
      await session.commandCompleted(command, { kind: "query", command: `insert into t values (${n})`, outcome: "ok" });
    }
    expect(refusal).toBeInstanceOf(GatewayError);
    expect(refusal).toMatchObject({ code: "RECORDING_UNAVAILABLE", recording: { reason: "journal_full" } });
    await expect(recording.recorder.open(meta)).rejects.toMatchObject({ code: "RECORDING_UNAVAILABLE" });
    await session.close("recording_unavailable");

    down = false;
    expect(await recording.shipper.drain(10_000)).toBe(true);
    expect(recording.journal.health()).toEqual({ state: "ok" });
    const { events, verdict, session: stored } = await verified(recording, session.id);
    expect(verdict.ok).toBe(true);
    // Every command that was let through is recorded, the refused one is not.
    expect(events).toHaveLength(n);
    expect(stored.endReason).toBe("recording_unavailable");
    const next = await recording.recorder.open(meta);
    await next.close("client_closed");
  });

  it("best-effort: what the full journal could not take is counted in a recording_degraded event", async () => {
    let down = true;
    const target: Pick<Store, "record"> = {
      record: (batch) => (down ? Promise.reject(new StoreError("CONNECT_FAILED", "the store does not answer")) : store.record(batch)),
    };
    const recording = await start(dataDir(), { mode: "best-effort", target, journal: { maxBytes: 64 * 1024, segmentBytes: 16 * 1024 } });
    const session = await recording.recorder.open(meta);
    for (let n = 0; n < 600; n++) {
      const command = { n };
      session.commandStarted(command, { kind: "query", command: `select ${n} -- ${"p".repeat(100)}`, timeUs: clock() });
      expect(session.writeAhead()).toBeUndefined(); // never waits
      await session.commandCompleted(command, { kind: "query", command: `select ${n}`, outcome: "ok" });
    }
    expect(recording.journal.health().state).toBe("full");
    down = false;
    expect(await recording.shipper.drain(10_000)).toBe(true);
    await session.record({ kind: "disconnect", outcome: "ok" });
    await session.close("client_closed");
    expect(await recording.shipper.drain(10_000)).toBe(true);
    const { events, verdict } = await verified(recording, session.id);
    expect(verdict.ok).toBe(true);
    const degraded = events.filter((e) => e.kind === "recording_degraded");
    expect(degraded).toHaveLength(1);
    const lost = degraded[0]!.details!["lost"] as number;
    expect(degraded[0]!.details).toMatchObject({ reason: "journal_full" });
    // Every command is either recorded or counted as lost.
    expect(events.filter((e) => e.kind === "query").length + lost).toBe(600);
    expect(lost).toBeGreaterThan(0);
  });

  it("skips (and counts) an entry the store refuses as invalid, and ships everything around it", async () => {
    const recording = await start(dataDir());
    const session = await recording.recorder.open(meta);
    await session.record({ kind: "query", command: "select 1", outcome: "ok" });
    // An entry written past the recorder (which would have escaped the NUL): the store refuses it.
    recording.journal.append({ t: "event", event: { sessionId: session.id, seq: 99, timeUs: clock(), kind: "query", command: "bad\u0000text" } }, true);
    await session.record({ kind: "query", command: "select 2", outcome: "ok" });
    await session.close("client_closed");
    expect(await recording.shipper.drain(10_000)).toBe(true);
    expect(recording.shipper.stats.rejected).toBe(1);
    const { events, verdict } = await verified(recording, session.id);
    expect(events.map((e) => e.command)).toEqual(["select 1", "select 2"]);
    expect(verdict.ok).toBe(true);
  });
});

