import { createHash, randomBytes } from "node:crypto";
import mysql from "mysql2/promise";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { IDENTITY, mysql2Options, startMysqlStack, type MysqlEndpoint, type MysqlStack } from "../lib/mysql-stack.js";
import type { MariadbServer } from "../lib/mariadb-server.js";
import { comQuery, packet, rawLogin, type Packet } from "../lib/raw-mysql.js";

// mysql2, the Node driver agents' code uses, directly and through gateway +
// connector: text and binary (prepared) protocol over every column type,
// NULLs, big values (a 20 MiB row: packets split at 16 MiB), a pool, multiple
// statements, TLS; and what only the gateway does (changeUser refused).

let stack: MysqlStack | undefined;
let server: MariadbServer;
let direct: MysqlEndpoint;

beforeAll(async () => {
  // A resource with TLS, so that "TLS on" runs directly too (a throwaway with a certificate when the local server has none).
  stack = await startMysqlStack({ orders: 100, tls: true });
  server = stack.server;
  direct = stack.direct();
  const [row] = (await server.query("SELECT @@max_allowed_packet AS maxPacket")) as Array<{ maxPacket: number }>;
  // A 20 MiB row needs a bigger max_allowed_packet than some servers' default (16 MiB).
  if (row!.maxPacket < 64 * 1024 * 1024) await server.query("SET GLOBAL max_allowed_packet = 67108864");
  await server.query(
    `CREATE TABLE column_types (
      id INT PRIMARY KEY, t TINYINT, s SMALLINT, m MEDIUMINT, i INT, b BIGINT, u BIGINT UNSIGNED,
      f FLOAT, d DOUBLE, dec_ DECIMAL(20, 6), dt DATE, dtm DATETIME(6), ts TIMESTAMP(3) NULL, tm TIME(3), y YEAR,
      c CHAR(5), vc VARCHAR(100), bin BINARY(4), vb VARBINARY(16), tb TINYBLOB, bl BLOB, mb MEDIUMBLOB, lb LONGBLOB,
      tx TEXT, e ENUM('red', 'green'), st SET('a', 'b', 'c'), bt BIT(12), js JSON
    )`,
    direct.database,
  );
});

afterAll(async () => {
  await stack?.stop();
});

const ROW = {
  t: -128, s: 32767, m: -8388608, i: 2147483647, b: "-9223372036854775808", u: "18446744073709551615",
  f: 1.5, d: 2.718281828459045, dec_: "12345678901234.123456", dt: "2026-12-04", dtm: "2026-12-04 17:01:02.123456", ts: "2026-12-04 17:01:02.500", tm: "-838:59:58.999", y: 2026,
  c: "abc", vc: "ünïcødé ✓ 'quoted' \\ back", bin: Buffer.from([0, 1, 2, 255]), vb: Buffer.from("var\0bin"), tb: Buffer.from([0xde, 0xad]), bl: randomBytes(60_000), mb: randomBytes(1_000_000), lb: randomBytes(5 * 1024 * 1024),
  tx: "line\nbreak\ttab", e: "green", st: "a,c", bt: Buffer.from([0x0a, 0xbc]), js: '{"k": [1, 2, null]}',
};
const COLUMNS = Object.keys(ROW) as Array<keyof typeof ROW>;

/** The connection options that make values compare exactly (no float dates, no lossy big numbers). */
function options(e: MysqlEndpoint, extra: mysql.ConnectionOptions = {}): mysql.ConnectionOptions {
  return { ...mysql2Options(e), dateStrings: true, supportBigNumbers: true, bigNumberStrings: true, timezone: "+00:00", ...extra };
}

const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

/** A row as compared: buffers by length and hash (a 5 MiB diff is unreadable), JSON parsed (the server may reformat it). */
function comparable(row: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(row).map(([k, v]) => [k, Buffer.isBuffer(v) ? `${v.length} bytes ${sha(v)}` : k === "js" && typeof v === "string" ? JSON.parse(v) : typeof v === "number" && k === "f" ? Math.fround(v) : v]),
  );
}

const paths: Array<{ name: string; endpoint: () => MysqlEndpoint }> = [
  { name: "directly", endpoint: () => direct },
  { name: "through the gateway", endpoint: () => stack!.endpoint() },
];

