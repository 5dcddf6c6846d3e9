import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { validateConfig } from "../src/config/load.js";
import { startGateway, type Gateway } from "../src/gateway.js";
import { AccessKeys } from "../src/identity/access-keys.js";
import { createLogger } from "../src/logger.js";
import { createStoreDatabase, type StoreDatabase } from "./support/store-database.js";

// postgres.tlsAuth: scram — over TLS the gateway offers SCRAM-SHA-256-PLUS (tls-server-end-point,
// bound to its certificate) beside SCRAM-SHA-256, so psql with channel_binding=require connects.
// No connector runs: an attempt that got through authentication ends "connector unavailable"
// (08006), one that did not ends 28P01 or in libpq's own channel-binding refusal.

let gateway: Gateway;
let database: StoreDatabase;
let dir: string;
let key: string;

const raw = (tlsAuth: "password" | "scram") => ({
  dataDir: join(dir, "data"),
  listen: { api: "127.0.0.1:0", postgres: "127.0.0.1:0" },
  store: { url: database.url() },
  postgres: { tlsAuth },
  connectors: [{ name: "dc1", tokenSha256: "a".repeat(64) }],
  connections: [{ name: "app", protocol: "postgres", connector: "dc1", target: { host: "127.0.0.1", port: 5432 }, allow: [{ identity: "agent" }] }],
});

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "gatehouse-channel-binding-"));
  database = await createStoreDatabase();
  const quiet = new Writable({ write: (_chunk, _encoding, done) => done() });
  gateway = await startGateway(validateConfig(raw("scram")), { logger: createLogger("warn", quiet) });
  ({ key } = await new AccessKeys(gateway.store, () => Date.now() * 1000).create("agent"));
});

afterAll(async () => {
  await gateway?.close({ graceMs: 0 });
  await database?.drop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function psql(conninfo: string): Promise<{ code: number | null; stderr: string }> {
  const { host, port } = gateway.postgres!;
  return new Promise((resolve) => {
    const child = spawn("psql", ["-X", `host=${host} port=${port} user=agent dbname=app ${conninfo}`, "-c", "select 1"], {
      stdio: ["ignore", "ignore", "pipe"],
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: "/nonexistent", PGCONNECT_TIMEOUT: "10" },
    });
    let stderr = "";
    child.stderr.setEncoding("utf8").on("data", (t: string) => (stderr += t));
    child.once("close", (code) => resolve({ code, stderr }));
  });
}

async function pgError(options: { enableChannelBinding: boolean; password?: string }): Promise<{ code?: string; message: string }> {
  const client = new pg.Client({
    host: gateway.postgres!.host,
    port: gateway.postgres!.port,
    user: "agent",
    database: "app",
    password: options.password ?? key,
    ssl: { rejectUnauthorized: false },
    enableChannelBinding: options.enableChannelBinding,
  } as pg.ClientConfig);
  client.on("error", () => undefined);
  try {
    await client.connect();
    return { message: "connected" };
  } catch (error) {
    return error as { code?: string; message: string };
  } finally {
    await client.end().catch(() => undefined);
  }
}

describe("postgres.tlsAuth: scram", () => {
  it("psql with channel_binding=require and sslmode=require gets through authentication", async () => {
    const { stderr } = await psql(`sslmode=require channel_binding=require password=${key}`);
    expect(stderr).toContain("connector unavailable");
  });

  it("psql with a wrong key is refused 28P01, with channel binding or without TLS", async () => {
    expect((await psql("sslmode=require channel_binding=require password=wrong")).stderr).toContain('password authentication failed for user "agent"');
    expect((await psql(`sslmode=disable password=${key}`)).stderr).toContain("connector unavailable");
  });

  it("node-postgres picks SCRAM-SHA-256-PLUS when it may, and SCRAM-SHA-256 when it may not", async () => {
    expect(await pgError({ enableChannelBinding: true })).toMatchObject({ code: "08006" });
    expect(await pgError({ enableChannelBinding: false })).toMatchObject({ code: "08006" });
    expect(await pgError({ enableChannelBinding: true, password: "wrong" })).toMatchObject({ code: "28P01" });
  });

  it("with postgres.tlsAuth: password, channel_binding=require cannot connect (the key goes in cleartext inside TLS)", async () => {
    gateway.reload(validateConfig(raw("password")));
    try {
      const { stderr } = await psql(`sslmode=require channel_binding=require password=${key}`);
      expect(stderr).toMatch(/channel binding required/);
      expect((await psql(`sslmode=require password=${key}`)).stderr).toContain("connector unavailable");
    } finally {
      gateway.reload(validateConfig(raw("scram")));
    }
  });
});
