import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { parse as parseYaml } from "yaml";
import { type Connector } from "@gatehouse/connector";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { validateConfig } from "../src/config/load.js";
import { startGateway, type Gateway } from "../src/gateway.js";
import { AccessKeys } from "../src/identity/access-keys.js";
import { createLogger } from "../src/logger.js";
import { jsonLogSink } from "./support/json-logs.js";
import { parseExposition, scrape, valueOf } from "./support/prometheus-text.js";
import { createStoreDatabase, type StoreDatabase } from "./support/store-database.js";
import { startTestConnector } from "./support/test-connector.js";

// /metrics and session log lines after real sessions: the gateway in process (its store a fresh
// database on the local Postgres), a real connector, the local Postgres as the resource and
// node-postgres as the client. The tests run in order: the last one stops the connector.

const POSTGRES = { host: "127.0.0.1", port: 5432 };
const CONNECTOR_TOKEN = "metrics-test-token";

let dir: string;
let store: StoreDatabase | undefined;
let gateway: Gateway;
let connector: Connector;
let agentKey: string;
let outsiderKey: string;
const logs: Array<Record<string, unknown>> = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "gatehouse-metrics-"));
  store = await createStoreDatabase("gatehouse_metrics");
  gateway = await startGateway(
    validateConfig({
      dataDir: join(dir, "data"),
      store: { url: store.url(), maxConnections: 2 },
      listen: { api: "127.0.0.1:0", postgres: "127.0.0.1:0" },
      // Pings often, so a round trip is measured within the test.
      tunnel: { pingIntervalMs: 100 },
      connectors: [
        { name: "dc1", tokenSha256: createHash("sha256").update(CONNECTOR_TOKEN).digest("hex") },
        { name: "dc2", tokenSha256: "b".repeat(64) },
      ],
      connections: [
        { name: "pg", protocol: "postgres", connector: "dc1", target: { ...POSTGRES, database: "postgres" }, credential: { user: "postgres" }, allow: [{ identity: "agent" }] },
        // Its connector never connects: sessions to it are refused, and /metrics says it has none.
        { name: "far", protocol: "postgres", connector: "dc2", target: { ...POSTGRES, database: "postgres" }, credential: { user: "postgres" }, allow: [{ identity: "agent" }] },
      ],
    }),
    { logger: createLogger("debug", jsonLogSink(logs)) },
  );
  const keys = new AccessKeys(gateway.store, () => Date.now() * 1000);
  agentKey = (await keys.create("agent")).key;
  outsiderKey = (await keys.create("outsider")).key;
  await keys.close();
  connector = await startTestConnector(gateway.apiUrl, CONNECTOR_TOKEN, `${POSTGRES.host}:${POSTGRES.port}`, logs);
}, 60_000);

