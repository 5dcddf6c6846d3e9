// The MySQL dialer on its own, against a real MariaDB (found by @gatehouse/test-servers: the env URL,
// the local server, else a throwaway; the test makes its own accounts), against one with TLS (a
// throwaway with a self-signed certificate when the found one has none), and, where a misbehaving
// server is needed, a fake one on port 0.
import { execFileSync } from "node:child_process";
import { constants, createHash, generateKeyPairSync, privateDecrypt, randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { once } from "node:events";
import { createServer, type AddressInfo, type Server, type Socket } from "node:net";
import { TLSSocket } from "node:tls";
import { Duplex, PassThrough } from "node:stream";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { pino } from "pino";
import type { OpenStream } from "@gatehouse/proto";
import {
  Capability,
  Command,
  PacketReader,
  PayloadReader,
  decodeDialResult,
  decodeHandshakeResponse41,
  decodeKillResult,
  encodeAuthMoreData,
  encodeDialRequest,
  encodeHandshakeV10,
  encodeOkPacket,
  encodePacket,
  hasCapability,
} from "@gatehouse/protocols/mysql";
import { createMariadbTestAccounts, findMariadb, type MariadbServer, type MariadbTestAccounts } from "@gatehouse/test-servers";
import { ConnectorError } from "../../errors.js";
import type { DialContext } from "../types.js";
import { dialMysql } from "./mysql-dialer.js";
import { PieceHeaders } from "../../../test/helpers.js";

const suffix = `${process.pid}`;

let mariadb: MariadbServer;
let accounts: MariadbTestAccounts;
let MYSQL_PORT: number;
let NATIVE_USER: string;
let NATIVE_PASSWORD: string;
let DB: string;
/** The server's administrator, as the dialer's credential and its password. */
let ADMIN: { user: string };
let ADMIN_PASSWORD: string | null;

function sql(statement: string): string {
  return mariadb.sql(statement);
}

beforeAll(async () => {
  mariadb = await findMariadb();
  accounts = createMariadbTestAccounts(mariadb, "gh_dial");
  ({ port: MYSQL_PORT } = mariadb);
  ({ user: NATIVE_USER, password: NATIVE_PASSWORD } = accounts.native);
  DB = accounts.database;
  ADMIN = { user: mariadb.user };
  ADMIN_PASSWORD = mariadb.password;
});

afterAll(async () => {
  accounts?.drop();
  await mariadb?.stop();
});

const servers: Server[] = [];
const sockets: Duplex[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

function openTo(
  port: number,
  credential: { user: string },
  options: Record<string, string> = {},
  params: Record<string, string> = encodeDialRequest({}),
): OpenStream {
  return {
    protocol: "mysql",
    connection: "app",
    target: { host: "127.0.0.1", port, options: { tls: "disable", ...options } },
    credential,
    params,
  } as unknown as OpenStream;
}

function context(password: string | null, overrides: Partial<DialContext> = {}): DialContext {
  return { password, logger: pino({ level: "silent" }), signal: new AbortController().signal, timeoutMs: 5_000, ...overrides };
}

async function fakeServer(onSocket: (socket: Socket) => void): Promise<number> {
  const server = createServer(onSocket);
  servers.push(server);
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return (server.address() as AddressInfo).port;
}

async function dialError(promise: Promise<unknown>): Promise<ConnectorError> {
  const error = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ConnectorError);
  return error as ConnectorError;
}

/**
 * A COM_QUERY on a dialed socket, read as a text result set: the rows' values and the sequence id of
 * every physical packet piece (to show the relay kept them). `capabilities` are the connection's.
 */
async function query(socket: Duplex, statement: string, capabilities: number): Promise<{ rows: (string | null)[][]; sequenceIds: number[] }> {
  socket.write(encodePacket(0, Buffer.concat([Buffer.of(Command.COM_QUERY), Buffer.from(statement)])));
  const reader = new PacketReader({ maxPacketSize: 64 * 1024 * 1024 });
  const headers = new PieceHeaders();
  const sequenceIds = headers.sequenceIds;
  const deprecateEof = hasCapability(capabilities, Capability.CLIENT_DEPRECATE_EOF);
  const rows: (string | null)[][] = [];
  let columns: number | undefined;
  let columnDefsLeft = 0;
  let eofsSeen = 0;
  for await (const chunk of socket) {
    headers.push(chunk as Buffer);
    reader.push(chunk as Buffer);
    for (let packet = reader.read(); packet !== undefined; packet = reader.read()) {
      const payload = packet.payload;
      if (columns === undefined) {
        if (payload[0] === 0xff) throw new Error(`server error: ${Buffer.from(payload.subarray(9)).toString()}`);
        if (payload[0] === 0x00) return { rows, sequenceIds };
        columns = Number(new PayloadReader(payload).lenencInt());
        columnDefsLeft = columns;
        continue;
      }
      if (columnDefsLeft > 0) {
        columnDefsLeft--;
        continue;
      }
      const isTerminator = payload[0] === 0xfe && payload.length < 0xffffff && (deprecateEof || payload.length < 9);
      if (isTerminator) {
        if (deprecateEof || ++eofsSeen === 2) return { rows, sequenceIds };
        continue;
      }
      if (payload[0] === 0xff) throw new Error(`server error: ${Buffer.from(payload.subarray(9)).toString()}`);
      const r = new PayloadReader(payload);
      const row: (string | null)[] = [];
      for (let i = 0; i < columns; i++) {
        if (r.remaining > 0 && payload[payload.length - r.remaining] === 0xfb) {
          r.skip(1);
          row.push(null);
        } else row.push(r.lenencString());
      }
      rows.push(row);
    }
  }
  throw new Error("the socket ended before the result set did");
}

describe("dialMysql against the real MariaDB", () => {
  it("mysql_native_password with a database: reports the real server's greeting and hands over a socket ready for queries", async () => {
    const dialed = await dialMysql(openTo(MYSQL_PORT, { user: NATIVE_USER }, { database: DB }), context(NATIVE_PASSWORD));
    sockets.push(dialed.socket);
    const result = decodeDialResult(dialed.params ?? {});
    const version = sql("SELECT VERSION()");
    expect(result.serverVersion).toContain(version);
    expect(result.authPlugin).toBe("mysql_native_password");
    expect(result.tls).toBe(false);
    expect(result.connectionId).toBeGreaterThan(0);
    expect(hasCapability(result.serverCapabilities, Capability.CLIENT_PROTOCOL_41)).toBe(true);
    expect(hasCapability(result.capabilities, Capability.CLIENT_COMPRESS)).toBe(false);
    expect(result.statusFlags & 0x2).toBe(0x2); // SERVER_STATUS_AUTOCOMMIT
    const { rows, sequenceIds } = await query(dialed.socket, "SELECT CONNECTION_ID(), DATABASE(), CURRENT_USER()", result.capabilities);
    expect(rows).toEqual([[String(result.connectionId), DB, `${NATIVE_USER}@%`]]);
    expect(sequenceIds).toEqual(sequenceIds.map((_, i) => i + 1));
  });

  it("passes the client's negotiated capabilities on, so the result set has the client's shape (EOF packets without CLIENT_DEPRECATE_EOF)", async () => {
    const clientCapabilities =
      Capability.CLIENT_LONG_PASSWORD | Capability.CLIENT_PROTOCOL_41 | Capability.CLIENT_SECURE_CONNECTION | Capability.CLIENT_PLUGIN_AUTH | Capability.CLIENT_TRANSACTIONS;
    const params = encodeDialRequest({ client: { capabilities: clientCapabilities, mariadbCapabilities: 0, characterSet: 33, maxPacketSize: 1 << 24, attributes: [] } });
    const dialed = await dialMysql(openTo(MYSQL_PORT, { user: NATIVE_USER }, {}, params), context(NATIVE_PASSWORD));
    sockets.push(dialed.socket);
    const result = decodeDialResult(dialed.params ?? {});
    expect(hasCapability(result.capabilities, Capability.CLIENT_DEPRECATE_EOF)).toBe(false);
    expect(hasCapability(result.capabilities, Capability.CLIENT_MULTI_STATEMENTS)).toBe(false);
    const { rows } = await query(dialed.socket, "SELECT @@character_set_client, 1 + 1", result.capabilities);
    expect(rows).toEqual([["utf8mb3", "2"]]);
  });

  it("the client's initial database (client.database) takes the place of the connection's target.database", async () => {
    const clientCapabilities = Capability.CLIENT_LONG_PASSWORD | Capability.CLIENT_PROTOCOL_41 | Capability.CLIENT_SECURE_CONNECTION | Capability.CLIENT_PLUGIN_AUTH;
    const client = { capabilities: clientCapabilities, mariadbCapabilities: 0, characterSet: 33, maxPacketSize: 1 << 24, attributes: [] };
    const chosen = await dialMysql(openTo(MYSQL_PORT, ADMIN, { database: "mysql" }, encodeDialRequest({ client: { ...client, database: DB } })), context(ADMIN_PASSWORD));
    sockets.push(chosen.socket);
    const chosenCaps = decodeDialResult(chosen.params ?? {}).capabilities;
    expect((await query(chosen.socket, "SELECT DATABASE()", chosenCaps)).rows).toEqual([[DB]]);
    const byDefault = await dialMysql(openTo(MYSQL_PORT, ADMIN, { database: "mysql" }, encodeDialRequest({ client })), context(ADMIN_PASSWORD));
    sockets.push(byDefault.socket);
    expect((await query(byDefault.socket, "SELECT DATABASE()", decodeDialResult(byDefault.params ?? {}).capabilities)).rows).toEqual([["mysql"]]);
  });

  it("client_ed25519 when the account uses MariaDB's ed25519 plugin", async (test) => {
    if (!accounts.ed25519) test.skip();
    const { user: ED_USER, password: ED_PASSWORD } = accounts.ed25519!;
    const dialed = await dialMysql(openTo(MYSQL_PORT, { user: ED_USER }), context(ED_PASSWORD));
    sockets.push(dialed.socket);
    const result = decodeDialResult(dialed.params ?? {});
    expect(result.authPlugin).toBe("client_ed25519");
    expect((await query(dialed.socket, "SELECT CURRENT_USER()", result.capabilities)).rows).toEqual([[`${ED_USER}@%`]]);
  });

  it("a wrong password: AUTH_FAILED with the server's errno 1045 and SQLSTATE, never the password", async () => {
    const error = await dialError(dialMysql(openTo(MYSQL_PORT, { user: NATIVE_USER }), context("not-the-password-xyzzy")));
    expect(error.code).toBe("AUTH_FAILED");
    expect(error.message).toMatch(/^127\.0\.0\.1:\d+: the server refused the login: ERROR 1045 \(28000\): Access denied for user/);
    expect(error.message).not.toContain("xyzzy");
  });

  it("a database the account may not use: AUTH_FAILED with 1044; one that does not exist: TARGET_UNREACHABLE with 1049", async () => {
    const denied = await dialError(dialMysql(openTo(MYSQL_PORT, { user: NATIVE_USER }, { database: "mysql" }), context(NATIVE_PASSWORD)));
    expect(denied.code).toBe("AUTH_FAILED");
    expect(denied.message).toMatch(/ERROR 1044 \(42000\)/);
    const missing = await dialError(dialMysql(openTo(MYSQL_PORT, ADMIN, { database: `gh_no_such_db_${suffix}` }), context(ADMIN_PASSWORD)));
    expect(missing.code).toBe("TARGET_UNREACHABLE");
    expect(missing.message).toMatch(/ERROR 1049 \(42000\)/);
  });

  it("tls require against a server without TLS: a clear TARGET_UNREACHABLE", async (test) => {
    if (mariadb.tls) test.skip("this MariaDB has TLS; see the TLS cases");
    const error = await dialError(dialMysql(openTo(MYSQL_PORT, { user: NATIVE_USER }, { tls: "require" }), context(NATIVE_PASSWORD)));
    expect(error.code).toBe("TARGET_UNREACHABLE");
    expect(error.message).toMatch(/^127\.0\.0\.1:\d+: the server does not offer TLS, and tls is required$/);
  });

  it("tls prefer against a server without TLS logs in in plaintext", async (test) => {
    if (mariadb.tls) test.skip("this MariaDB has TLS; see the TLS cases");
    const dialed = await dialMysql(openTo(MYSQL_PORT, { user: NATIVE_USER }, { tls: "prefer" }), context(NATIVE_PASSWORD));
    sockets.push(dialed.socket);
    expect(decodeDialResult(dialed.params ?? {}).tls).toBe(false);
  });

  it("a KILL stream runs KILL QUERY <id> on its own login and ends a running SELECT SLEEP(30)", async () => {
    const dialed = await dialMysql(openTo(MYSQL_PORT, ADMIN), context(ADMIN_PASSWORD));
    sockets.push(dialed.socket);
    const result = decodeDialResult(dialed.params ?? {});
    const started = Date.now();
    const sleeping = query(dialed.socket, "SELECT SLEEP(30)", result.capabilities);
    // Wait until the statement runs on the server, so the KILL has something to end.
    for (let i = 0; i < 100 && sql(`SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = ${result.connectionId} AND INFO LIKE 'SELECT SLEEP%'`) !== "1"; i++) {
      await new Promise((r) => setTimeout(r, 50));
    }
    const killer = await dialMysql(openTo(MYSQL_PORT, ADMIN, {}, encodeDialRequest({ kill: { connectionId: result.connectionId } })), context(ADMIN_PASSWORD));
    expect(decodeKillResult(killer.params ?? {})).toEqual({ ok: true });
    // The stream carries nothing: it ends as soon as it is read.
    const ended = once(killer.socket, "end");
    killer.socket.resume();
    await ended;
    await expect(sleeping).rejects.toThrow(/Query execution was interrupted/);
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it("a KILL stream for a thread that does not exist reports the server's ERR (1094) as its outcome", async () => {
    const killer = await dialMysql(openTo(MYSQL_PORT, ADMIN, {}, encodeDialRequest({ kill: { connectionId: 4_000_000_000 } })), context(ADMIN_PASSWORD));
    expect(decodeKillResult(killer.params ?? {})).toMatchObject({ ok: false, errno: 1094 });
  });

  it("a 20 MiB row arrives whole, its pieces with consecutive sequence ids", async () => {
    // REPEAT() gives NULL beyond max_allowed_packet, 16 MiB on a packaged server; new sessions see a raised global.
    if (Number(sql("SELECT @@global.max_allowed_packet")) < 64 * 1024 * 1024) sql("SET GLOBAL max_allowed_packet = 67108864");
    const dialed = await dialMysql(openTo(MYSQL_PORT, ADMIN), context(ADMIN_PASSWORD));
    sockets.push(dialed.socket);
    const result = decodeDialResult(dialed.params ?? {});
    const size = 20 * 1024 * 1024;
    const { rows, sequenceIds } = await query(dialed.socket, `SELECT REPEAT('x', ${size}), MD5(REPEAT('x', ${size}))`, result.capabilities);
    expect(rows[0]![0]!.length).toBe(size);
    expect(rows[0]![0]).toBe("x".repeat(size));
    expect(sequenceIds.length).toBeGreaterThan(4); // column count, 2 definitions, the row in 2 pieces, EOF/OK
    expect(sequenceIds).toEqual(sequenceIds.map((_, i) => (i + 1) & 0xff));
  });
});

describe("dialMysql against a real MariaDB with TLS", () => {
  let server: MariadbServer;
  let tlsAccounts: MariadbTestAccounts;
  beforeAll(async () => {
    server = await findMariadb({ tls: true });
    tlsAccounts = createMariadbTestAccounts(server, "gh_dialtls");
  }, 120_000);
  afterAll(async () => {
    tlsAccounts?.drop();
    await server?.stop();
  });

  /** The TLS session the server sees on this connection: its protocol version, from its own status. */
  async function serverSideTls(dialed: { socket: Duplex; params?: Record<string, string> }): Promise<string | null | undefined> {
    const result = decodeDialResult(dialed.params ?? {});
    const { rows } = await query(dialed.socket, "SHOW SESSION STATUS LIKE 'Ssl_version'", result.capabilities);
    return rows[0]?.[1];
  }

  it("verify-full with target.ca: the server's certificate checked, the login and queries inside TLS", async (test) => {
    if (!server.caFile) test.skip("the MariaDB found has TLS with a certificate this test did not make (no CA to pin)");
    const { native, database } = tlsAccounts;
    const dialed = await dialMysql(openTo(server.port, { user: native.user }, { tls: "verify-full", ca: server.caFile!, database }), context(native.password));
    sockets.push(dialed.socket);
    expect(decodeDialResult(dialed.params ?? {})).toMatchObject({ authPlugin: "mysql_native_password", tls: true });
    expect(await serverSideTls(dialed)).toMatch(/^TLSv1\.[23]$/);
  });

  it("verify-full without the CA: the self-signed certificate is refused, TARGET_UNREACHABLE", async (test) => {
    if (!server.caFile) test.skip("the MariaDB found has TLS with a certificate this test did not make");
    const error = await dialError(dialMysql(openTo(server.port, { user: tlsAccounts.native.user }, { tls: "verify-full" }), context(tlsAccounts.native.password)));
    expect(error.code).toBe("TARGET_UNREACHABLE");
    expect(error.message).toMatch(/TLS with the server failed: self[- ]signed certificate/);
  });

  it("tls require: TLS without checking the certificate, and the server sees a TLS session", async () => {
    const dialed = await dialMysql(openTo(server.port, { user: tlsAccounts.native.user }, { tls: "require" }), context(tlsAccounts.native.password));
    sockets.push(dialed.socket);
    expect(decodeDialResult(dialed.params ?? {}).tls).toBe(true);
    expect(await serverSideTls(dialed)).toMatch(/^TLSv1\.[23]$/);
  });

  it("tls prefer takes TLS when offered; tls disable logs in in plaintext", async () => {
    const preferred = await dialMysql(openTo(server.port, { user: tlsAccounts.native.user }, { tls: "prefer" }), context(tlsAccounts.native.password));
    sockets.push(preferred.socket);
    expect(decodeDialResult(preferred.params ?? {}).tls).toBe(true);
    const plain = await dialMysql(openTo(server.port, { user: tlsAccounts.native.user }, { tls: "disable" }), context(tlsAccounts.native.password));
    sockets.push(plain.socket);
    expect(decodeDialResult(plain.params ?? {}).tls).toBe(false);
    expect(await serverSideTls(plain)).toBe("");
  });

  it("client_ed25519 inside TLS", async (test) => {
    if (!tlsAccounts.ed25519) test.skip("the auth_ed25519 plugin cannot be loaded on this MariaDB");
    const dialed = await dialMysql(openTo(server.port, { user: tlsAccounts.ed25519!.user }, { tls: "require" }), context(tlsAccounts.ed25519!.password));
    sockets.push(dialed.socket);
    expect(decodeDialResult(dialed.params ?? {})).toMatchObject({ authPlugin: "client_ed25519", tls: true });
  });
});

describe("dialMysql: unreachable and misbehaving servers", () => {
  it("nothing listening: TARGET_UNREACHABLE naming the target", async () => {
    const port = await fakeServer((s) => s.destroy());
    await new Promise((r) => servers.pop()!.close(r));
    const error = await dialError(dialMysql(openTo(port, { user: "root" }), context(null)));
    expect(error.code).toBe("TARGET_UNREACHABLE");
    expect(error.message).toContain(`127.0.0.1:${port}`);
  });

  it("a server that accepts and never greets is given up on at the deadline", async () => {
    const port = await fakeServer((socket) => socket.on("data", () => undefined));
    const error = await dialError(dialMysql(openTo(port, { user: "root" }), context(null, { timeoutMs: 300 })));
    expect(error.code).toBe("TARGET_UNREACHABLE");
    expect(error.message).toMatch(/did not finish the login within 300 ms/);
  });

  it("a server that sends garbage instead of a greeting: PROTOCOL_ERROR, not a crash", async () => {
    const port = await fakeServer((socket) => socket.end(encodePacket(0, Buffer.from("\x0agarbage"))));
    const error = await dialError(dialMysql(openTo(port, { user: "root" }), context(null)));
    expect(error.code).toBe("PROTOCOL_ERROR");
    expect(error.message).toContain(`127.0.0.1:${port}`);
  });

  it("bad bytes at each step of the login end the dial with a ConnectorError naming the target, never a crash", async () => {
    const greeting = Buffer.from(
      encodeHandshakeV10({
        serverVersion: "8.0.36-fake", connectionId: 9, scramble: randomBytes(20), mariadbCapabilities: 0, characterSet: 45, statusFlags: 2, authPluginName: "mysql_native_password",
        capabilities: Capability.CLIENT_LONG_PASSWORD | Capability.CLIENT_PROTOCOL_41 | Capability.CLIENT_SECURE_CONNECTION | Capability.CLIENT_PLUGIN_AUTH,
      }),
    );
    const cases: Array<[string, Uint8Array[], string]> = [
      ["a truncated greeting", [encodePacket(0, greeting.subarray(0, 12))], "PROTOCOL_ERROR"],
      ["a greeting with the wrong sequence id", [encodePacket(3, greeting)], "PROTOCOL_ERROR"],
      ["a packet header announcing 16 MiB during the login", [Buffer.of(0xff, 0xff, 0xff, 0)], "PROTOCOL_ERROR"],
      ["random bytes after the greeting", [encodePacket(0, greeting), encodePacket(2, Buffer.concat([Buffer.of(0x42), randomBytes(39)]))], "PROTOCOL_ERROR"],
      ["an OK with the wrong sequence id", [encodePacket(0, greeting), encodePacket(5, Buffer.of(0, 0, 0, 2, 0, 0, 0))], "PROTOCOL_ERROR"],
      ["an auth switch to an unknown plugin", [encodePacket(0, greeting), encodePacket(2, Buffer.concat([Buffer.of(0xfe), Buffer.from("dialog\0"), randomBytes(20)]))], "PROTOCOL_UNSUPPORTED"],
      ["half a greeting, then the server hangs up", [Buffer.from(encodePacket(0, greeting)).subarray(0, 20)], "TARGET_UNREACHABLE"],
    ];
    for (const [what, replies, code] of cases) {
      const port = await fakeServer((socket) => {
        socket.on("error", () => undefined);
        socket.write(replies[0]!);
        if (replies.length === 1) return void socket.end();
        socket.once("data", () => socket.end(replies[1]!));
      });
      const error = await dialError(dialMysql(openTo(port, { user: "root" }), context("s3cr3t-pw")));
      expect({ what, code: error.code }).toEqual({ what, code });
      expect(error.message).toContain(`127.0.0.1:${port}`);
      expect(error.message).not.toContain("s3cr3t");
    }
  });

  it("a NUL in the account name is refused before connecting", async () => {
    let connections = 0;
    const port = await fakeServer((socket) => (connections++, socket.destroy()));
    const error = await dialError(dialMysql(openTo(port, { user: "root\0--" }), context(null)));
    expect(error.code).toBe("PROTOCOL_ERROR");
    expect(connections).toBe(0);
  });

  it("the stream no longer wanted (link lost) cancels a login in progress", async () => {
    const port = await fakeServer((socket) => socket.on("data", () => undefined));
    const wanted = new AbortController();
    setTimeout(() => wanted.abort(new Error("link lost")), 100);
    const error = await dialError(dialMysql(openTo(port, { user: "root" }), context(null, { signal: wanted.signal })));
    expect(error.code).toBe("TARGET_UNREACHABLE");
    expect(error.message).toMatch(/cancelled/);
  });

  it("an unknown tls mode is refused before connecting", async () => {
    const error = await dialError(dialMysql(openTo(MYSQL_PORT, ADMIN, { tls: "sometimes" }), context(ADMIN_PASSWORD)));
    expect(error.code).toBe("PROTOCOL_UNSUPPORTED");
  });
});

/**
 * MariaDB 10.11 has no caching_sha2_password, so a server on port 0 plays MySQL 8's side of it with
 * its own crypto (node:crypto, the spec's formulas): `fast` accepts a correct scramble token
 * (AuthMoreData 0x03, OK); `full` asks for full authentication (0x04) and accepts the password in
 * cleartext over TLS, or without TLS only RSA-OAEP-encrypted with its key, XORed with the scramble.
 * With `tls` it offers CLIENT_SSL and upgrades after the SSLRequest.
 */
async function cachingSha2Server(
  password: string,
  mode: "fast" | "full",
  privateKeyPem: string,
  tls?: { key: string; cert: string },
): Promise<{ port: number; seen: string[] }> {
  const seen: string[] = [];
  const port = await fakeServer((plain) => {
    plain.on("error", () => undefined);
    const scramble = randomBytes(20);
    const capabilities =
      Capability.CLIENT_LONG_PASSWORD | Capability.CLIENT_PROTOCOL_41 | Capability.CLIENT_SECURE_CONNECTION | Capability.CLIENT_PLUGIN_AUTH |
      Capability.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA | Capability.CLIENT_TRANSACTIONS | Capability.CLIENT_DEPRECATE_EOF |
      (tls ? Capability.CLIENT_SSL : 0);
    plain.write(encodePacket(0, encodeHandshakeV10({ serverVersion: "8.0.36-fake", connectionId: 77, scramble, capabilities, mariadbCapabilities: 0, characterSet: 255, statusFlags: 2, authPluginName: "caching_sha2_password" })));
    let socket: Socket = plain;
    let reader = new PacketReader();
    let step: "sslRequest" | "response" | "fullAuth" = tls ? "sslRequest" : "response";
    const onData = (chunk: Buffer) => {
      reader.push(chunk);
      for (let packet = reader.read(); packet !== undefined; packet = reader.read()) {
        const reply = packet.sequenceId + 1;
        const deny = () => socket.end(encodePacket(reply, Buffer.concat([Buffer.of(0xff, 0x15, 0x04), Buffer.from("#28000Access denied")])));
        if (step === "sslRequest" && packet.payload.byteLength !== 32) step = "response"; // the client went on without TLS
        if (step === "sslRequest") {
          seen.push(`sslRequest:${packet.payload.byteLength}`);
          plain.off("data", onData);
          // The client's TLS hello may have come in the same chunk as the SSLRequest: TLS starts with those bytes.
          const inbound = new PassThrough();
          for (const bytes of reader.takeBuffered()) inbound.write(bytes);
          plain.pipe(inbound);
          socket = new TLSSocket(Duplex.from({ readable: inbound, writable: plain }) as unknown as Socket, { isServer: true, key: tls!.key, cert: tls!.cert });
          socket.on("error", () => undefined);
          socket.on("data", onData);
          reader = new PacketReader();
          step = "response";
          return;
        }
        if (step === "response") {
          const response = decodeHandshakeResponse41(packet.payload);
          seen.push(`response:${response.authPluginName}`);
          const sha256 = (...parts: Uint8Array[]) => parts.reduce((h, p) => h.update(p), createHash("sha256")).digest();
          const stage1 = sha256(Buffer.from(password));
          const expected = Buffer.from(sha256(sha256(stage1), scramble).map((b, i) => b ^ stage1[i]!));
          if (!expected.equals(Buffer.from(response.authResponse))) return deny();
          if (mode === "fast") {
            socket.write(encodePacket(reply, encodeAuthMoreData(Uint8Array.of(0x03))));
            socket.write(encodePacket(reply + 1, encodeOkPacket({ statusFlags: 2 }, capabilities)));
          } else {
            socket.write(encodePacket(reply, encodeAuthMoreData(Uint8Array.of(0x04))));
            step = "fullAuth";
          }
          continue;
        }
        let clear: Buffer;
        if (tls) {
          seen.push("cleartext");
          clear = Buffer.from(packet.payload);
        } else {
          seen.push(`encrypted:${packet.payload.byteLength}`);
          const decrypted = privateDecrypt({ key: privateKeyPem, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha1" }, packet.payload);
          clear = Buffer.from(decrypted.map((b, i) => b ^ scramble[i % 20]!));
        }
        if (!clear.equals(Buffer.from(`${password}\0`))) return deny();
        socket.write(encodePacket(reply, encodeOkPacket({ statusFlags: 2 }, capabilities)));
      }
    };
    plain.on("data", onData);
  });
  return { port, seen };
}

// A fake server, not a throwaway mariadbd: MariaDB 10.11 has no server plugin for caching_sha2_password
// (only MySQL 8 does), so only a server on port 0 playing MySQL 8 can exercise the dialer's side of it.
describe("dialMysql: caching_sha2_password (a fake MySQL 8 on port 0; MariaDB 10.11 lacks the plugin)", () => {
  const keys = generateKeyPairSync("rsa", { modulusLength: 2048, publicKeyEncoding: { type: "spki", format: "pem" }, privateKeyEncoding: { type: "pkcs8", format: "pem" } });
  const keyFile = join(mkdtempSync(join(tmpdir(), "gh-mysql-dialer-")), "server-public-key.pem");
  writeFileSync(keyFile, keys.publicKey);

  it("fast path: the scramble token, then the server's OK", async () => {
    const server = await cachingSha2Server("sha2 secret", "fast", keys.privateKey);
    const dialed = await dialMysql(openTo(server.port, { user: "app" }), context("sha2 secret"));
    sockets.push(dialed.socket);
    expect(decodeDialResult(dialed.params ?? {})).toMatchObject({ authPlugin: "caching_sha2_password", serverVersion: "8.0.36-fake", connectionId: 77, tls: false });
    expect(server.seen).toEqual(["response:caching_sha2_password"]);
  });

  it("full authentication without TLS: the password encrypted with the pinned RSA key (target.options.serverPublicKey)", async () => {
    const server = await cachingSha2Server("sha2 secret", "full", keys.privateKey);
    const dialed = await dialMysql(openTo(server.port, { user: "app" }, { serverPublicKey: keyFile }), context("sha2 secret"));
    sockets.push(dialed.socket);
    expect(decodeDialResult(dialed.params ?? {}).authPlugin).toBe("caching_sha2_password");
    expect(server.seen).toEqual(["response:caching_sha2_password", "encrypted:256"]);
  });

  it("full authentication without TLS and without a pinned key: AUTH_FAILED, the password never sent", async () => {
    const server = await cachingSha2Server("sha2 secret", "full", keys.privateKey);
    const error = await dialError(dialMysql(openTo(server.port, { user: "app" }), context("sha2 secret")));
    expect(error.code).toBe("AUTH_FAILED");
    expect(error.message).toMatch(/needs TLS or the server's RSA public key/);
    expect(server.seen).toEqual(["response:caching_sha2_password"]);
  });

  describe("over TLS (a self-signed certificate for 127.0.0.1)", () => {
    const dir = mkdtempSync(join(tmpdir(), "gh-mysql-dialer-tls-"));
    execFileSync("openssl", [
      "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
      "-subj", "/CN=gatehouse test mysql", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
      "-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem"),
    ], { stdio: "ignore" });
    const tls = { key: readFileSync(join(dir, "key.pem"), "utf8"), cert: readFileSync(join(dir, "cert.pem"), "utf8") };

    it("verify-full with target.ca: SSLRequest, TLS, then full authentication sends the password over TLS", async () => {
      const server = await cachingSha2Server("sha2 secret", "full", keys.privateKey, tls);
      const dialed = await dialMysql(openTo(server.port, { user: "app" }, { tls: "verify-full", ca: join(dir, "cert.pem") }), context("sha2 secret"));
      sockets.push(dialed.socket);
      expect(decodeDialResult(dialed.params ?? {})).toMatchObject({ authPlugin: "caching_sha2_password", tls: true });
      expect(server.seen).toEqual(["sslRequest:32", "response:caching_sha2_password", "cleartext"]);
    });

    it("verify-full without the CA: the certificate is refused, TARGET_UNREACHABLE, nothing sent after the SSLRequest", async () => {
      const server = await cachingSha2Server("sha2 secret", "full", keys.privateKey, tls);
      const error = await dialError(dialMysql(openTo(server.port, { user: "app" }, { tls: "verify-full" }), context("sha2 secret")));
      expect(error.code).toBe("TARGET_UNREACHABLE");
      expect(error.message).toMatch(/TLS with the server failed: self[- ]signed certificate/);
      expect(server.seen).toEqual(["sslRequest:32"]);
    });

    it("tls disable against a server offering TLS: no SSLRequest, the login in plaintext", async () => {
      const server = await cachingSha2Server("sha2 secret", "fast", keys.privateKey, tls);
      const dialed = await dialMysql(openTo(server.port, { user: "app" }, { tls: "disable" }), context("sha2 secret"));
      sockets.push(dialed.socket);
      expect(decodeDialResult(dialed.params ?? {}).tls).toBe(false);
      expect(server.seen).toEqual(["response:caching_sha2_password"]);
    });
  });

  it("a wrong password: the server's 1045 as AUTH_FAILED", async () => {
    const server = await cachingSha2Server("sha2 secret", "fast", keys.privateKey);
    const error = await dialError(dialMysql(openTo(server.port, { user: "app" }), context("wrong")));
    expect(error.code).toBe("AUTH_FAILED");
    expect(error.message).toMatch(/ERROR 1045 \(28000\): Access denied/);
  });
});
