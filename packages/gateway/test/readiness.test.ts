import { mkdtempSync, rmSync } from "node:fs";
import { Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { validateConfig } from "../src/config/load.js";
import { startGateway, type Gateway } from "../src/gateway.js";
import { AccessKeys } from "../src/identity/access-keys.js";
import { createLogger } from "../src/logger.js";
import { scrape, valueOf } from "./support/prometheus-text.js";
import { createStoreDatabase, type StoreDatabase } from "./support/store-database.js";
import { startTcpProxy, type TcpProxy } from "./support/tcp-proxy.js";

// /readyz and listen.metrics against real failures: a listener whose socket closes under the
// gateway, and a store that is down while strict recording fills the journal. Real Postgres as
// the store (through a TCP proxy that can cut it), node-postgres as the client; no connector runs,
// so a login that gets through ends "connector unavailable" (08006), a recorded session all the same.

let db: StoreDatabase | undefined;
const dirs: string[] = [];
const gateways: Gateway[] = [];
const proxies: TcpProxy[] = [];

beforeAll(async () => {
  db = await createStoreDatabase("gatehouse_readiness");
});

afterEach(async () => {
  for (const p of proxies) p.restore();
  for (const g of gateways.splice(0)) await g.close({ graceMs: 0 }).catch(() => undefined);
  for (const p of proxies.splice(0)) await p.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

afterAll(async () => {
  await db?.drop();
});

async function start(extra: Record<string, unknown>, storeUrl = db!.url()): Promise<Gateway> {
  const dir = mkdtempSync(join(tmpdir(), "gatehouse-readiness-"));
  dirs.push(dir);
  const gateway = await startGateway(
    validateConfig({
      dataDir: join(dir, "data"),
      store: { url: storeUrl, maxConnections: 2 },
      connectors: [{ name: "dc1", tokenSha256: "a".repeat(64) }],
      connections: [{ name: "app", protocol: "postgres", connector: "dc1", target: { host: "127.0.0.1", port: 5432 }, allow: [{ identity: "agent" }] }],
      ...extra,
      listen: { api: "127.0.0.1:0", postgres: "127.0.0.1:0", ...(extra.listen as object | undefined) },
    }),
    { logger: createLogger("silent"), processMetrics: false },
  );
  gateways.push(gateway);
  return gateway;
}

async function readyz(gateway: Gateway): Promise<{ status: number; body: { status: string; reason?: string; checks: Record<string, unknown> } }> {
  const response = await fetch(`${gateway.apiUrl}/readyz`);
  return { status: response.status, body: (await response.json()) as { status: string; reason?: string; checks: Record<string, unknown> } };
}

/** The process's own listening server on `port`, as Node holds it: what the listener's socket is. */
function serverOn(port: number): Server {
  const handles = (process as unknown as { _getActiveHandles(): unknown[] })._getActiveHandles();
  const found = handles.find((h): h is Server => h instanceof Server && (h.address() as { port?: number } | null)?.port === port);
  if (!found) throw new Error(`no listening server on port ${port}`);
  return found;
}

describe("listen.metrics", () => {
  it("serves /metrics on its own port, and the api listener then does not", async () => {
    const gateway = await start({ listen: { metrics: "127.0.0.1:0" } });
    expect(gateway.metricsUrl).not.toContain(new URL(gateway.apiUrl).host);
    const samples = await scrape(gateway.metricsUrl);
    expect(valueOf(samples, "gatehouse_listener_up", { listener: "listen.metrics" })).toBe(1);
    expect(valueOf(samples, "gatehouse_ready")).toBe(1);
    // No process metrics asked for.
    expect(samples.some((s) => s.name.startsWith("process_"))).toBe(false);
    expect((await fetch(`${gateway.apiUrl}/metrics`)).status).toBe(404);
    expect((await fetch(gateway.metricsUrl.replace(/\/metrics$/, "/api/v1/sessions"))).status).toBe(404);
    expect((await fetch(gateway.metricsUrl, { method: "POST" })).status).toBe(405);
  });
});

describe("a listener that cannot listen", () => {
  it("stops the start with LISTEN_FAILED naming its key (its watch does not swallow the error)", async () => {
    const taken = await start({});
    await expect(start({ listen: { postgres: `127.0.0.1:${taken.postgres!.port}` } })).rejects.toMatchObject({ code: "LISTEN_FAILED", message: expect.stringContaining("listen.postgres: cannot listen on") });
    await expect(start({ listen: { metrics: `127.0.0.1:${taken.postgres!.port}` } })).rejects.toMatchObject({ code: "LISTEN_FAILED", message: expect.stringContaining("listen.metrics: cannot listen on") });
  });
});

describe("/readyz", () => {
  it("says ready with every listener listening, and not ready, naming it, once one closes under the gateway; /healthz stays ok", async () => {
    const gateway = await start({ listen: { metrics: "127.0.0.1:0" } });
    const before = await readyz(gateway);
    expect(before).toEqual({
      status: 200,
      body: {
        status: "ready",
        checks: { recording: "ok", store: "ok", config: "loaded", listeners: { "listen.api": "listening", "listen.metrics": "listening", "listen.postgres": "listening" } },
      },
    });

    await new Promise<void>((resolve) => serverOn(gateway.postgres!.port).close(() => resolve()));
    const after = await readyz(gateway);
    expect(after.status).toBe(503);
    expect(after.body.reason).toBe("new sessions are refused: listen.postgres is not listening (closed unexpectedly)");
    expect(after.body.checks.listeners).toEqual({ "listen.api": "listening", "listen.metrics": "listening", "listen.postgres": "down" });
    expect((await fetch(`${gateway.apiUrl}/healthz`)).status).toBe(200);
    const samples = await scrape(gateway.metricsUrl);
    expect(valueOf(samples, "gatehouse_listener_up", { listener: "listen.postgres" })).toBe(0);
    expect(valueOf(samples, "gatehouse_ready")).toBe(0);
  });

  it("says not ready, and why, once the store has been down for longer than strict recording's journal holds", async () => {
    const proxy = await startTcpProxy({ host: "127.0.0.1", port: 5432 });
    proxies.push(proxy);
    const gateway = await start(
      { recording: { mode: "strict", journal: { segmentBytes: 16 * 1024, maxBytes: 64 * 1024 } }, store: { url: db!.url({ host: "127.0.0.1", port: proxy.port }), maxConnections: 2 } },
    );
    const keys = new AccessKeys(gateway.store, () => Date.now() * 1000);
    const key = (await keys.create("agent")).key;
    await keys.close();
    const login = async (): Promise<string | undefined> => {
      const client = new pg.Client({ ...gateway.postgres!, user: "agent", password: key, database: "app", ssl: false, connectionTimeoutMillis: 10_000 });
      client.on("error", () => undefined);
      try {
        await client.connect();
        return "connected";
      } catch (error) {
        return (error as { code?: string }).code;
      } finally {
        await client.end().catch(() => undefined);
      }
    };
    expect(await login()).toBe("08006"); // the identity's keys are in memory from now on

    proxy.cut();
    let refused: string | undefined;
    for (let i = 0; i < 400 && refused === undefined; i++) {
      const code = await login();
      if (code !== "08006") refused = code;
    }
    expect(refused).toBe("53100");
    const { status, body } = await readyz(gateway);
    expect(status).toBe(503);
    expect(body.reason).toMatch(/^new sessions are refused: the store has been unreachable for \d+ s, past what the recording journal holds \(recording\.journal\.maxBytes\)/);
    expect(body.checks).toMatchObject({ recording: "journal_full", store: "unreachable" });
    const samples = await scrape(gateway.metricsUrl);
    expect(valueOf(samples, "gatehouse_journal_accepting")).toBe(0);
    expect(valueOf(samples, "gatehouse_store_up")).toBe(0);
    expect(valueOf(samples, "gatehouse_store_unreachable_seconds")).toBeGreaterThan(0);
    expect(valueOf(samples, "gatehouse_shipper_errors_total")).toBeGreaterThan(0);
    expect(valueOf(samples, "gatehouse_journal_unshipped_entries")).toBeGreaterThan(20);
    const unshippedBytes = valueOf(samples, "gatehouse_journal_unshipped_bytes")!;
    expect(unshippedBytes).toBeGreaterThan(32 * 1024);
    expect(unshippedBytes).toBeLessThanOrEqual(valueOf(samples, "gatehouse_journal_used_bytes")!);
    expect(valueOf(samples, "gatehouse_journal_oldest_unshipped_age_seconds")).toBeGreaterThan(0);
    expect(valueOf(samples, "gatehouse_auth_refusals_total", { protocol: "postgres" }) ?? 0).toBe(0);

    // The store is back: the backlog ships, the journal takes work again, the gateway is ready.
    proxy.restore();
    await expect.poll(async () => (await readyz(gateway)).status, { timeout: 15_000, interval: 250 }).toBe(200);
    await expect.poll(async () => valueOf(await scrape(gateway.metricsUrl), "gatehouse_journal_unshipped_entries"), { timeout: 5_000 }).toBe(0);
    expect(await login()).toBe("08006");
  }, 60_000);
});