for (const path of paths) {
  const viaGateway = path !== paths[0];
  describe(`mysql2 ${path.name}`, () => {
    it("text queries: rows, affected rows and insert ids, and the server's own error", async () => {
      const c = await mysql.createConnection(options(path.endpoint()));
      try {
        const [rows] = await c.query("SELECT COUNT(*) AS n, SUM(amount) AS total FROM orders WHERE customer = ?", ["customer-1"]);
        expect(rows).toEqual([{ n: "2", total: "9.90" }]); // bigNumberStrings: COUNT is a BIGINT
        // mysql2 asks for CLIENT_FOUND_ROWS: affected rows are the rows matched, not only those changed.
        const [updated] = await c.query("UPDATE orders SET amount = amount WHERE id <= 10");
        expect(updated).toMatchObject({ affectedRows: 10, changedRows: 0 });
        await expect(c.query("SELECT * FROM nowhere")).rejects.toMatchObject({ errno: 1146, sqlState: "42S02", code: "ER_NO_SUCH_TABLE" });
        const [[again]] = (await c.query("SELECT 'still usable' AS s")) as unknown as [Array<{ s: string }>];
        expect(again).toEqual({ s: "still usable" });
      } finally {
        await c.end();
      }
    });

    it("prepared statements over every column type, and a row of NULLs, read back the same by the binary and the text protocol", async () => {
      const c = await mysql.createConnection(options(path.endpoint()));
      const id = viaGateway ? 2 : 1;
      try {
        await c.execute(`DELETE FROM column_types WHERE id IN (?, ?)`, [id, id + 10]);
        await c.execute(`INSERT INTO column_types (id, ${COLUMNS.join(", ")}) VALUES (?, ${COLUMNS.map(() => "?").join(", ")})`, [id, ...COLUMNS.map((k) => ROW[k])]);
        await c.execute(`INSERT INTO column_types (id, ${COLUMNS.join(", ")}) VALUES (?, ${COLUMNS.map(() => "?").join(", ")})`, [id + 10, ...COLUMNS.map(() => null)]);
        const [binary] = (await c.execute(`SELECT ${COLUMNS.join(", ")} FROM column_types WHERE id = ?`, [id])) as unknown as [Array<Record<string, unknown>>];
        const [text] = (await c.query(`SELECT ${COLUMNS.join(", ")} FROM column_types WHERE id = ?`, [id])) as unknown as [Array<Record<string, unknown>>];
        const expected = comparable(ROW);
        expect(comparable(binary[0]!)).toEqual(expected);
        expect(comparable(text[0]!)).toEqual(expected);
        const [nulls] = (await c.execute(`SELECT ${COLUMNS.join(", ")} FROM column_types WHERE id = ?`, [id + 10])) as unknown as [Array<Record<string, unknown>>];
        expect(nulls[0]).toEqual(Object.fromEntries(COLUMNS.map((k) => [k, null])));
      } finally {
        await c.end();
      }
    });

    it("a 20 MiB row both ways: sent as a parameter and selected back (packets split at 16 MiB)", async () => {
      const c = await mysql.createConnection(options(path.endpoint()));
      const id = viaGateway ? 3 : 4;
      const big = randomBytes(20 * 1024 * 1024);
      try {
        await c.execute("DELETE FROM column_types WHERE id = ?", [id]);
        await c.execute("INSERT INTO column_types (id, lb) VALUES (?, ?)", [id, big]);
        const [rows] = (await c.query("SELECT lb, LENGTH(lb) AS n, SHA2(lb, 256) AS digest FROM column_types WHERE id = ?", [id])) as unknown as [Array<{ lb: Buffer; n: number; digest: string }>];
        expect(rows[0]!.n).toBe(big.length);
        expect(rows[0]!.digest).toBe(sha(big));
        expect(sha(rows[0]!.lb)).toBe(sha(big));
        const [[generated]] = (await c.query("SELECT REPEAT('x', 20 * 1024 * 1024) AS s")) as unknown as [Array<{ s: string }>];
        expect(generated!.s.length).toBe(20 * 1024 * 1024);
      } finally {
        await c.end();
      }
    });

    it("a pool of 4 connections runs 40 concurrent queries, each answer its own", async () => {
      const pool = mysql.createPool({ ...options(path.endpoint()), connectionLimit: 4 });
      try {
        const answers = await Promise.all(
          Array.from({ length: 40 }, async (_, k) => {
            const [rows] = (await pool.query("SELECT id, customer FROM orders WHERE id = ?", [k + 1])) as unknown as [Array<{ id: number; customer: string }>];
            return rows[0];
          }),
        );
        expect(answers).toEqual(Array.from({ length: 40 }, (_, k) => ({ id: k + 1, customer: `customer-${(k + 1) % 97}` })));
      } finally {
        await pool.end();
      }
      if (!viaGateway) return;
      const sessions = await stack!.waitForSessions((s) => s.identity.name === IDENTITY && s.connection === "app", { count: 1 });
      expect(sessions.length).toBeGreaterThan(0);
    });

    it("multiple statements in one query: one result per statement, an error stops the rest", async () => {
      const c = await mysql.createConnection(options(path.endpoint(), { multipleStatements: true }));
      try {
        const [results] = (await c.query("SELECT 1 AS a; UPDATE orders SET amount = amount WHERE id <= 3; SELECT 'x' AS b, 'y' AS c")) as unknown as [unknown[]];
        expect(results).toHaveLength(3);
        expect(results[0]).toEqual([{ a: 1 }]);
        expect(results[1]).toMatchObject({ affectedRows: 3 });
        expect(results[2]).toEqual([{ b: "x", c: "y" }]);
        await expect(c.query("SELECT 1; SELECT * FROM nowhere; SELECT 3")).rejects.toMatchObject({ errno: 1146 });
      } finally {
        await c.end();
      }
    });

    it("COM_RESET_CONNECTION: the session's variables are cleared and it goes on", async () => {
      const e = path.endpoint();
      const client = await rawLogin({ host: e.host, port: e.port, user: e.user, password: e.password ?? "", database: e.database });
      /** The first column of the single row of a text result set (null for SQL NULL), reading up to its final EOF. */
      const singleValue = async (sql: string): Promise<string | null> => {
        client.write(comQuery(sql));
        const packets: Packet[] = [];
        // column count, column definition, EOF, row, EOF (the raw client does not ask for CLIENT_DEPRECATE_EOF)
        for (let i = 0; i < 5; i++) packets.push((await client.next())!);
        const row = packets[3]!.payload;
        return row[0] === 0xfb ? null : row.toString("utf8", 1, 1 + row[0]!);
      };
      try {
        client.write(comQuery("SET @gatehouse_e2e = 42"));
        expect((await client.next())?.payload[0]).toBe(0x00);
        expect(await singleValue("SELECT @gatehouse_e2e")).toBe("42");
        client.write(packet(0, Buffer.from([0x1f]))); // COM_RESET_CONNECTION
        expect((await client.next())?.payload[0]).toBe(0x00);
        expect(await singleValue("SELECT @gatehouse_e2e")).toBeNull();
        expect(await singleValue("SELECT COUNT(*) FROM orders")).toBe("100");
      } finally {
        client.destroy();
      }
    });

    it("TLS on and off: the same answers either way", async () => {
      expect(server.tls).toBe(true);
      for (const tls of [false, true]) {
        const c = await mysql.createConnection({ ...options(path.endpoint()), ...mysql2Options(path.endpoint(), { tls }) });
        try {
          const [[row]] = (await c.query("SELECT COUNT(*) AS n FROM orders")) as unknown as [Array<{ n: number }>];
          expect(row).toEqual({ n: "100" });
          if (!viaGateway) {
            // Directly, the server itself says whether this session is inside TLS.
            const [[status]] = (await c.query("SHOW SESSION STATUS LIKE 'Ssl_version'")) as unknown as [Array<{ Value: string }>];
            expect(status!.Value).toMatch(tls ? /^TLSv1\.[23]$/ : /^$/);
          }
        } finally {
          await c.end();
        }
      }
    });
  });
}

