import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import mysql from "mysql2/promise";
import pg from "pg";
import pino from "pino";
import { parseConnectorSettings, startConnector, type Connector } from "@gatehouse/connector";
import type { SessionEvent, SessionRecord } from "@gatehouse/store";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { validateConfig } from "../src/config/load.js";
import { startGateway, type Gateway } from "../src/gateway.js";
import { AccessKeys } from "../src/identity/access-keys.js";
import { createLogger } from "../src/logger.js";

// MySQL clients that log in without a database (mariadb-dump, mysqlslap, a DBA who USEs later) name
// the connection in the user, IDENTITY#CONNECTION. End to end in one process: the gateway (its store
// a fresh database on the local Postgres), a real connector, the real MariaDB on 127.0.0.1:3306
// (root, no password), and mysql2 and mariadb-dump as the clients.

const ADMIN_URL = process.env.GATEHOUSE_TEST_STORE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
const MARIADB = { host: "127.0.0.1", port: 3306 };
const CONNECTOR_TOKEN = "mysql-connection-in-user-test-token";
const SCHEMA = `gh_user_${randomBytes(4).toString("hex")}`;

let dir: string;
let dropStore: () => Promise<void> = async () => undefined;
let gateway: Gateway;
let connector: Connector;
let agentKey: string;
const logs: Array<Record<string, unknown>> = [];

async function adminQuery(sql: string): Promise<void> {
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  try {
    await admin.query(sql);
  } finally {
    await admin.end();
  }
}

/** A statement run straight on MariaDB as root (the test's own setup, not through the gateway). */
async function mariadbRoot(sql: string): Promise<void> {
  const root = await mysql.createConnection({ ...MARIADB, user: "root", multipleStatements: true });
  try {
    await root.query(sql);
  } finally {
    await root.end();
  }
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "gatehouse-mysql-user-"));
  const name = `gatehouse_mysql_user_${randomBytes(5).toString("hex")}`;
  await adminQuery(`create database ${name}`);
  dropStore = () => adminQuery(`drop database if exists ${name} with (force)`);
  await mariadbRoot(`CREATE DATABASE ${SCHEMA}; CREATE TABLE ${SCHEMA}.fruit (id INT PRIMARY KEY, name VARCHAR(20)); INSERT INTO ${SCHEMA}.fruit VALUES (1, 'apple'), (2, 'quince')`);
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString("utf8").split("\n").filter(Boolean)) logs.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  gateway = await startGateway(
    validateConfig({
      dataDir: join(dir, "data"),
      store: { url: url.toString(), maxConnections: 2 },
      listen: { api: "127.0.0.1:0", mysql: "127.0.0.1:0" },
      connectors: [{ name: "dc1", tokenSha256: createHash("sha256").update(CONNECTOR_TOKEN).digest("hex") }],
      connections: [
        // No target.database: the session starts in none, as the mariadb client's own would.
        { name: "bare", protocol: "mysql", connector: "dc1", target: MARIADB, credential: { user: "root" }, allow: [{ identity: "agent" }] },
        { name: "maria", protocol: "mysql", connector: "dc1", target: { ...MARIADB, database: "mysql" }, credential: { user: "root" }, allow: [{ identity: "agent" }] },
      ],
    }),
    { logger: createLogger("debug", sink) },
  );
  agentKey = (await new AccessKeys(gateway.store, () => Date.now() * 1000).create("agent")).key;
  const settings = parseConnectorSettings(["--gateway", gateway.apiUrl.replace(/^http/, "ws"), "--name", "dc1", "--token", CONNECTOR_TOKEN, "--allow", `${MARIADB.host}:${MARIADB.port}`], {});
  connector = startConnector(settings, { logger: pino({ level: "silent" }) });
  const deadline = Date.now() + 10_000;
  while (!logs.some((l) => l.msg === "connector connected")) {
    if (Date.now() > deadline) throw new Error("the connector did not connect");
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}, 60_000);

afterAll(async () => {
  await connector?.stop();
  await gateway?.close({ graceMs: 0 });
  await mariadbRoot(`DROP DATABASE IF EXISTS ${SCHEMA}`).catch(() => undefined);
  await dropStore();
  rmSync(dir, { recursive: true, force: true });
});

let attempt = 0;

/** A mysql2 connection through the gateway, no database unless given; `program_name` tells the sessions apart. */
async function connect(user: string, database?: string) {
  const program = `mysql-user-test-${++attempt}`;
  const connection = await mysql.createConnection({
    ...gateway.mysql!,
    user,
    password: agentKey,
    ...(database !== undefined ? { database } : {}),
    connectAttributes: { program_name: program },
    connectTimeout: 10_000,
  });
  connection.on("error", () => undefined);
  return { connection, program };
}

type Recorded = SessionRecord & { events: SessionEvent[] };

