import { createHash } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { connect as connectTcp } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import mysql from "mysql2/promise";
import pg from "pg";
import pino from "pino";
import { parseConnectorSettings, startConnector, type Connector } from "@gatehouse/connector";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { validateConfig } from "../src/config/load.js";
import { startGateway, type Gateway } from "../src/gateway.js";
import { AccessKeys } from "../src/identity/access-keys.js";
import { createLogger } from "../src/logger.js";
import { jsonLogSink } from "./support/json-logs.js";
import { recordedSession } from "./support/recorded-session.js";
import { createStoreDatabase, type StoreDatabase } from "./support/store-database.js";

// Two gateways on one Postgres store, one connector holding a tunnel to each (issue 15): a cancel
// that reaches the other gateway than its session's still cancels. The resources are the local
// Postgres (trust) and MariaDB (root, no password); the clients node-postgres and mysql2.

const MARIADB = { host: "127.0.0.1", port: 3306 };
const CONNECTOR_TOKEN = "multi-gateway-cancel-token";

let dir: string;
let store: StoreDatabase | undefined;
let a: Gateway;
let b: Gateway;
const logsA: Array<Record<string, unknown>> = [];
const logsB: Array<Record<string, unknown>> = [];
let connector: Connector;
let agentKey: string;
let otherKey: string;

async function startOne(name: string, logs: Array<Record<string, unknown>>): Promise<Gateway> {
  return startGateway(
    validateConfig({
      dataDir: join(dir, name),
      store: { url: store!.url(), maxConnections: 3 },
      listen: { api: "127.0.0.1:0", postgres: "127.0.0.1:0", mysql: "127.0.0.1:0" },
      connectors: [{ name: "dc1", tokenSha256: createHash("sha256").update(CONNECTOR_TOKEN).digest("hex") }],
      connections: [
        { name: "pg", protocol: "postgres", connector: "dc1", target: { host: "127.0.0.1", port: 5432, database: "postgres" }, credential: { user: "postgres" }, allow: [{ identity: "agent" }, { identity: "other" }] },
        { name: "maria", protocol: "mysql", connector: "dc1", target: { ...MARIADB, database: "mysql" }, credential: { user: "root" }, allow: [{ identity: "agent" }, { identity: "other" }] },
      ],
    }),
    { logger: createLogger("debug", jsonLogSink(logs)), processMetrics: false },
  );
}

async function until(check: () => boolean, what: string, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "gatehouse-multi-gateway-"));
  store = await createStoreDatabase("gatehouse_multigw");
  a = await startOne("a", logsA);
  b = await startOne("b", logsB);
  // One store: a key made through A works at B.
  const keys = new AccessKeys(a.store, () => Date.now() * 1000);
  agentKey = (await keys.create("agent")).key;
  otherKey = (await keys.create("other")).key;
  const settings = parseConnectorSettings(
    ["--gateway", a.apiUrl.replace(/^http/, "ws"), "--gateway", b.apiUrl.replace(/^http/, "ws"), "--name", "dc1", "--token", CONNECTOR_TOKEN, "--allow", "127.0.0.1:5432,127.0.0.1:3306"],
    {},
  );
  connector = startConnector(settings, { logger: pino({ level: "silent" }) });
  await until(() => [logsA, logsB].every((logs) => logs.some((l) => l.msg === "connector connected")), "the connector at both gateways");
}, 60_000);

afterAll(async () => {
  await connector?.stop();
  await a?.close({ graceMs: 0 });
  await b?.close({ graceMs: 0 });
  await store?.drop();
  rmSync(dir, { recursive: true, force: true });
});

/** A CancelRequest on a new connection, as libpq and node-postgres send it. */
async function sendCancel(at: { host: string; port: number }, processId: number, secret: number): Promise<void> {
  const message = Buffer.alloc(16);
  message.writeInt32BE(16, 0);
  message.writeInt32BE(80877102, 4);
  message.writeUInt32BE(processId >>> 0, 8);
  message.writeUInt32BE(secret >>> 0, 12);
  await new Promise<void>((resolve, reject) => {
    const socket = connectTcp(at, () => socket.end(message));
    socket.on("error", reject);
    socket.on("close", () => resolve());
  });
}

