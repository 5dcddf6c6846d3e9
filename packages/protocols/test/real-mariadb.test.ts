/**
 * `ServerLogin` against a real MariaDB (found by @gatehouse/test-servers: the env URL, the local
 * server, else a throwaway): the connector's login path with each plugin MariaDB offers, and its
 * refusals passed on; and against one with TLS (a throwaway with a certificate when the found one
 * has none).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createMariadbTestAccounts, findMariadb, type MariadbServer, type MariadbTestAccounts } from "@gatehouse/test-servers";
import { PayloadReader } from "../src/mysql/bytes.js";
import { AuthPlugin, Capability, hasCapability } from "../src/mysql/constants.js";
import { firstResponse, mysqlLogin } from "./helpers/mysql-login.js";

let server: MariadbServer;
let accounts: MariadbTestAccounts;

beforeAll(async () => {
  server = await findMariadb();
  accounts = createMariadbTestAccounts(server, "gh_wire");
});

afterAll(async () => {
  accounts?.drop();
  await server?.stop();
});

/** The single value of a one-row, one-column text result set. */
function singleValue(packets: Uint8Array[]): string {
  // column count, column definition, [EOF], row, EOF/OK
  const row = packets.find((p, i) => i >= 2 && p[0] !== 0xfe)!;
  return new PayloadReader(row).lenencString();
}

describe("ServerLogin against MariaDB", () => {
  it("logs in with mysql_native_password and a database, and reports what the gateway must show", async () => {
    const { socket, result } = await mysqlLogin(server.port, { user: accounts.native.user, password: accounts.native.password, database: accounts.database, tls: "disable" });
    try {
      expect(result.type).toBe("ready");
      if (result.type !== "ready") return;
      expect(result.serverVersion).toMatch(/MariaDB/);
      expect(result.authPlugin).toBe(AuthPlugin.MYSQL_NATIVE_PASSWORD);
      expect(hasCapability(result.capabilities, Capability.CLIENT_COMPRESS)).toBe(false);
      expect(hasCapability(result.serverCapabilities, Capability.CLIENT_PROTOCOL_41)).toBe(true);
      expect(result.statusFlags & 0x2).toBe(0x2); // SERVER_STATUS_AUTOCOMMIT
      expect(singleValue(await firstResponse(socket, "SELECT DATABASE()"))).toBe(accounts.database);
      expect(singleValue(await firstResponse(socket, "SELECT CONNECTION_ID()"))).toBe(String(result.connectionId));
      expect(singleValue(await firstResponse(socket, "SELECT CURRENT_USER()"))).toBe(`${accounts.native.user}@%`);
    } finally {
      socket.destroy();
    }
  });

  it("passes on the server's refusal of a wrong password (1045/28000)", async () => {
    const { socket, result } = await mysqlLogin(server.port, { user: accounts.native.user, password: "wrong", tls: "disable" });
    socket.destroy();
    expect(result).toMatchObject({ type: "failed", error: { errno: 1045, sqlState: "28000" } });
    if (result.type === "failed") expect(result.error.message).toContain(accounts.native.user);
  });

  it("passes on the server's refusal of an unknown database (1049/42000)", async () => {
    const { socket, result } = await mysqlLogin(server.port, { user: server.user, ...(server.password === null ? {} : { password: server.password }), database: `${accounts.database}_missing`, tls: "disable" });
    socket.destroy();
    expect(result).toMatchObject({ type: "failed", error: { errno: 1049, sqlState: "42000" } });
  });

  it("logs in with client_ed25519 when the server switches to it", async (context) => {
    if (!accounts.ed25519) context.skip("the auth_ed25519 plugin cannot be loaded on this MariaDB");
    const ed = accounts.ed25519!;
    const { socket, result } = await mysqlLogin(server.port, { user: ed.user, password: ed.password, tls: "disable" });
    try {
      expect(result).toMatchObject({ type: "ready", authPlugin: AuthPlugin.CLIENT_ED25519 });
      expect(singleValue(await firstResponse(socket, "SELECT CURRENT_USER()"))).toBe(`${ed.user}@%`);
    } finally {
      socket.destroy();
    }
    const wrong = await mysqlLogin(server.port, { user: ed.user, password: "not it", tls: "disable" });
    wrong.socket.destroy();
    expect(wrong.result).toMatchObject({ type: "failed", error: { errno: 1045 } });
  });

  it("refuses to log in without TLS when tls is required and the server offers none", async (context) => {
    if (server.tls) context.skip("this MariaDB has TLS; see the TLS cases");
    await expect(mysqlLogin(server.port, { user: accounts.native.user, password: accounts.native.password, tls: "require" })).rejects.toMatchObject({ code: "TLS_REQUIRED" });
  });
});

describe("ServerLogin against a MariaDB with TLS", () => {
  let tlsServer: MariadbServer;
  let tlsAccounts: MariadbTestAccounts;
  beforeAll(async () => {
    tlsServer = await findMariadb({ tls: true });
    tlsAccounts = createMariadbTestAccounts(tlsServer, "gh_wiretls");
  }, 120_000);
  afterAll(async () => {
    tlsAccounts?.drop();
    await tlsServer?.stop();
  });

  it("logs in over TLS when the server offers it, and the server sees a TLS session", async () => {
    const { socket, result } = await mysqlLogin(tlsServer.port, { user: tlsAccounts.native.user, password: tlsAccounts.native.password, tls: "require" });
    try {
      expect(result).toMatchObject({ type: "ready", tls: true, authPlugin: AuthPlugin.MYSQL_NATIVE_PASSWORD });
      const version = singleValue(await firstResponse(socket, "SELECT VARIABLE_VALUE FROM information_schema.SESSION_STATUS WHERE VARIABLE_NAME = 'SSL_VERSION'"));
      expect(version).toMatch(/^TLSv1\.[23]$/);
    } finally {
      socket.destroy();
    }
  });

  it("a wrong password over TLS is refused by the server with 1045", async () => {
    const { socket, result } = await mysqlLogin(tlsServer.port, { user: tlsAccounts.native.user, password: "wrong", tls: "require" });
    socket.destroy();
    expect(result).toMatchObject({ type: "failed", error: { errno: 1045, sqlState: "28000" } });
  });
});
