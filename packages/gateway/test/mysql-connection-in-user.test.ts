import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import mysql from "mysql2/promise";
import { type Connector } from "@gatehouse/connector";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { validateConfig } from "../src/config/load.js";
import { startGateway, type Gateway } from "../src/gateway.js";
import { AccessKeys } from "../src/identity/access-keys.js";
import { createLogger } from "../src/logger.js";
import { jsonLogSink } from "./support/json-logs.js";
import { startTestConnector } from "./support/test-connector.js";
import { createStoreDatabase, type StoreDatabase } from "./support/store-database.js";
import { recordedSession as recordedSessionIn } from "./support/recorded-session.js";

// MySQL clients that log in without a database (mariadb-dump, mysqlslap, a DBA who USEs later) name
// the connection in the user, IDENTITY#CONNECTION. End to end in one process: the gateway (its store
// a fresh database on the local Postgres), a real connector, the real MariaDB on 127.0.0.1:3306
// (root, no password), and mysql2 and mariadb-dump as the clients.

const MARIADB = { host: "127.0.0.1", port: 3306 };
const CONNECTOR_TOKEN = "mysql-connection-in-user-test-token";
const SCHEMA = `gh_user_${randomBytes(4).toString("hex")}`;

let dir: string;
let store: StoreDatabase | undefined;
let gateway: Gateway;
let connector: Connector;
let agentKey: string;
const logs: Array<Record<string, unknown>> = [];

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
  store = await createStoreDatabase("gatehouse_mysql_user");
  await mariadbRoot(`CREATE DATABASE ${SCHEMA}; CREATE TABLE ${SCHEMA}.fruit (id INT PRIMARY KEY, name VARCHAR(20)); INSERT INTO ${SCHEMA}.fruit VALUES (1, 'apple'), (2, 'quince')`);
  const sink = jsonLogSink(logs);
  gateway = await startGateway(
    validateConfig({
      dataDir: join(dir, "data"),
      store: { url: store.url(), maxConnections: 2 },
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
  connector = await startTestConnector(gateway.apiUrl, CONNECTOR_TOKEN, `${MARIADB.host}:${MARIADB.port}`, logs);
}, 60_000);

afterAll(async () => {
  await connector?.stop();
  await gateway?.close({ graceMs: 0 });
  await mariadbRoot(`DROP DATABASE IF EXISTS ${SCHEMA}`).catch(() => undefined);
  await store?.drop();
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

const recordedSession = (program: string, timeoutMs?: number) => recordedSessionIn(gateway.store, program, timeoutMs);

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

  it("without `#` the database is still the connection; with neither, a gateway-only session: its first statement gets 1046 naming both ways, recorded", async () => {
    const { connection } = await connect("agent", "maria");
    expect(await databaseOf(connection)).toBe("mysql");
    await connection.end();

    const { connection: bare, program } = await connect("agent");
    await bare.ping();
    const error = await bare.query("SELECT 1").then(
      () => {
        throw new Error("a statement ran without a connection");
      },
      (e: Error & { errno?: number; sqlState?: string }) => e,
    );
    expect(error).toMatchObject({ errno: 1046, sqlState: "3D000" });
    expect(error.message).toBe("No database selected: name the connection: -D CONNECTION, or user IDENTITY#CONNECTION");
    await bare.end();
    const recorded = await recordedSession(program);
    expect(recorded).toMatchObject({ identity: { name: "agent" }, connection: "", connector: null, endReason: "client_closed" });
    expect(recorded.events.find((e) => e.kind === "query")).toMatchObject({ command: "SELECT 1", outcome: "error", details: { errno: 1046 } });
    expect(recorded.events.some((e) => e.kind === "ping" && e.outcome === "ok")).toBe(true);
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
