import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import mysql from "mysql2/promise";
import pg from "pg";
import { type Connector } from "@gatehouse/connector";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { validateConfig } from "../src/config/load.js";
import { startGateway, type Gateway } from "../src/gateway.js";
import { AccessKeys } from "../src/identity/access-keys.js";
import { createLogger } from "../src/logger.js";
import { AUDIENCE, startTestIssuer, type TestIssuer } from "./support/oidc-issuer.js";
import { jsonLogSink } from "./support/json-logs.js";
import { startTestConnector } from "./support/test-connector.js";
import { createStoreDatabase, type StoreDatabase } from "./support/store-database.js";
import { recordedSession as recordedSessionIn } from "./support/recorded-session.js";

// The MySQL listener end to end in one process: the gateway (its store a fresh database on the
// local Postgres), a real connector with its MySQL dialer, the real MariaDB on 127.0.0.1:3306
// (root, no password) as the resource, and mysql2 as the client, all on port 0.

const MARIADB = { host: "127.0.0.1", port: 3306 };
const CONNECTOR_TOKEN = "mysql-listener-test-token";
const sha256 = async (text: string) => (await import("node:crypto")).createHash("sha256").update(text).digest("hex");

let dir: string;
let store: StoreDatabase | undefined;
let gateway: Gateway;
let connector: Connector;
let issuer: TestIssuer;
let agentKey: string;
let otherKey: string;
let outsiderKey: string;
const logs: Array<Record<string, unknown>> = [];
let rawConfig: Record<string, unknown>;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "gatehouse-mysql-listener-"));
  store = await createStoreDatabase("gatehouse_mysql");
  issuer = await startTestIssuer([{ id: "agent", secret: "s1" }]);
  const sink = jsonLogSink(logs);
  rawConfig = {
      dataDir: join(dir, "data"),
      store: { url: store.url(), maxConnections: 2 },
      listen: { api: "127.0.0.1:0", mysql: "127.0.0.1:0", postgres: "127.0.0.1:0" },
      identity: { oidc: { issuer: issuer.issuer, audience: AUDIENCE, ca: issuer.caFile } },
      connectors: [{ name: "dc1", tokenSha256: await sha256(CONNECTOR_TOKEN) }],
      connections: [
        {
          name: "maria",
          protocol: "mysql",
          connector: "dc1",
          target: { ...MARIADB, database: "mysql" },
          credential: { user: "root" },
          allow: [{ identity: "agent" }, { identity: "other" }],
        },
        { name: "pg", protocol: "postgres", connector: "dc1", target: { host: "127.0.0.1", port: 5432, database: "postgres" }, credential: { user: "postgres" }, allow: [{ identity: "agent" }] },
        { name: "closed", protocol: "mysql", connector: "dc1", target: MARIADB, credential: { user: "root" }, allow: [{ identity: "nobody" }] },
      ],
    };
  gateway = await startGateway(
    validateConfig(rawConfig),
    { logger: createLogger("debug", sink) },
  );
  const keys = new AccessKeys(gateway.store, () => Date.now() * 1000);
  agentKey = (await keys.create("agent")).key;
  otherKey = (await keys.create("other")).key;
  outsiderKey = (await keys.create("outsider")).key;
  connector = await startTestConnector(gateway.apiUrl, CONNECTOR_TOKEN, `${MARIADB.host}:${MARIADB.port},127.0.0.1:5432`, logs);
}, 60_000);

afterAll(async () => {
  await connector?.stop();
  await gateway?.close({ graceMs: 0 });
  await issuer?.close();
  await store?.drop();
  rmSync(dir, { recursive: true, force: true });
});

let attempt = 0;

/** A mysql2 connection through the gateway; `program_name` tells the sessions apart in the record. */
async function connect(options: { user?: string; password?: string; database?: string; tls?: boolean } = {}) {
  const program = `mysql-listener-test-${++attempt}`;
  const connection = await mysql.createConnection({
    ...gateway.mysql!,
    user: options.user ?? "agent",
    password: options.password ?? agentKey,
    database: options.database ?? "maria",
    connectAttributes: { program_name: program },
    ...(options.tls ? { ssl: { rejectUnauthorized: false } } : {}),
    connectTimeout: 10_000,
  });
  connection.on("error", () => undefined);
  return { connection, program };
}

interface MysqlError extends Error {
  errno?: number;
  sqlState?: string;
}