describe("the connector's own TLS to the resource (target.tls)", () => {
  it("through the gateway, connection app-tls reaches the server inside TLS (verify-full with the throwaway's CA), app in plaintext", async () => {
    const session = async (connection: string) => {
      const c = await mysql.createConnection(options(stack!.endpoint({ connection })));
      try {
        const [[status]] = (await c.query("SHOW SESSION STATUS LIKE 'Ssl_version'")) as unknown as [Array<{ Value: string }>];
        const [[count]] = (await c.query("SELECT COUNT(*) AS n FROM orders")) as unknown as [Array<{ n: string }>];
        return { tls: status!.Value, rows: count!.n };
      } finally {
        await c.end();
      }
    };
    // The server's own status, not the gateway's word: what it saw on the connector's connection.
    expect(await session("app-tls")).toEqual({ tls: expect.stringMatching(/^TLSv1\.[23]$/), rows: "100" });
    expect(await session("app")).toEqual({ tls: "", rows: "100" });
  });
});

describe(`mysql2 changeUser`, () => {
  it("works directly, but through the gateway is refused: a session cannot change identity", async () => {
    const plain = await mysql.createConnection(options(direct));
    try {
      await plain.changeUser({ user: direct.user, ...(direct.password === null ? {} : { password: direct.password }) });
      const [[row]] = (await plain.query("SELECT 1 AS one")) as unknown as [Array<{ one: number }>];
      expect(row).toEqual({ one: 1 });
    } finally {
      await plain.end();
    }
    const c = await mysql.createConnection(options(stack!.endpoint()));
    c.on("error", () => undefined);
    try {
      const refused = await c.changeUser({ user: "someone-else", password: "x" }).then(
        () => undefined,
        (error: unknown) => error as { errno?: number; sqlMessage?: string },
      );
      expect(refused).toBeDefined();
      expect(refused!.errno).toBeGreaterThan(0);
      expect(refused!.sqlMessage).toMatch(/change.?user|identity/i);
    } finally {
      c.destroy();
    }
    const [session] = await stack!.waitForSessions((s) => s.identity.name === IDENTITY && s.connection === "app");
    expect(session!.session.identity.name).toBe(IDENTITY);
  });
});
