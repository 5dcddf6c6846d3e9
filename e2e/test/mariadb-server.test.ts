import { existsSync } from "node:fs";
import { spawnSync } from "node:child_process";
import mysql from "mysql2/promise";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { answers } from "../lib/postgres-server.js";
import { canStartThrowaway, startMariadbServer, throwaway, type MariadbServer } from "../lib/mariadb-server.js";

// The MariaDB resource the MySQL e2e tests stand on: a throwaway server made
// from scratch (what CI without a local server gets), found again through
// GATEHOUSE_TEST_MYSQL_URL, its test databases, and a clean stop.

const installed = canStartThrowaway();

describe.skipIf(!installed)("a throwaway MariaDB server (mariadb-server installed)", () => {
  let server: MariadbServer;

  beforeAll(async () => {
    server = await throwaway();
  }, 120_000);

  afterAll(async () => {
    await server?.stop();
  });

  it("answers on a free port as a password user, and refuses a wrong password with 1045", async () => {
    expect(server.source).toBe("throwaway");
    expect(server.port).not.toBe(3306);
    expect(server.password).toMatch(/^[0-9a-f]{24}$/);
    expect(await server.query("SELECT CURRENT_USER() AS who, @@version AS version")).toEqual([{ who: "gatehouse@127.0.0.1", version: expect.stringMatching(/MariaDB/) }]);
    await expect(mysql.createConnection({ host: server.host, port: server.port, user: server.user, password: "wrong" })).rejects.toMatchObject({ errno: 1045, sqlState: "28000" });
  });

  it("the mariadb command-line client logs in with cliArgs()", () => {
    const out = spawnSync("mariadb", [...server.cliArgs(), "-N", "-e", "SELECT 6 * 7"], { encoding: "utf8" });
    expect(out.stderr).toBe("");
    expect(out.stdout.trim()).toBe("42");
  });

  it("found through GATEHOUSE_TEST_MYSQL_URL when it is set, before any local server", async () => {
    const saved = process.env.GATEHOUSE_TEST_MYSQL_URL;
    process.env.GATEHOUSE_TEST_MYSQL_URL = `mysql://${server.user}:${server.password}@127.0.0.1:${server.port}`;
    try {
      const found = await startMariadbServer();
      expect(found).toMatchObject({ source: "env", port: server.port, user: "gatehouse", password: server.password });
      expect(await found.query("SELECT 1 AS one")).toEqual([{ one: 1 }]);
    } finally {
      if (saved === undefined) delete process.env.GATEHOUSE_TEST_MYSQL_URL;
      else process.env.GATEHOUSE_TEST_MYSQL_URL = saved;
    }
  });

  it("a test database has its tables and rows, and drops even with a session still in it", async () => {
    const db = await server.createDatabase({ orders: 300 });
    expect(db.name).toMatch(/^gatehouse_e2e_[0-9a-f]{12}$/);
    expect(await server.query("SELECT COUNT(*) AS n, SUM(amount) AS total FROM orders", db.name)).toEqual([{ n: 300, total: "4515.00" }]);
    // Text beyond latin1 (a bare mariadbd's default) is stored as sent.
    await server.query("INSERT INTO imports (id, note) VALUES (1, 'ünïcødé ✓ 🐬')", db.name);
    expect(await server.query("SELECT note FROM imports", db.name)).toEqual([{ note: "ünïcødé ✓ 🐬" }]);
    const lingering = await server.connect(db.name);
    lingering.on("error", () => undefined);
    // An open transaction holds a metadata lock on the table: DROP DATABASE alone would wait for it.
    await lingering.query("START TRANSACTION");
    await lingering.query("SELECT * FROM orders FOR UPDATE");
    await db.drop();
    expect(await server.query(`SHOW DATABASES LIKE '${db.name}'`)).toEqual([]);
    lingering.destroy();
  });
});

describe.skipIf(!installed)("stopping a throwaway server", () => {
  it("stops mariadbd and removes its files", async () => {
    const server = await throwaway();
    const datadir = ((await server.query("SELECT @@datadir AS d")) as Array<{ d: string }>)[0]!.d;
    expect(existsSync(datadir)).toBe(true);
    await server.stop();
    expect(existsSync(datadir)).toBe(false);
    expect(await answers("127.0.0.1", server.port)).toBe(false);
  }, 120_000);
});