async function recordedSession(program: string, timeoutMs = 10_000): Promise<Recorded> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = (await gateway.store.sessions.list({ limit: 1000 })).find((s) => s.clientApplication === program && s.endedUs !== null);
    if (found) {
      const full = await gateway.store.sessions.get(found.id);
      if (full && full.events.length >= full.session.eventCount && full.events.length > 0) return { ...full.session, events: full.events };
    }
    if (Date.now() > deadline) throw new Error(`no ended session for ${program}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function databaseOf(connection: mysql.Connection): Promise<unknown> {
  const [rows] = await connection.query<mysql.RowDataPacket[]>("SELECT DATABASE() AS db");
  return rows[0]!.db;
}

describe("mysql: the connection named in the user (IDENTITY#CONNECTION)", () => {
  it("no database: the session starts in none (or target.database); USE works; recorded under the identity and the connection", async () => {
    const { connection, program } = await connect("agent#bare");
    expect(await databaseOf(connection)).toBeNull();
    await connection.query(`USE ${SCHEMA}`);
    const [rows] = await connection.query("SELECT name FROM fruit ORDER BY id");
    expect(rows).toEqual([{ name: "apple" }, { name: "quince" }]);
    await connection.end();
    const session = await recordedSession(program);
    expect(session).toMatchObject({ identity: { name: "agent", method: "access_key" }, connection: "bare", protocol: "mysql" });
    expect(session.events.some((e) => e.command === "SELECT name FROM fruit ORDER BY id" && e.outcome === "ok")).toBe(true);

    const { connection: withDefault } = await connect("agent#maria");
    expect(await databaseOf(withDefault)).toBe("mysql");
    await withDefault.end();
  });

  it("with a database: it is the resource's initial database, over target.database", async () => {
    const { connection, program } = await connect("agent#maria", SCHEMA);
    expect(await databaseOf(connection)).toBe(SCHEMA);
    await connection.end();
    const session = await recordedSession(program);
    expect(session).toMatchObject({ identity: { name: "agent" }, connection: "maria" });
    expect(session.events.find((e) => e.kind === "connect")).toMatchObject({ outcome: "ok", details: { database: SCHEMA } });
  });

  it("without `#` the database is still the connection; with neither, a clear ERR 1049 naming both ways, recorded", async () => {
    const { connection } = await connect("agent", "maria");
    expect(await databaseOf(connection)).toBe("mysql");
    await connection.end();

    const program = `mysql-user-test-${attempt + 1}`;
    const error = await connect("agent").then(
      async ({ connection: accepted }) => {
        await accepted.end();
        throw new Error("a login without a connection was accepted");
      },
      (e: Error & { errno?: number; sqlState?: string }) => e,
    );
    expect(error).toMatchObject({ errno: 1049, sqlState: "42000" });
    expect(error.message).toBe("name the connection: -D CONNECTION, or user IDENTITY#CONNECTION");
    const refused = await recordedSession(program);
    expect(refused).toMatchObject({ identity: { name: "agent" }, connection: "", endReason: "unknown_connection" });
    expect(refused.events.find((e) => e.kind === "denied")).toMatchObject({ details: { reason: "unknown_connection" } });
  });

  it("an unknown connection after `#` is refused 1049 under the identity before the `#`", async () => {
    const program = `mysql-user-test-${attempt + 1}`;
    await expect(connect("agent#no_such_connection")).rejects.toMatchObject({ errno: 1049, sqlState: "42000" });
    expect(await recordedSession(program)).toMatchObject({ identity: { name: "agent" }, connection: "no_such_connection", endReason: "unknown_connection" });
  });

  it("a real mariadb-slap -u 'agent#bare': concurrent clients, none naming a database, run its queries", async () => {
    const slap = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      const args = ["--no-defaults", "-h", "127.0.0.1", "-P", String(gateway.mysql!.port), "-u", "agent#bare", `-p${agentKey}`, "--skip-ssl", `--create-schema=${SCHEMA}`, "--query=SELECT COUNT(*) FROM fruit", "--concurrency=2", "--iterations=1"];
      execFile("mariadb-slap", args, { timeout: 30_000 }, (error, stdout, stderr) => resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr }));
    });
    expect(slap.stderr).toBe("");
    expect(slap).toMatchObject({ code: 0 });
    expect(slap.stdout).toMatch(/Number of clients running queries: 2/);
  });

  it("a real mariadb-dump -u 'agent#bare' DBNAME: the dump holds the table and its rows", async () => {
    const dump = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      const args = ["--no-defaults", "-h", "127.0.0.1", "-P", String(gateway.mysql!.port), "-u", "agent#bare", `-p${agentKey}`, "--skip-ssl", SCHEMA];
      execFile("mariadb-dump", args, { timeout: 30_000 }, (error, stdout, stderr) => resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr }));
    });
    expect(dump.stderr).toBe("");
    expect(dump.code).toBe(0);
    expect(dump.stdout).toMatch(/CREATE TABLE `fruit`/);
    expect(dump.stdout).toMatch(/INSERT INTO `fruit` VALUES\s*\(1,'apple'\),\s*\(2,'quince'\);/);
  });
});
