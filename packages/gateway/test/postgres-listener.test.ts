import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { connect as connectTcp, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import type { SessionEvent, SessionRecord } from "@gatehouse/store";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { validateConfig } from "../src/config/load.js";
import { startGateway, type Gateway } from "../src/gateway.js";
import { AccessKeys } from "../src/identity/access-keys.js";
import { createLogger } from "../src/logger.js";
import { jsonLogSink } from "./support/json-logs.js";
import { createStoreDatabase, type StoreDatabase } from "./support/store-database.js";

// The Postgres listener against abusive and odd clients: the whole gateway in
// process, its store a fresh database on the local Postgres, real sockets and
// node-postgres on port 0. No connector runs: a client that gets through
// authentication and policy ends "connector unavailable" (08006), which is how
// these tests see it got through.

let store: StoreDatabase | undefined;
const dirs: string[] = [];
const gateways: Gateway[] = [];

beforeAll(async () => {
  store = await createStoreDatabase("gatehouse_listener");
});

afterEach(async () => {
  for (const g of gateways.splice(0)) await g.close().catch(() => undefined);
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

afterAll(async () => {
  await store?.drop();
});

interface Started {
  gateway: Gateway;
  logs: Array<Record<string, unknown>>;
  key: string;
}

/** A gateway with `limits` over the defaults, and an access key for identity "agent". */
async function start(limits: Record<string, unknown> = {}): Promise<Started> {
  const dir = mkdtempSync(join(tmpdir(), "gatehouse-listener-"));
  dirs.push(dir);
  const logs: Array<Record<string, unknown>> = [];
  const sink = jsonLogSink(logs);
  const gateway = await startGateway(
    validateConfig({
      dataDir: join(dir, "data"),
      store: { url: store!.url(), maxConnections: 2 },
      listen: { api: "127.0.0.1:0", postgres: "127.0.0.1:0" },
      limits,
      connectors: [{ name: "dc1", tokenSha256: "a".repeat(64) }],
      connections: [{ name: "app", protocol: "postgres", connector: "dc1", target: { host: "127.0.0.1", port: 5432 }, allow: [{ identity: "agent" }, { identity: "other" }] }],
    }),
    { logger: createLogger("debug", sink) },
  );
  gateways.push(gateway);
  const { key } = await new AccessKeys(gateway.store, () => Date.now() * 1000).create("agent");
  return { gateway, logs, key };
}

interface PgError extends Error {
  code?: string;
  hint?: string;
}

let attempt = 0;

/** node-postgres without TLS (SCRAM on loopback); resolves to the error it fails with and its application name. */
async function attemptAs(gateway: Gateway, user: string, password: string, database = "app"): Promise<{ error: PgError; application: string; ms: number }> {
  const application = `listener-test-${++attempt}`;
  const client = new pg.Client({ ...gateway.postgres!, user, password, database, application_name: application, ssl: false, connectionTimeoutMillis: 10_000 });
  client.on("error", () => undefined);
  const started = Date.now();
  try {
    await client.connect();
  } catch (error) {
    return { error: error as PgError, application, ms: Date.now() - started };
  } finally {
    await client.end().catch(() => undefined);
  }
  throw new Error("the connection was accepted (no connector runs in this test)");
}

type Recorded = SessionRecord & { events: SessionEvent[] };

/** The ended sessions matching `match`, once there are at least `count` of them with all their events. */
async function recorded(gateway: Gateway, match: (s: SessionRecord) => boolean, count = 1, timeoutMs = 10_000): Promise<Recorded[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = (await gateway.store.sessions.list({ limit: 1000 })).filter((s) => match(s) && s.endedUs !== null);
    if (found.length >= count) {
      const full = await Promise.all(found.map((s) => gateway.store.sessions.get(s.id)));
      if (full.every((f) => f && f.events.length >= f.session.eventCount && f.events.length > 0)) return full.map((f) => ({ ...f!.session, events: f!.events }));
    }
    if (Date.now() > deadline) throw new Error(`fewer than ${count} ended sessions`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** A raw socket to the listener (from `localAddress`, another loopback address, when given). */
async function rawSocket(gateway: Gateway, localAddress?: string): Promise<{ socket: Socket; received: () => Buffer; closed: Promise<number> }> {
  const socket = connectTcp({ ...gateway.postgres!, ...(localAddress ? { localAddress } : {}) });
  const chunks: Buffer[] = [];
  socket.on("data", (chunk: Buffer) => chunks.push(chunk));
  socket.on("error", () => undefined);
  const opened = Date.now();
  const closed = new Promise<number>((resolve) => socket.on("close", () => resolve(Date.now() - opened)));
  await new Promise<void>((resolve) => socket.once("connect", () => resolve()));
  return { socket, received: () => Buffer.concat(chunks), closed };
}

/** psql's stderr for a connection string (psql is a real client; it must not block this process's event loop). */
function psqlError(conninfo: string): Promise<string> {
  return new Promise((resolve) => {
    execFile("psql", [conninfo, "-c", "select 1"], { env: { PATH: process.env.PATH ?? "/usr/bin:/bin", PGCONNECT_TIMEOUT: "10" } }, (_error, _stdout, stderr) => resolve(stderr));
  });
}

function startupPacket(user: string, database: string): Buffer {
  const body = Buffer.from(`user\0${user}\0database\0${database}\0\0`);
  const packet = Buffer.alloc(8 + body.length);
  packet.writeInt32BE(packet.length, 0);
  packet.writeInt32BE(196608, 4);
  body.copy(packet, 8);
  return packet;
}

describe("the handshake deadline", () => {
  it("cuts off a client that trickles its startup one byte at a time, at the deadline for the whole handshake", async () => {
    const { gateway, logs } = await start({ handshakeTimeoutMs: 600 });
    const { socket, closed, received } = await rawSocket(gateway);
    const packet = startupPacket("agent", "app");
    let sent = 0;
    // A byte every 100 ms: each read comes well within 600 ms of the last one.
    const drip = setInterval(() => {
      if (sent < packet.length - 1 && !socket.destroyed) socket.write(packet.subarray(sent, ++sent));
    }, 100);
    try {
      const ms = await Promise.race([closed, new Promise<number>((resolve) => setTimeout(() => resolve(-1), 3_000))]);
      expect(ms).toBeGreaterThanOrEqual(550);
      expect(ms).toBeLessThan(2_500);
    } finally {
      clearInterval(drip);
      socket.destroy();
    }
    expect(received().length).toBe(0);
    expect(logs.some((l) => l.msg === "handshake deadline passed; closing" && l.level === 30)).toBe(true);
  });
});

describe("clients that leave before their startup", () => {
  it("a Terminate as the first bytes (connect(); end()): closed without a reply, as Postgres does", async () => {
    const { gateway, logs } = await start();
    const { socket, closed, received } = await rawSocket(gateway);
    socket.write(Buffer.from([0x58, 0, 0, 0, 4]));
    await closed;
    expect(received().length).toBe(0);
    expect(logs.find((l) => l.msg === "no startup packet; closing without a reply")).toMatchObject({ level: 30 });
  });

  it("a failed TLS handshake after an accepted SSLRequest is the client's doing: logged at info, never as an error", async () => {
    const { gateway, logs } = await start();
    const { socket, closed, received } = await rawSocket(gateway);
    const sslRequest = Buffer.alloc(8);
    sslRequest.writeInt32BE(8, 0);
    sslRequest.writeInt32BE(80877103, 4);
    socket.write(sslRequest);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(received().toString()).toBe("S");
    // A TLS record header for a handshake, with garbage inside.
    socket.write(Buffer.concat([Buffer.from([0x16, 0x03, 0x01, 0x00, 0x20]), Buffer.alloc(32, 0x41)]));
    await closed;
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(logs.filter((l) => (l.level as number) >= 50)).toEqual([]);
    expect(logs.find((l) => l.msg === "the client's connection failed during its handshake")).toMatchObject({ level: 30 });
  });
});

describe("limits on connections in their handshake", () => {
  it("refuses with 53300 past the per-address limit and past the total, says so in a warn line, and admits again once they leave", async () => {
    const { gateway, logs } = await start({ maxHandshakes: 3, maxHandshakesPerAddress: 2 });
    const held = [await rawSocket(gateway), await rawSocket(gateway)];
    await new Promise((resolve) => setTimeout(resolve, 100));

    const { error } = await attemptAs(gateway, "agent", "gk_wrong");
    expect(error).toMatchObject({ code: "53300", message: "sorry, too many clients already" });
    expect(logs.find((l) => l.msg === "too many connections: refused (53300)")).toMatchObject({ level: 40, limit: "maxHandshakesPerAddress", max: 2 });

    // Another address still gets in, up to the total.
    held.push(await rawSocket(gateway, "127.0.0.2"));
    await new Promise((resolve) => setTimeout(resolve, 100));
    const fourth = await rawSocket(gateway, "127.0.0.3");
    fourth.socket.write(startupPacket("agent", "app"));
    await fourth.closed;
    expect(fourth.received().toString("latin1")).toContain("C53300");
    // psql sees the error too: it comes after TLS and the startup, as from Postgres (libpq shows no error sent before TLS).
    const psql = await psqlError(`host=127.0.0.1 port=${gateway.postgres!.port} user=agent dbname=app password=gk_wrong sslmode=require`);
    expect(psql).toContain("FATAL:  sorry, too many clients already");

    for (const h of held) h.socket.destroy();
    await Promise.all(held.map((h) => h.closed));
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect((await attemptAs(gateway, "agent", "gk_wrong")).error).toMatchObject({ code: "28P01" });
  });
});

describe("credentials before connection names", () => {
  it("a wrong key on an unknown connection gets 28P01 like on a known one; recorded as unauthenticated, naming what was claimed", async () => {
    const { gateway, key } = await start();
    const unknown = await attemptAs(gateway, "agent", "gk_wrong", "no-such-connection");
    expect(unknown.error).toMatchObject({ code: "28P01", message: 'password authentication failed for user "agent"' });
    const [session] = await recorded(gateway, (s) => s.clientApplication === unknown.application);
    expect(session).toMatchObject({ identity: { name: "agent", method: null }, connection: "no-such-connection", endReason: "auth_failed" });
    expect(session!.events[0]).toMatchObject({ kind: "auth_failed", details: { reason: "wrong_key" } });

    // With the right key the client may learn the connection does not exist.
    expect((await attemptAs(gateway, "agent", key, "no-such-connection")).error).toMatchObject({ code: "3D000" });
  });
});

describe("throttling failed authentication", () => {
  it("delays attempts past the free failures, then locks the identity out even with the right key; a success resets", async () => {
    const { gateway, key, logs } = await start({ authThrottle: { freeFailures: 1, delayMs: 300, maxDelayMs: 600, lockoutAfter: 4, lockoutMs: 60_000 } });
    const times: number[] = [];
    for (let i = 0; i < 4; i++) {
      const { error, ms } = await attemptAs(gateway, "agent", `gk_wrong${i}`);
      expect(error.code).toBe("28P01");
      times.push(ms);
    }
    // Failures so far before each attempt: 0, 1, 2, 3 → delays 0, 0, 300, 600.
    expect(times[2]).toBeGreaterThanOrEqual(300);
    expect(times[3]).toBeGreaterThanOrEqual(600);
    expect(times[1]).toBeLessThan(300);
    const locked = await attemptAs(gateway, "agent", key);
    expect(locked.error).toMatchObject({ code: "28P01" });
    expect(locked.ms).toBeLessThan(550);
    const [session] = await recorded(gateway, (s) => s.clientApplication === locked.application);
    expect(session!.events[0]).toMatchObject({ kind: "auth_failed", details: { reason: "locked_out" } });
    expect(logs.some((l) => l.msg === "repeated authentication failures; locking out" && l.level === 40)).toBe(true);
  });

  it("a success forgets the failures of its identity and address", async () => {
    const { gateway, key } = await start({ authThrottle: { freeFailures: 1, delayMs: 400, maxDelayMs: 400, lockoutAfter: 3 } });
    await attemptAs(gateway, "agent", "gk_wrong");
    await attemptAs(gateway, "agent", "gk_wrong");
    const slowed = await attemptAs(gateway, "agent", key);
    expect(slowed.ms).toBeGreaterThanOrEqual(400);
    expect(slowed.error.code).toBe("08006");
    const after = await attemptAs(gateway, "agent", "gk_wrong");
    expect(after.ms).toBeLessThan(400);
  });
});

describe("what unauthenticated clients add to the record", () => {
  it("records the first refusals of a burst from one address one by one, the rest as one event with their count; claimed names cut", async () => {
    const { gateway } = await start({ authThrottle: { freeFailures: 100 }, refusalRecords: { recordEach: 2, windowMs: 1_500, maxClaimedChars: 64 } });
    const started = Date.now() * 1000;
    const long = `x${"y".repeat(5_000)}`;
    for (let i = 0; i < 6; i++) expect((await attemptAs(gateway, i === 0 ? long : `nobody-${i}`, "gk_wrong")).error.code).toBe("28P01");
    const sessions = await recorded(gateway, (s) => s.startedUs >= started && s.endReason === "auth_failed", 3, 10_000);
    await new Promise((resolve) => setTimeout(resolve, 500));
    const all = await gateway.store.sessions.list({ limit: 1000 });
    expect(all.filter((s) => s.startedUs >= started)).toHaveLength(3);
    const cut = sessions.find((s) => s.identity.name.startsWith("xy"));
    expect(cut!.identity.name).toBe(`x${"y".repeat(63)}…`);
    const summary = sessions.find((s) => (s.events[0]!.details as { count?: number }).count !== undefined);
    expect(summary!.events[0]!.details).toMatchObject({ count: 4, reasons: { no_key: 4 }, identities: ["nobody-2", "nobody-3", "nobody-4", "nobody-5"] });
  });
});
