/**
 * `ServerLogin` against the real MariaDB on 127.0.0.1:3306 (root without password): the
 * connector's login path with each plugin MariaDB offers here, and its refusals passed on.
 */
import { execFileSync } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PayloadReader } from "../src/mysql/bytes.js";
import { AuthPlugin, Capability, hasCapability } from "../src/mysql/constants.js";
import { firstResponse, mysqlLogin } from "./helpers/mysql-login.js";

const PORT = 3306;
const suffix = `${process.pid}`;
const NATIVE_USER = `gh_wire_native_${suffix}`;
const ED_USER = `gh_wire_ed_${suffix}`;
const DB = `gh_wire_db_${suffix}`;

function sql(statement: string): string {
  return execFileSync("mysql", ["-h127.0.0.1", `-P${PORT}`, "-uroot", "-N", "-B", "-e", statement], { encoding: "utf8" }).trim();
}

let ed25519Available = false;
let tlsAvailable = false;

beforeAll(() => {
  sql(`CREATE DATABASE IF NOT EXISTS ${DB}`);
  sql(`CREATE USER IF NOT EXISTS '${NATIVE_USER}'@'%' IDENTIFIED VIA mysql_native_password USING PASSWORD('native pw ü')`);
  sql(`GRANT ALL ON ${DB}.* TO '${NATIVE_USER}'@'%'`);
  try {
    // The plugin ships with MariaDB but is not loaded by default; loading it twice is an error we ignore.
    try {
      sql("INSTALL SONAME 'auth_ed25519'");
    } catch {
      /* already installed */
    }
    sql(`CREATE USER IF NOT EXISTS '${ED_USER}'@'%' IDENTIFIED VIA ed25519 USING PASSWORD('ed pw')`);
    ed25519Available = true;
  } catch {
    ed25519Available = false;
  }
  tlsAvailable = sql("SHOW VARIABLES LIKE 'have_ssl'").endsWith("YES");
});

afterAll(() => {
  sql(`DROP USER IF EXISTS '${NATIVE_USER}'@'%'`);
  sql(`DROP USER IF EXISTS '${ED_USER}'@'%'`);
  sql(`DROP DATABASE IF EXISTS ${DB}`);
});

/** The single value of a one-row, one-column text result set. */
function singleValue(packets: Uint8Array[]): string {
  // column count, column definition, [EOF], row, EOF/OK
  const row = packets.find((p, i) => i >= 2 && p[0] !== 0xfe)!;
  return new PayloadReader(row).lenencString();
}

describe("ServerLogin against MariaDB", () => {
  it("logs in with mysql_native_password and a database, and reports what the gateway must show", async () => {
    const { socket, result } = await mysqlLogin(PORT, { user: NATIVE_USER, password: "native pw ü", database: DB, tls: "disable" });
    try {
      expect(result.type).toBe("ready");
      if (result.type !== "ready") return;
      expect(result.serverVersion).toMatch(/MariaDB/);
      expect(result.authPlugin).toBe(AuthPlugin.MYSQL_NATIVE_PASSWORD);
      expect(hasCapability(result.capabilities, Capability.CLIENT_COMPRESS)).toBe(false);
      expect(hasCapability(result.serverCapabilities, Capability.CLIENT_PROTOCOL_41)).toBe(true);
      expect(result.statusFlags & 0x2).toBe(0x2); // SERVER_STATUS_AUTOCOMMIT
      expect(singleValue(await firstResponse(socket, "SELECT DATABASE()"))).toBe(DB);
      expect(singleValue(await firstResponse(socket, "SELECT CONNECTION_ID()"))).toBe(String(result.connectionId));
      expect(singleValue(await firstResponse(socket, "SELECT CURRENT_USER()"))).toBe(`${NATIVE_USER}@%`);
    } finally {
      socket.destroy();
    }
  });

  it("passes on the server's refusal of a wrong password (1045/28000)", async () => {
    const { socket, result } = await mysqlLogin(PORT, { user: NATIVE_USER, password: "wrong", tls: "disable" });
    socket.destroy();
    expect(result).toMatchObject({ type: "failed", error: { errno: 1045, sqlState: "28000" } });
    if (result.type === "failed") expect(result.error.message).toContain(NATIVE_USER);
  });

  it("passes on the server's refusal of an unknown database (1049/42000)", async () => {
    const { socket, result } = await mysqlLogin(PORT, { user: "root", database: `${DB}_missing`, tls: "disable" });
    socket.destroy();
    expect(result).toMatchObject({ type: "failed", error: { errno: 1049, sqlState: "42000" } });
  });

  it("logs in with client_ed25519 when the server switches to it", async (context) => {
    if (!ed25519Available) context.skip("the auth_ed25519 plugin cannot be loaded on this MariaDB");
    const { socket, result } = await mysqlLogin(PORT, { user: ED_USER, password: "ed pw", tls: "disable" });
    try {
      expect(result).toMatchObject({ type: "ready", authPlugin: AuthPlugin.CLIENT_ED25519 });
      expect(singleValue(await firstResponse(socket, "SELECT CURRENT_USER()"))).toBe(`${ED_USER}@%`);
    } finally {
      socket.destroy();
    }
    const wrong = await mysqlLogin(PORT, { user: ED_USER, password: "not it", tls: "disable" });
    wrong.socket.destroy();
    expect(wrong.result).toMatchObject({ type: "failed", error: { errno: 1045 } });
  });

  it("refuses to log in without TLS when tls is required and the server offers none", async (context) => {
    if (tlsAvailable) context.skip("this MariaDB has TLS; covered by the TLS case");
    await expect(mysqlLogin(PORT, { user: NATIVE_USER, password: "native pw ü", tls: "require" })).rejects.toMatchObject({ code: "TLS_REQUIRED" });
  });

  it("logs in over TLS when the server offers it", async (context) => {
    if (!tlsAvailable) context.skip("have_ssl is not YES on this MariaDB (no certificate configured)");
    const { socket, result } = await mysqlLogin(PORT, { user: NATIVE_USER, password: "native pw ü", tls: "require" });
    socket.destroy();
    expect(result).toMatchObject({ type: "ready", tls: true });
  });
});
