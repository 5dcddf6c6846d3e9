import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import pg from "pg";
import { openStore, type Store } from "@gatehouse/store";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { validateConfig } from "../src/config/load.js";
import { startGateway, type Gateway } from "../src/gateway.js";
import { AccessKeys } from "../src/identity/access-keys.js";
import { createLogger } from "../src/logger.js";
import { createStoreDatabase } from "./support/store-database.js";
import { startTcpProxy, type TcpProxy } from "./support/tcp-proxy.js";

// Logins while the store is blackholed: the gateway's store (a real Postgres) sits behind a TCP
// proxy that stops forwarding but keeps every socket open, as a dropped route does. Access keys of
// identities the gateway has seen are checked against the keys it holds in memory, so such logins
// take as long as with the store up; an identity never seen gets a quick, clean 57P03. No connector
// runs: a login that got through authentication ends "connector unavailable" (08006).

let dir: string;
let proxy: TcpProxy;
let db: Awaited<ReturnType<typeof createStoreDatabase>>;
let direct: Store;
let gateway: Gateway;
const keys: Record<string, string> = {};
const logLines: Array<Record<string, unknown>> = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "gatehouse-outage-logins-"));
  db = await createStoreDatabase("gatehouse_logins");
  proxy = await startTcpProxy({ host: "127.0.0.1", port: 5432 });
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString("utf8").split("\n").filter(Boolean)) logLines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  gateway = await startGateway(
    validateConfig({
      dataDir: join(dir, "data"),
      listen: { api: "127.0.0.1:0", postgres: "127.0.0.1:0" },
      store: { url: db.url({ host: "127.0.0.1", port: proxy.port }) },
      connectors: [{ name: "dc1", tokenSha256: "a".repeat(64) }],
      connections: [{ name: "app", protocol: "postgres", connector: "dc1", target: { host: "127.0.0.1", port: 5432 }, allow: [{ identity: "agent-warm" }, { identity: "agent-cold" }] }],
    }),
    { logger: createLogger("info", sink) },
  );
  // Keys made elsewhere: straight in the store, not through this gateway.
  direct = await openStore({ url: db.url() });
  const elsewhere = new AccessKeys(direct, () => Date.now() * 1000);
  for (const identity of ["agent-warm", "agent-cold"]) keys[identity] = (await elsewhere.create(identity)).key;
  await elsewhere.close();
});