afterAll(async () => {
  await connector?.stop();
  await gateway?.close({ graceMs: 0 });
  await store?.drop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

interface PgError extends Error {
  code?: string;
}

/** node-postgres through the gateway, SCRAM over loopback without TLS. */
function client(options: { user?: string; password?: string; database?: string } = {}): pg.Client {
  const c = new pg.Client({ ...gateway.postgres!, user: options.user ?? "agent", password: options.password ?? agentKey, database: options.database ?? "pg", ssl: false, connectionTimeoutMillis: 10_000 });
  c.on("error", () => undefined);
  return c;
}

async function refusedWith(options: Parameters<typeof client>[0]): Promise<string | undefined> {
  const c = client(options);
  try {
    await c.connect();
    await c.end();
    return undefined;
  } catch (error) {
    return (error as PgError).code;
  }
}

const metrics = () => scrape(gateway.metricsUrl);

describe("/metrics", () => {
  it("is served on the api listener without the admin token, as Prometheus text", async () => {
    expect(gateway.metricsUrl).toBe(`${gateway.apiUrl}/metrics`);
    const response = await fetch(gateway.metricsUrl);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
    const { types } = parseExposition(await response.text());
    expect(types.get("gatehouse_command_added_latency_seconds")).toBe("histogram");
    expect(types.get("gatehouse_journal_fsync_seconds")).toBe("histogram");
    expect(types.get("gatehouse_commands_total")).toBe("counter");
    expect(types.get("gatehouse_journal_unshipped_bytes")).toBe("gauge");
    // Process metrics under their usual names.
    expect(types.get("process_cpu_seconds_total")).toBe("counter");
    expect(types.get("nodejs_eventloop_lag_seconds")).toBe("gauge");
    // The admin API still wants its token.
    expect((await fetch(`${gateway.apiUrl}/api/v1/sessions`)).status).toBe(401);
  });

  it("counts a real session's commands by outcome, the latency the gateway added, and a wrong key by reason", async () => {
    const c = client();
    await c.connect();
    expect((await c.query("select 1 as one")).rows).toEqual([{ one: 1 }]);
    await expect(c.query("select * from no_such_table")).rejects.toMatchObject({ code: "42P01" });
    expect((await c.query("select 2 as two")).rows).toEqual([{ two: 2 }]);
    const during = await metrics();
    expect(valueOf(during, "gatehouse_sessions_open", { protocol: "postgres" })).toBe(1);
    await c.end();
    expect(await refusedWith({ password: "not-the-key" })).toBe("28P01");

    await expect.poll(async () => valueOf(await metrics(), "gatehouse_sessions_ended_total", { protocol: "postgres", end_reason: "client_closed" }), { timeout: 5_000 }).toBe(1);
    const after = await metrics();
    expect(valueOf(after, "gatehouse_commands_total", { protocol: "postgres", outcome: "ok" })).toBe(2);
    expect(valueOf(after, "gatehouse_commands_total", { protocol: "postgres", outcome: "error" })).toBe(1);
    // One observation per statement: each came in its own chunk and was forwarded after its write-ahead.
    expect(valueOf(after, "gatehouse_command_added_latency_seconds_count", { protocol: "postgres" })).toBe(3);
    const latencySum = valueOf(after, "gatehouse_command_added_latency_seconds_sum", { protocol: "postgres" })!;
    expect(latencySum).toBeGreaterThan(0);
    expect(latencySum).toBeLessThan(3); // a second a statement would be a broken gateway, not a slow one
    expect(valueOf(after, "gatehouse_command_added_latency_seconds_bucket", { protocol: "postgres", le: "+Inf" })).toBe(3);
    expect(valueOf(after, "gatehouse_auth_refusals_total", { protocol: "postgres", reason: "wrong_key" })).toBe(1);
    // The refused attempt is a recorded session too, ended as auth_failed.
    expect(valueOf(after, "gatehouse_sessions_started_total", { protocol: "postgres" })).toBe(2);
    expect(valueOf(after, "gatehouse_sessions_ended_total", { protocol: "postgres", end_reason: "auth_failed" })).toBe(1);
    expect(valueOf(after, "gatehouse_sessions_open", { protocol: "postgres" }) ?? 0).toBe(0);
    // Strict mode (the default) synced the journal for each statement.
    expect(valueOf(after, "gatehouse_journal_fsync_seconds_count")).toBeGreaterThanOrEqual(3);
    expect(valueOf(after, "gatehouse_recording_mode", { mode: "strict" })).toBe(1);
  });

  it("shows the journal's backlog draining to the store, the shipper's batches and the store up", async () => {
    await expect.poll(async () => valueOf(await metrics(), "gatehouse_journal_unshipped_entries"), { timeout: 5_000 }).toBe(0);
    const samples = await metrics();
    expect(valueOf(samples, "gatehouse_journal_unshipped_bytes")).toBe(0);
    expect(valueOf(samples, "gatehouse_journal_oldest_unshipped_age_seconds")).toBe(0);
    expect(valueOf(samples, "gatehouse_journal_entries_appended_total")).toBeGreaterThan(10);
    expect(valueOf(samples, "gatehouse_journal_used_bytes")).toBeGreaterThan(0);
    expect(valueOf(samples, "gatehouse_journal_capacity_bytes")).toBe(1024 * 1024 * 1024);
    expect(valueOf(samples, "gatehouse_journal_accepting")).toBe(1);
    expect(valueOf(samples, "gatehouse_shipper_batches_total")).toBeGreaterThan(0);
    expect(valueOf(samples, "gatehouse_shipper_errors_total")).toBe(0);
    expect(valueOf(samples, "gatehouse_store_up")).toBe(1);
    expect(valueOf(samples, "gatehouse_store_unreachable_seconds")).toBe(0);
    expect(valueOf(samples, "gatehouse_listener_up", { listener: "listen.postgres" })).toBe(1);
    expect(valueOf(samples, "gatehouse_listener_up", { listener: "listen.api" })).toBe(1);
    expect(valueOf(samples, "gatehouse_ready")).toBe(1);
  });

  it("shows connector links, their streams and round trip, and which connections have no connector", async () => {
    await expect.poll(async () => valueOf(await metrics(), "gatehouse_connector_link_rtt_seconds", { connector: "dc1" }), { timeout: 5_000 }).toBeGreaterThan(0);
    const c = client();
    await c.connect();
    const samples = await metrics();
    await c.end();
    expect(valueOf(samples, "gatehouse_connector_link_rtt_seconds", { connector: "dc1" })).toBeLessThan(1);
    expect(valueOf(samples, "gatehouse_connector_links", { connector: "dc1", state: "live" })).toBe(1);
    expect(valueOf(samples, "gatehouse_connector_links", { connector: "dc2", state: "live" })).toBe(0);
    expect(valueOf(samples, "gatehouse_connector_link_streams", { connector: "dc1" })).toBe(1);
    expect(valueOf(samples, "gatehouse_connection_connector_up", { connection: "pg", protocol: "postgres", connector: "dc1" })).toBe(1);
    expect(valueOf(samples, "gatehouse_connection_connector_up", { connection: "far", protocol: "postgres", connector: "dc2" })).toBe(0);
  });

  it("deploy/prometheus/alerts.yml names only metrics that /metrics exposes", async () => {
    const response = await fetch(gateway.metricsUrl);
    const { samples, types } = parseExposition(await response.text());
    const exposed = new Set([...types.keys(), ...samples.map((s) => s.name)]);
    const file = parseYaml(readFileSync(new URL("../../../deploy/prometheus/alerts.yml", import.meta.url), "utf8")) as {
      groups: Array<{ name: string; rules: Array<{ alert?: string; expr: string; labels?: Record<string, string>; annotations?: Record<string, string> }> }>;
    };
    const rules = file.groups.flatMap((g) => g.rules);
    expect(rules.length).toBeGreaterThanOrEqual(6);
    const named = new Set<string>();
    for (const rule of rules) {
      expect(rule.alert, JSON.stringify(rule)).toMatch(/^Gatehouse[A-Za-z]+$/);
      expect(rule.labels?.severity, rule.alert).toMatch(/^(page|ticket|warning|critical)$/);
      expect(rule.annotations?.summary, rule.alert).toBeTruthy();
      for (const [name] of rule.expr.matchAll(/\b(?:gatehouse|process|nodejs)_[a-z0-9_]+/g)) named.add(name);
    }
    const missing = [...named].filter((name) => !exposed.has(name) && !exposed.has(name.replace(/_(bucket|count|sum)$/, "")));
    expect(missing).toEqual([]);
    // The alerts, at least.
    for (const metric of ["gatehouse_journal_unshipped_bytes", "gatehouse_journal_oldest_unshipped_age_seconds", "gatehouse_store_up", "gatehouse_connection_connector_up", "gatehouse_auth_refusals_total", "gatehouse_journal_fsync_seconds_bucket"]) {
      expect(named, metric).toContain(metric);
    }
  });
});

describe("session log lines", () => {
  it("a session cut by its connector going away ends as connector_lost, counted and logged", async () => {
    const c = client();
    await c.connect();
    await c.query("select 1");
    const failed = new Promise<PgError>((resolve) => c.once("error", resolve));
    await connector.stop();
    expect((await failed).code).toBe("08006");
    await expect.poll(async () => valueOf(await metrics(), "gatehouse_sessions_ended_total", { protocol: "postgres", end_reason: "connector_lost" }), { timeout: 5_000 }).toBe(1);
    const samples = await metrics();
    expect(valueOf(samples, "gatehouse_connector_links", { connector: "dc1", state: "live" })).toBe(0);
    expect(valueOf(samples, "gatehouse_connection_connector_up", { connection: "pg", protocol: "postgres", connector: "dc1" })).toBe(0);
    const ended = logs.find((l) => l.msg === "session ended" && l.endReason === "connector_lost");
    expect(ended).toMatchObject({ level: 40, identity: "agent", connection: "pg", protocol: "postgres" });
  });

  it("every line that names a session also names its identity and connection, refusals and failures included", async () => {
    expect(await refusedWith({ database: "far" })).toBe("08006"); // its connector is not connected
    expect(await refusedWith({ user: "outsider", password: outsiderKey })).toBe("28000"); // not allowed on pg
    const sessionLines = logs.filter((l) => l.sessionId !== undefined);
    for (const line of sessionLines) {
      expect(line, JSON.stringify(line)).toMatchObject({ identity: expect.any(String), connection: expect.any(String), protocol: "postgres" });
    }
    const messages = new Set(sessionLines.map((l) => l.msg));
    for (const msg of ["session started", "session ended", "attempt refused", "session refused"]) expect(messages, msg).toContain(msg);
    expect(sessionLines.find((l) => l.msg === "session refused" && l.identity === "outsider")).toMatchObject({ connection: "pg", failure: { code: "denied" } });
    expect(sessionLines.find((l) => l.msg === "session refused" && l.connection === "far")).toMatchObject({ identity: "agent", failure: { code: "connector_unavailable" } });
    expect(sessionLines.find((l) => l.msg === "attempt refused")).toMatchObject({ identity: "agent", connection: "pg", reason: "wrong_key" });
    const started = sessionLines.find((l) => l.msg === "session started")!;
    expect(started).toMatchObject({ connector: "dc1", identity: "agent", connection: "pg" });
    // The same session's end names the same id.
    expect(sessionLines.some((l) => l.msg === "session ended" && l.sessionId === started.sessionId)).toBe(true);
  });
});
