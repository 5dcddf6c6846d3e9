// The raw tcp listener on port 0, inside a real gateway (store on the local Postgres): a client
// whose connector is not connected is cut off, and its session is recorded — the connect refusal,
// then closed with the broker's failure code.
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { validateConfig } from "../src/config/load.js";
import { startGateway, type Gateway } from "../src/gateway.js";
import { createLogger } from "../src/logger.js";

const ADMIN_URL = process.env.GATEHOUSE_TEST_STORE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
const name = `gatehouse_tcp_${randomBytes(5).toString("hex")}`;
let gateway: Gateway;
let dir: string;

async function adminQuery(sql: string): Promise<void> {
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  try {
    await admin.query(sql);
  } finally {
    await admin.end();
  }
}

beforeAll(async () => {
  await adminQuery(`create database ${name}`);
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  dir = mkdtempSync(join(tmpdir(), "gatehouse-tcp-listener-"));
  gateway = await startGateway(
    validateConfig({
      dataDir: join(dir, "data"),
      store: { url: url.toString(), maxConnections: 2 },
      listen: { api: "127.0.0.1:0" },
      connectors: [{ name: "dc1", tokenSha256: "a".repeat(64) }],
      connections: [{ name: "raw", protocol: "tcp", connector: "dc1", listen: "127.0.0.1:0", target: { host: "127.0.0.1", port: 9 } }],
    }),
    { logger: createLogger("fatal") },
  );
});

afterAll(async () => {
  await gateway?.close().catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
  await adminQuery(`drop database if exists ${name} with (force)`);
});

describe("TcpListener", () => {
  it("listens on the port it was given (0: one of the system's), and reports it", () => {
    expect(gateway.tcpListeners.get("raw")?.port).toBeGreaterThan(0);
  });

  it("no connector connected: the client is cut off, the session recorded as anonymous with its address and the refusal", async () => {
    const socket = connect(gateway.tcpListeners.get("raw")!.port, "127.0.0.1");
    socket.on("error", () => undefined);
    socket.write("hello");
    await new Promise((resolve) => socket.on("close", resolve));

    const deadline = Date.now() + 10_000;
    let found;
    for (;;) {
      const ended = (await gateway.store.sessions.list({ limit: 10 })).filter((s) => s.connection === "raw" && s.endedUs !== null);
      if (ended.length > 0) {
        found = await gateway.store.sessions.get(ended[0]!.id);
        if (found && found.events.length >= found.session.eventCount) break;
      }
      if (Date.now() > deadline) throw new Error("no ended session for connection raw");
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(found.session).toMatchObject({ protocol: "tcp", identity: { name: "anonymous", method: "none" }, clientAddress: "127.0.0.1", endReason: "connector_unavailable" });
    expect(found.events.map((e) => e.kind)).toEqual(["connect"]);
    expect(found.events[0]).toMatchObject({ outcome: "error", details: { code: "connector_unavailable" } });
  });
});