describe("two gateways, one store, one connector with a tunnel to each", () => {
  it("serves a session through either gateway", async () => {
    for (const gateway of [a, b]) {
      const client = new pg.Client({ ...gateway.postgres!, user: "agent", password: agentKey, database: "pg", ssl: false });
      await client.connect();
      expect((await client.query("select 1 as one")).rows).toEqual([{ one: 1 }]);
      await client.end();
    }
    expect(connector.links.map((l) => l.up)).toEqual([true, true]);
  });

  it("a Postgres CancelRequest sent to gateway B cancels pg_sleep(30) running through gateway A (57014); a wrong secret does not", async () => {
    const program = "multigw-pg-sleeper";
    const client = new pg.Client({ ...a.postgres!, user: "agent", password: agentKey, database: "pg", ssl: false, application_name: program });
    client.on("error", () => undefined);
    await client.connect();
    const { processID, secretKey } = client as unknown as { processID: number; secretKey: number };
    let settled = false;
    const sleeping = client.query("select pg_sleep(30)").then(
      () => "finished",
      (error: { code?: string }) => error.code ?? "no code",
    );
    void sleeping.then(() => (settled = true));
    await new Promise((r) => setTimeout(r, 300));

    // The wrong secret: B finds no route for it, and nothing happens to the query.
    await sendCancel(b.postgres!, processID, (secretKey ^ 0x5a5a5a5a) >>> 0);
    await new Promise((r) => setTimeout(r, 1_000));
    expect(settled).toBe(false);
    expect(logsB.some((l) => l.msg === "cancel request for an unknown key ignored")).toBe(true);

    // A's key, sent to B: B finds A's route in the store and hands the cancel to A.
    const sentAt = performance.now();
    await sendCancel(b.postgres!, processID, secretKey);
    expect(await sleeping).toBe("57014");
    const latencyMs = performance.now() - sentAt;
    process.stderr.write(`[multi-gateway] cross-gateway Postgres cancel took ${latencyMs.toFixed(0)} ms\n`);
    expect(latencyMs).toBeLessThan(2_000);
    expect(logsB.some((l) => l.msg === "cancel request for another gateway's session handed to it")).toBe(true);
    // The session goes on.
    expect((await client.query("select 2 as two")).rows).toEqual([{ two: 2 }]);
    await client.end();

    const session = await recordedSession(a.store, program);
    const cancels = session.events.filter((e) => e.kind === "cancel");
    expect(cancels).toHaveLength(1);
    expect(cancels[0]).toMatchObject({ outcome: "ok", details: { sent: true, forwardedBy: expect.any(String) } });
    // The session's route is gone from the store once it ended.
    const pgRoutes = async () => (await a.store.sql.query<{ n: number }>("select count(*)::int4 as n from cancel_routes where protocol = 'postgres'"))[0]!.n;
    const deadline = Date.now() + 5_000;
    while ((await pgRoutes()) > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(await pgRoutes()).toBe(0);
  }, 30_000);

  it("KILL QUERY <id> from a session on gateway B stops SELECT SLEEP(30) on gateway A; another identity gets 1095, an unknown id 1094", async () => {
    const connect = (gateway: Gateway, program: string, user = "agent", password = agentKey) =>
      mysql.createConnection({ ...gateway.mysql!, user, password, database: "maria", connectAttributes: { program_name: program }, connectTimeout: 10_000 });
    const sleeper = await connect(a, "multigw-mysql-sleeper");
    sleeper.on("error", () => undefined);
    const sleeping = sleeper.query("SELECT SLEEP(30) AS slept").then(
      () => "done",
      (error: { errno?: number }) => `error ${error.errno}`,
    );
    await new Promise((r) => setTimeout(r, 500));

    const stranger = await connect(b, "multigw-mysql-stranger", "other", otherKey);
    await expect(stranger.query(`KILL QUERY ${sleeper.threadId}`)).rejects.toMatchObject({ errno: 1095 });
    await stranger.end();

    const killer = await connect(b, "multigw-mysql-killer");
    await expect(killer.query("KILL QUERY 2147483647")).rejects.toMatchObject({ errno: 1094 });
    const sentAt = performance.now();
    await killer.query(`KILL QUERY ${sleeper.threadId}`);
    expect(await sleeping).toBe("error 1317");
    process.stderr.write(`[multi-gateway] cross-gateway KILL QUERY took ${(performance.now() - sentAt).toFixed(0)} ms\n`);
    expect(performance.now() - sentAt).toBeLessThan(2_000);
    const [rows] = await sleeper.query("SELECT 1 AS still");
    expect(rows).toEqual([{ still: 1 }]);
    await killer.end();
    await sleeper.end();

    // Recorded at both ends: the KILL on the killer's session (at B), the kill on the sleeper's (at A).
    const killerSession = await recordedSession(b.store, "multigw-mysql-killer");
    expect(killerSession.events.find((e) => e.command === `KILL QUERY ${sleeper.threadId}`)).toMatchObject({ kind: "kill", outcome: "ok", details: { scope: "query", gateway: expect.any(String) } });
    const sleeperSession = await recordedSession(a.store, "multigw-mysql-sleeper");
    expect(sleeperSession.events.find((e) => e.kind === "kill")).toMatchObject({ outcome: "ok", details: { forwardedBy: expect.any(String) } });
  }, 40_000);

  it("KILL <id> from a login naming no connection on gateway B (the mariadb client's Ctrl-C connection) ends the session on gateway A", async () => {
    const victim = await mysql.createConnection({ ...a.mysql!, user: "agent", password: agentKey, database: "maria", connectAttributes: { program_name: "multigw-mysql-victim" }, connectTimeout: 10_000 });
    victim.on("error", () => undefined);
    const closed = new Promise<void>((resolve) => victim.on("end", () => resolve()));
    const killer = await mysql.createConnection({ ...b.mysql!, user: "agent", password: agentKey, connectTimeout: 10_000 });
    await killer.query(`KILL ${victim.threadId}`);
    await closed;
    await killer.end();
    const session = await recordedSession(a.store, "multigw-mysql-victim");
    expect(session.endedUs).not.toBeNull();
  }, 30_000);

  it("a KILL for a session whose gateway is gone (its route not yet expired) gets 1429 after the answer timeout, not a hang", async () => {
    await a.store.cancelRoutes.publish({ routeKey: "mysql:1234567", protocol: "mysql", gateway: "crashed-gateway", sessionId: "s-gone", identity: "agent" }, 60);
    const killer = await mysql.createConnection({ ...b.mysql!, user: "agent", password: agentKey, database: "maria", connectTimeout: 10_000 });
    const started = Date.now();
    await expect(killer.query("KILL QUERY 1234567")).rejects.toMatchObject({ errno: 1429 });
    expect(Date.now() - started).toBeGreaterThanOrEqual(4_500);
    // Another identity's is refused without asking anyone.
    const stranger = await mysql.createConnection({ ...b.mysql!, user: "other", password: otherKey, database: "maria", connectTimeout: 10_000 });
    await expect(stranger.query("KILL QUERY 1234567")).rejects.toMatchObject({ errno: 1095 });
    await Promise.all([killer.end(), stranger.end()]);
    await a.store.cancelRoutes.remove("crashed-gateway", ["mysql:1234567"]);
  }, 30_000);

  it("thread ids differ across the gateways' sessions", async () => {
    const connections = await Promise.all([a, b, a, b].map((g) => mysql.createConnection({ ...g.mysql!, user: "agent", password: agentKey, database: "maria", connectTimeout: 10_000 })));
    const ids = connections.map((c) => c.threadId);
    expect(new Set(ids).size).toBe(4);
    expect(ids.every((id) => id > 0 && id < 2 ** 31)).toBe(true);
    await Promise.all(connections.map((c) => c.end()));
  });
});