afterAll(async () => {
  proxy?.restore();
  await gateway?.close();
  await direct?.close();
  await proxy?.close();
  await db?.drop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

interface PgError extends Error {
  code?: string;
}

/** One login: the SQLSTATE the gateway answered with and how long it took. */
async function login(user: string, options: { ssl?: boolean; password?: string } = {}): Promise<{ code: string | undefined; ms: number }> {
  const started = performance.now();
  const client = new pg.Client({
    host: gateway.postgres!.host,
    port: gateway.postgres!.port,
    user,
    password: options.password ?? keys[user],
    database: "app",
    ssl: options.ssl === false ? false : { rejectUnauthorized: false },
    connectionTimeoutMillis: 20_000,
  });
  client.on("error", () => undefined);
  try {
    await client.connect();
    throw new Error("the connection was accepted (no connector runs in this test)");
  } catch (error) {
    return { code: (error as PgError).code, ms: performance.now() - started };
  } finally {
    await client.end().catch(() => undefined);
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("logins while the store is blackholed", () => {
  it("take about as long as with the store up, for identities seen before; an unseen one gets 57P03 quickly", async () => {
    // With the store up: the first login reads the identity's keys; later ones are served from memory.
    const up: number[] = [];
    for (let i = 0; i < 4; i++) {
      const result = await login("agent-warm", { ssl: i % 2 === 0 });
      expect(result.code).toBe("08006");
      up.push(result.ms);
    }

    const upConcurrent = await Promise.all(Array.from({ length: 16 }, (_, i) => login("agent-warm", { ssl: i % 2 === 0 })));

    proxy.blackhole();
    // Past the refresh interval: the keys in memory are stale and their background read hangs.
    await sleep(6_000);
    const during = await Promise.all(Array.from({ length: 16 }, (_, i) => login("agent-warm", { ssl: i % 2 === 0 })));
    const list = (results: { ms: number }[]) => results.map((r) => r.ms.toFixed(0)).join(" ");
    console.log(`login ms, store up: one at a time ${list(up.map((ms) => ({ ms })))}; 16 concurrent ${list(upConcurrent)}; 16 concurrent, store blackholed: ${list(during)}`);
    for (const result of during) {
      expect(result.code).toBe("08006");
      expect(result.ms).toBeLessThan(2_000);
    }
    // A wrong key is still a wrong key.
    expect((await login("agent-warm", { password: "ghk_wrong" })).code).toBe("28P01");

    // Never seen: one store read with a short deadline, then a clean refusal, logged at warn.
    const cold = await Promise.all([login("agent-cold"), login("agent-cold", { ssl: false })]);
    for (const result of cold) {
      expect(result.code).toBe("57P03");
      expect(result.ms).toBeLessThan(3_500);
    }
    expect(logLines.find((l) => typeof l.msg === "string" && l.msg.startsWith("login refused: the identity's access keys cannot be checked now"))).toMatchObject({ level: 40 });
    expect(logLines.filter((l) => (l.level as number) >= 50 && l.msg === "postgres session failed")).toEqual([]);

    // /readyz answers at once, says the store is unreachable, stays ready, and names nothing of the store.
    const response = await fetch(`${gateway.apiUrl}/readyz`, { signal: AbortSignal.timeout(1_500) });
    const text = await response.text();
    expect(response.status).toBe(200);
    expect(JSON.parse(text)).toEqual({ status: "ready", checks: { recording: "ok", store: "unreachable", config: "loaded", listeners: { "listen.api": "listening", "listen.postgres": "listening" } } });
    // The listeners are named by their config keys (listen.postgres): the store's user "postgres" is looked for elsewhere.
    const withoutListenerKeys = text.replace('"listen.postgres"', '"listen.x"');
    for (const secret of [String(proxy.port), "127.0.0.1", db.name, "postgres"]) expect(withoutListenerKeys).not.toContain(secret);

    // The store is back: logins stay quick, and the identity not seen before can log in now.
    proxy.restore();
    const after = await Promise.all(Array.from({ length: 8 }, () => login("agent-warm")));
    for (const result of after) expect(result.ms).toBeLessThan(2_000);
    expect((await login("agent-cold")).code).toBe("08006");
    // The refusals during the outage were recorded too (through the journal, shipped once the store is back).
    await expect
      .poll(
        async () => {
          const refused = (await direct.sessions.list({ identity: "agent-cold" })).filter((s) => s.endReason === "auth_failed");
          const events = await direct.events.forSessions(refused.map((s) => s.id));
          return events.filter((e) => e.details?.reason === "credentials_unavailable").length;
        },
        { timeout: 5_000 },
      )
      .toBe(2);
  }, 60_000);

  it("a key revoked elsewhere stops working within the refresh interval", async () => {
    expect((await login("agent-warm")).code).toBe("08006");
    const [key] = await direct.accessKeys.list({ identity: "agent-warm" });
    await direct.accessKeys.revoke(key!.id, Date.now() * 1000);
    const revokedAt = performance.now();
    let refused = false;
    while (!refused && performance.now() - revokedAt < 10_000) {
      refused = (await login("agent-warm")).code === "28P01";
      if (!refused) await sleep(250);
    }
    expect(refused).toBe(true);
    expect(performance.now() - revokedAt).toBeLessThan(7_000);
  }, 20_000);

  it("a key created elsewhere works within a second (a key that matches none is checked against a new read)", async () => {
    const elsewhere = new AccessKeys(direct, () => Date.now() * 1000);
    const { key } = await elsewhere.create("agent-warm");
    await elsewhere.close();
    await sleep(1_100);
    for (const ssl of [true, false]) expect((await login("agent-warm", { password: key, ssl })).code).toBe("08006");
  });
});