async function refused(options: Parameters<typeof connect>[0]): Promise<MysqlError & { program: string }> {
  const program = `mysql-listener-test-${attempt + 1}`;
  try {
    const { connection } = await connect(options);
    await connection.end();
  } catch (error) {
    return Object.assign(error as MysqlError, { program });
  }
  throw new Error("the connection was accepted");
}

const recordedSession = (program: string, timeoutMs?: number) => recordedSessionIn(gateway.store, program, timeoutMs);

describe("mysql listener", () => {
  it("plaintext on loopback: mysql_native_password with an access key, rows back, each statement recorded with its outcome", async () => {
    const { connection, program } = await connect();
    const [rows] = await connection.query("SELECT 1 + 1 AS two");
    expect(rows).toEqual([{ two: 2 }]);
    await expect(connection.query("SELECT * FROM no_such_table_here")).rejects.toMatchObject({ errno: 1146 });
    const [prepared] = await connection.execute("SELECT ? AS echoed", ["hello"]);
    expect(prepared).toEqual([{ echoed: "hello" }]);
    await connection.end();

    const session = await recordedSession(program);
    expect(session).toMatchObject({ identity: { name: "agent", method: "access_key" }, connection: "maria", protocol: "mysql" });
    const query = session.events.find((e) => e.command === "SELECT 1 + 1 AS two");
    expect(query).toMatchObject({ kind: "query", outcome: "ok", details: { rows: 1 } });
    const failed = session.events.find((e) => e.command === "SELECT * FROM no_such_table_here");
    expect(failed).toMatchObject({ kind: "query", outcome: "error", details: { errno: 1146, sqlstate: "42S02" } });
    const executed = session.events.find((e) => e.kind === "execute");
    expect(executed).toMatchObject({ command: "SELECT ? AS echoed", params: ["hello"], outcome: "ok" });
    expect(session.events.map((e) => e.kind)).toContain("connect");
    expect(session.events.at(-1)?.kind).toBe("disconnect");
  });

  it("the mariadb command-line client, in plaintext (native) and over TLS (cleartext plugin)", async () => {
    const { execFile } = await import("node:child_process");
    const run = (args: string[]) =>
      new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
        execFile("mariadb", ["--no-defaults", "-h", "127.0.0.1", "-P", String(gateway.mysql!.port), "-u", "agent", `-p${agentKey}`, "-N", "-B", ...args], { timeout: 20_000 }, (error, stdout, stderr) =>
          resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
        );
      });
    const plain = await run(["--skip-ssl", "maria", "-e", "SELECT 40 + 2"]);
    expect(plain).toMatchObject({ code: 0, stdout: "42\n" });
    const tls = await run(["--ssl", "--ssl-verify-server-cert=0", "maria", "-e", "SELECT 'over tls'"]);
    expect(tls).toMatchObject({ code: 0, stdout: "over tls\n" });
    const wrong = await run(["--skip-ssl", "no_such_connection", "-e", "SELECT 1"]);
    expect(wrong.stderr).toMatch(/ERROR 1049 \(42000\)/);
  });

  it("over TLS: the access key in cleartext inside TLS; the greeting then shows the resource's version", async () => {
    const { connection, program } = await connect({ tls: true });
    const [rows] = await connection.query<mysql.RowDataPacket[]>("SELECT @@version AS version, CONNECTION_ID() AS id");
    expect(String(rows[0]!.version)).toMatch(/MariaDB/);
    // The client holds the gateway's id for the session, not the resource's thread id.
    expect(connection.threadId).not.toBe(rows[0]!.id);
    await connection.end();
    const session = await recordedSession(program);
    expect(session.identity).toMatchObject({ name: "agent", method: "access_key" });
    expect(session.events.some((e) => e.kind === "query" && e.outcome === "ok")).toBe(true);
    // The resource reached shows its version in the next greeting, though "closed" was never reached
    // (clients choose their MariaDB or MySQL paths by it); capabilities stay conservative meanwhile.
    const { connection: again } = await connect();
    // (MariaDB's greeting adds the "5.5.5-" prefix that old MySQL clients need; @@version has none.)
    expect((again as unknown as { connection: { _handshakePacket: { serverVersion: string } } }).connection._handshakePacket.serverVersion).toMatch(new RegExp(`^(5\\.5\\.5-)?${String(rows[0]!.version).replace(/[.+]/g, "\\$&")}$`));
    await again.end();
  });

  it("an OIDC access token as the password over TLS; without TLS it is refused 1045 with a hint", async () => {
    const token = await issuer.token("agent");
    const { connection, program } = await connect({ tls: true, password: token });
    const [rows] = await connection.query("SELECT 7 AS seven");
    expect(rows).toEqual([{ seven: 7 }]);
    await connection.end();
    expect((await recordedSession(program)).identity).toMatchObject({ name: "agent", method: "oidc" });

    const plain = await refused({ password: token });
    expect(plain).toMatchObject({ errno: 1045, sqlState: "28000" });
    expect(plain.message).toMatch(/use TLS/);
  });

  it("refusals, each recorded: bad key 1045, unknown connection 1049, not allowed 1044", async () => {
    const wrong = await refused({ password: "ghk_not-the-key" });
    expect(wrong).toMatchObject({ errno: 1045, sqlState: "28000" });
    const wrongTls = await refused({ password: "ghk_not-the-key", tls: true });
    expect(wrongTls).toMatchObject({ errno: 1045, sqlState: "28000" });
    const unknown = await refused({ database: "no_such_connection" });
    expect(unknown).toMatchObject({ errno: 1049, sqlState: "42000" });
    const denied = await refused({ user: "outsider", password: outsiderKey, database: "closed" });
    expect(denied).toMatchObject({ errno: 1044, sqlState: "42000" });

    const refusal = async (program: string) => {
      const session = await recordedSession(program);
      return { session, event: session.events.find((e) => e.kind === "auth_failed" || e.kind === "denied") };
    };
    expect(await refusal(wrong.program)).toMatchObject({ session: { identity: { name: "agent" }, endReason: "auth_failed" }, event: { kind: "auth_failed", details: { reason: "wrong_key", errno: 1045 } } });
    expect(await refusal(wrongTls.program)).toMatchObject({ event: { kind: "auth_failed", details: { reason: "wrong_key", method: "access_key" } } });
    expect(await refusal(unknown.program)).toMatchObject({ session: { connection: "no_such_connection", endReason: "unknown_connection" }, event: { kind: "denied" } });
    expect(await refusal(denied.program)).toMatchObject({ session: { identity: { name: "outsider" }, connection: "closed" }, event: { kind: "denied", outcome: "error" } });
  });

  it("a client that must use TLS and does not gets ERR 3159; an identity over its session limit gets 1040; both recorded", async () => {
    gateway.reload(validateConfig({ ...rawConfig, mysql: { requireTls: "always" } }));
    try {
      const plain = await refused({});
      expect(plain).toMatchObject({ errno: 3159, sqlState: "HY000" });
      expect(plain.message).toMatch(/TLS is required/);
      expect((await recordedSession(plain.program)).events.find((e) => e.kind === "auth_failed")).toMatchObject({ details: { reason: "tls_required" } });
      const { connection } = await connect({ tls: true });
      await connection.end();
    } finally {
      gateway.reload(validateConfig(rawConfig));
    }
    gateway.reload(validateConfig({ ...rawConfig, limits: { maxSessionsPerIdentity: 1 } }));
    // Earlier sessions of "agent" end just after their client's COM_QUIT: wait for their slots.
    let holding: mysql.Connection | undefined;
    for (let tries = 0; !holding; tries++) {
      holding = await connect().then((c) => c.connection, (error: MysqlError) => (error.errno === 1040 && tries < 40 ? undefined : Promise.reject(error)));
      if (!holding) await new Promise((resolve) => setTimeout(resolve, 50));
    }
    try {
      const over = await refused({});
      expect(over).toMatchObject({ errno: 1040, sqlState: "08004" });
      expect((await recordedSession(over.program)).events.find((e) => e.kind === "denied")).toMatchObject({ details: { code: "too_many_sessions" } });
      // The limit counts across protocols: the identity's MySQL session holds its one slot for Postgres too.
      const pgClient = new pg.Client({ ...gateway.postgres!, user: "agent", password: agentKey, database: "pg", ssl: false });
      pgClient.on("error", () => undefined);
      await expect(pgClient.connect()).rejects.toMatchObject({ code: "53300" });
    } finally {
      await holding.end();
      gateway.reload(validateConfig(rawConfig));
    }
  });

  it("KILL CONNECTION <gateway id> ends that session of the same identity at the gateway", async () => {
    const { connection: victim, program } = await connect();
    const closed = new Promise<void>((resolve) => (victim as unknown as { connection: { stream: NodeJS.EventEmitter } }).connection.stream.once("close", () => resolve()));
    const { connection: killer } = await connect();
    await killer.query(`KILL ${victim.threadId}`);
    await closed;
    await killer.end();
    const session = await recordedSession(program);
    expect(session.events.at(-1)).toMatchObject({ kind: "disconnect" });
  });

  it("over the handshake limit: ERR 1040 in place of the greeting", async () => {
    gateway.reload(validateConfig({ ...rawConfig, limits: { maxHandshakes: 1 } }));
    const { createConnection } = await import("node:net");
    const holder = createConnection(gateway.mysql!);
    holder.on("error", () => undefined);
    // The greeting arrived: the holder is in its handshake (and stays there).
    await new Promise((resolve) => holder.once("data", resolve));
    try {
      const over = await refused({});
      expect(over).toMatchObject({ errno: 1040, sqlState: "08004" });
    } finally {
      holder.destroy();
      gateway.reload(validateConfig(rawConfig));
    }
  });

  it("a key made before MySQL support (no native verifier) is refused in plaintext with a clear reason, and works over TLS", async () => {
    const legacy = new AccessKeys(gateway.store, () => Date.now() * 1000);
    const made = await legacy.create("legacy");
    // What such a key looks like in the store: the native verifier is what it lacks.
    const [record] = await gateway.store.accessKeys.list({ identity: "legacy" });
    await gateway.store.accessKeys.revoke(made.id, Date.now() * 1000);
    const { mysqlNative: _dropped, ...older } = record!.verifiers as Record<string, string>;
    await gateway.store.accessKeys.create({ id: "key_legacy0001", identity: "legacy", verifiers: older, createdUs: Date.now() * 1000, expiresUs: null });
    const config = validateConfig({ ...rawConfig, connections: (rawConfig.connections as Array<Record<string, unknown>>).map((c) => (c.name === "maria" ? { ...c, allow: [...(c.allow as unknown[]), { identity: "legacy" }] } : c)) });
    gateway.reload(config);
    try {
      const plain = await refused({ user: "legacy", password: made.key });
      expect(plain).toMatchObject({ errno: 1045 });
      expect((await recordedSession(plain.program)).events.find((e) => e.kind === "auth_failed")).toMatchObject({
        details: { reason: "no_key", message: expect.stringMatching(/no mysql_native_password verifier/) },
      });
      const { connection } = await connect({ user: "legacy", password: made.key, tls: true });
      const [rows] = await connection.query("SELECT 3 AS three");
      expect(rows).toEqual([{ three: 3 }]);
      await connection.end();
    } finally {
      gateway.reload(validateConfig(rawConfig));
    }
  });

  it("a malformed command packet ends that session with ERR 1156, recorded as a protocol violation; the gateway serves on", async () => {
    const { connection, program } = await connect();
    const stream = (connection as unknown as { connection: { stream: NodeJS.WritableStream } }).connection.stream;
    const closed = new Promise<void>((resolve) => (connection as unknown as { connection: { stream: NodeJS.EventEmitter } }).connection.stream.once("close", () => resolve()));
    const replies: Buffer[] = [];
    (connection as unknown as { connection: { stream: NodeJS.EventEmitter } }).connection.stream.on("data", (chunk: Buffer) => replies.push(chunk));
    // A COM_PING with sequence id 5: a command must start at 0.
    stream.write(Buffer.from([0x01, 0x00, 0x00, 0x05, 0x0e]));
    await closed;
    const err = Buffer.concat(replies);
    expect(err[4]).toBe(0xff);
    expect(err.readUInt16LE(5)).toBe(1156);
    expect((await recordedSession(program)).endReason).toBe("protocol_violation");
    const { connection: next } = await connect();
    await next.query("SELECT 1");
    await next.end();
  });

  it("KILL QUERY <gateway id> from a second connection of the same identity cancels SELECT SLEEP(30) promptly; another identity gets 1095", async () => {
    const { connection: sleeper, program } = await connect();
    const started = Date.now();
    const sleeping = sleeper.query("SELECT SLEEP(30) AS slept").then(
      () => "done",
      (error: MysqlError) => `error ${error.errno}`,
    );
    await new Promise((resolve) => setTimeout(resolve, 500));

    const { connection: stranger } = await connect({ user: "other", password: otherKey });
    await expect(stranger.query(`KILL QUERY ${sleeper.threadId}`)).rejects.toMatchObject({ errno: 1095 });
    await stranger.end();

    const { connection: killer, program: killerProgram } = await connect();
    await expect(killer.query("KILL QUERY 4000000000")).rejects.toMatchObject({ errno: 1094 });
    await killer.query(`KILL QUERY ${sleeper.threadId}`);
    await sleeping;
    expect(Date.now() - started).toBeLessThan(10_000);
    // The session is still usable after its statement was killed.
    const [rows] = await sleeper.query("SELECT 1 AS still");
    expect(rows).toEqual([{ still: 1 }]);
    await killer.end();
    await sleeper.end();

    const killed = await recordedSession(program);
    expect(killed.events.find((e) => e.kind === "kill")).toMatchObject({ outcome: "ok" });
    const killerSession = await recordedSession(killerProgram);
    expect(killerSession.events.find((e) => e.command === `KILL QUERY ${sleeper.threadId}`)).toMatchObject({ kind: "kill", outcome: "ok", details: { scope: "query" } });
    expect(killerSession.events.find((e) => e.command === "KILL QUERY 4000000000")).toMatchObject({ kind: "kill", outcome: "error", details: { errno: 1094 } });
  }, 40_000);

  it("a login naming no connection (the mariadb client's Ctrl-C connection) can KILL QUERY its identity's SELECT SLEEP(30); another identity's gets 1095; SELECT 1 gets 1046", async () => {
    const { connection: sleeper, program } = await connect();
    const started = Date.now();
    const sleeping = sleeper.query("SELECT SLEEP(30) AS slept").then(
      () => "done",
      (error: MysqlError) => `error ${error.errno}`,
    );
    await new Promise((resolve) => setTimeout(resolve, 500));

    const strangerProgram = `mysql-listener-test-${attempt + 1}`;
    const stranger = await mysql.createConnection({ ...gateway.mysql!, user: "other", password: otherKey, connectAttributes: { program_name: strangerProgram }, connectTimeout: 10_000 });
    stranger.on("error", () => undefined);
    await expect(stranger.query(`KILL QUERY ${sleeper.threadId}`)).rejects.toMatchObject({ errno: 1095 });
    await stranger.end();

    const killerProgram = `mysql-listener-test-${++attempt}-killer`;
    const killer = await mysql.createConnection({ ...gateway.mysql!, user: "agent", password: agentKey, connectAttributes: { program_name: killerProgram }, connectTimeout: 10_000 });
    killer.on("error", () => undefined);
    await expect(killer.query("SELECT 1")).rejects.toMatchObject({ errno: 1046, sqlState: "3D000" });
    await expect(killer.query("KILL QUERY 4000000000")).rejects.toMatchObject({ errno: 1094 });
    await killer.query(`KILL QUERY ${sleeper.threadId}`);
    expect(await sleeping).toBe("error 1317");
    expect(Date.now() - started).toBeLessThan(10_000);
    await killer.end();
    await sleeper.end();

    expect((await recordedSession(program)).events.find((e) => e.kind === "kill")).toMatchObject({ outcome: "ok" });
    const killerSession = await recordedSession(killerProgram);
    expect(killerSession).toMatchObject({ identity: { name: "agent" }, connection: "", connector: null });
    expect(killerSession.events.find((e) => e.command === `KILL QUERY ${sleeper.threadId}`)).toMatchObject({ kind: "kill", outcome: "ok", details: { scope: "query" } });
    expect(killerSession.events.find((e) => e.command === "KILL QUERY 4000000000")).toMatchObject({ kind: "kill", outcome: "error", details: { errno: 1094 } });
    expect((await recordedSession(strangerProgram)).events.find((e) => e.kind === "kill")).toMatchObject({ outcome: "error", details: { errno: 1095 } });
  }, 40_000);

  it("a malformed packet on a login naming no connection ends it with ERR 1156, recorded as a protocol violation", async () => {
    const program = `mysql-listener-test-${++attempt}-bare`;
    const connection = await mysql.createConnection({ ...gateway.mysql!, user: "agent", password: agentKey, connectAttributes: { program_name: program }, connectTimeout: 10_000 });
    connection.on("error", () => undefined);
    const stream = (connection as unknown as { connection: { stream: NodeJS.WritableStream & NodeJS.EventEmitter } }).connection.stream;
    const closed = new Promise<void>((resolve) => stream.once("close", () => resolve()));
    const replies: Buffer[] = [];
    stream.on("data", (chunk: Buffer) => replies.push(chunk));
    // A COM_PING with sequence id 5: a command must start at 0.
    stream.write(Buffer.from([0x01, 0x00, 0x00, 0x05, 0x0e]));
    await closed;
    const err = Buffer.concat(replies);
    expect(err[4]).toBe(0xff);
    expect(err.readUInt16LE(5)).toBe(1156);
    expect(await recordedSession(program)).toMatchObject({ connection: "", endReason: "protocol_violation" });
  });

  it("a login naming no connection with a wrong key is still refused 1045, learning nothing", async () => {
    await expect(mysql.createConnection({ ...gateway.mysql!, user: "agent", password: "wrong", connectTimeout: 10_000 })).rejects.toMatchObject({ errno: 1045 });
  });

  it("COM_CHANGE_USER is refused with a clear ERR and recorded", async () => {
    const { connection, program } = await connect();
    await expect(connection.changeUser({ user: "other", password: otherKey })).rejects.toMatchObject({ errno: 1235 });
    await connection.end().catch(() => undefined);
    const session = await recordedSession(program);
    expect(session.events.find((e) => e.kind === "change_user")).toMatchObject({ outcome: "error", details: { errno: 1235 } });
  });

  it("LOAD DATA LOCAL INFILE is refused by default (the client's file never leaves it)", async () => {
    const { connection, program } = await connect();
    let asked = false;
    await expect(
      connection.query({
        sql: "LOAD DATA LOCAL INFILE 'whatever.csv' INTO TABLE no_such_table",
        infileStreamFactory: () => {
          asked = true;
          return Readable.from([Buffer.from("1,2\n")]);
        },
      } as never),
      // The server refuses it (MariaDB 10.11: 4166; MySQL: 3948; older: 1148), before it asks for any file.
    ).rejects.toMatchObject({ errno: expect.toSatisfy((n: number) => [1148, 3948, 4166].includes(n)) as never, message: expect.stringMatching(/not allowed/) });
    expect(asked).toBe(false);
    await connection.end();
    const session = await recordedSession(program);
    expect(session.events.find((e) => typeof e.command === "string" && e.command.startsWith("LOAD DATA"))).toMatchObject({ outcome: "error", details: { errno: expect.toSatisfy((n: number) => [1148, 3948, 4166].includes(n)) } });
  });

  it("LOAD DATA LOCAL INFILE on a connection with allowLocalInfile: the client's file is loaded and its size recorded", async () => {
    const schema = `gh_infile_${randomBytes(4).toString("hex")}`;
    const connections = (rawConfig.connections as Array<Record<string, unknown>>).map((c) => (c.name === "maria" ? { ...c, allowLocalInfile: true } : c));
    gateway.reload(validateConfig({ ...rawConfig, connections }));
    const { connection, program } = await connect();
    try {
      await connection.query(`CREATE DATABASE ${schema}`);
      await connection.query(`CREATE TABLE ${schema}.t (a INT, b INT)`);
      const [result] = await connection.query<mysql.ResultSetHeader>({
        sql: `LOAD DATA LOCAL INFILE 'numbers.csv' INTO TABLE ${schema}.t FIELDS TERMINATED BY ','`,
        infileStreamFactory: () => Readable.from([Buffer.from("1,2\n3,4\n")]),
      } as never);
      expect(result.affectedRows).toBe(2);
    } finally {
      await connection.query(`DROP DATABASE IF EXISTS ${schema}`).catch(() => undefined);
      await connection.end();
      gateway.reload(validateConfig(rawConfig));
    }
    const session = await recordedSession(program);
    expect(session.events.find((e) => typeof e.command === "string" && e.command.startsWith("LOAD DATA"))).toMatchObject({
      outcome: "ok",
      details: { affectedRows: 2, localInfile: { fileName: "numbers.csv", bytes: 8 } },
    });
  });

  // Last: it stops the gateway.
  it("a stopping gateway ends a running statement with ERR 1053", async () => {
    const { connection } = await connect();
    const started = Date.now();
    const sleeping = connection.query("SELECT SLEEP(20)").then(
      () => undefined,
      (error: MysqlError) => error,
    );
    await new Promise((resolve) => setTimeout(resolve, 300));
    await gateway.close({ graceMs: 0 });
    expect(await sleeping).toMatchObject({ errno: 1053, sqlState: "08S01" });
    expect(Date.now() - started).toBeLessThan(10_000);
  });
});
