/**
 * The MySQL observer against traffic captured from a real MariaDB (found by @gatehouse/test-servers:
 * the env URL, the local server, else a throwaway; as its administrator) with real clients (mysql2, the `mariadb` CLI) through a recording proxy; each
 * capture is fed whole and cut at many offsets, and must give the same events.
 */
import { execFile } from "node:child_process";
import { Readable } from "node:stream";
import { promisify } from "node:util";
import mysql from "mysql2/promise";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { findMariadb, type MariadbServer } from "@gatehouse/test-servers";
import { Capability, hasCapability } from "../src/mysql/constants.js";
import type { MysqlCapture } from "./helpers/mysql-capture.js";
import { captureMysql } from "./helpers/mysql-capture.js";
import { replayMysql, summary } from "./helpers/mysql-observer-harness.js";

const DB = "gatehouse_observer_test";
const run = promisify(execFile);

let server: MariadbServer;

/** A mysql2 connection through the recording proxy on `port`, as the server's administrator. */
async function connect(port: number, extra: mysql.ConnectionOptions = {}): Promise<mysql.Connection> {
  return mysql.createConnection({ host: "127.0.0.1", port, user: server.user, ...(server.password === null ? {} : { password: server.password }), database: DB, ...extra });
}

/** Records what `drive(port)` exchanges with the server through the proxy. */
const captureFromServer = (drive: (port: number) => Promise<void>): Promise<MysqlCapture> => captureMysql(drive, { host: server.host, port: server.port });

function expectSameAtEveryCut(capture: MysqlCapture, cuts: Iterable<number>): void {
  const whole = summary(replayMysql(capture));
  for (const cut of cuts) expect(summary(replayMysql(capture, cut)), `cut at ${cut}`).toEqual(whole);
}

const range = (from: number, to: number): number[] => Array.from({ length: to - from }, (_, i) => from + i);

beforeAll(async () => {
  server = await findMariadb();
  // A 20 MiB row needs a larger max_allowed_packet than MariaDB's default 16 MiB (new connections pick it up).
  server.sql(`SET GLOBAL max_allowed_packet = 67108864; CREATE DATABASE IF NOT EXISTS ${DB}`);
});

afterAll(async () => {
  await server?.stop();
});

describe("mysql2 text protocol", () => {
  let capture: MysqlCapture;
  beforeAll(async () => {
    capture = await captureFromServer(async (port) => {
      const conn = await connect(port, { multipleStatements: true });
      await conn.query("DROP TABLE IF EXISTS t; CREATE TABLE t (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(20))");
      await conn.query("INSERT INTO t (name) VALUES ('a'), ('b'), ('c')");
      await conn.query("SELECT name FROM t WHERE name <> 'x;y' /* ; */ ORDER BY id; SELECT 1 AS `a;b`");
      await conn.query("SELECT * FROM no_such_table; SELECT 2").catch(() => undefined);
      await conn.query("DROP PROCEDURE IF EXISTS two_sets");
      await conn.query("CREATE PROCEDURE two_sets() BEGIN SELECT 1; SELECT 2 UNION SELECT 3; END");
      await conn.query("CALL two_sets(); SELECT 4");
      await conn.query("BEGIN");
      await conn.query("UPDATE t SET name = 'z' WHERE id > 1");
      await conn.query("COMMIT");
      await conn.query("KILL QUERY 987654321").catch(() => undefined);
      await conn.ping();
      await conn.end();
    });
  });

  it("records each statement of a multi-statement query, CALL's result sets, errors, transactions", () => {
    const sink = replayMysql(capture);
    const done = sink.completed;
    const find = (text: string) => done.find((c) => c.command.text === text);

    expect(hasCapability(capture.capabilities, Capability.CLIENT_DEPRECATE_EOF)).toBe(false);
    expect(find("CREATE TABLE t (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(20))")?.command).toMatchObject({ statementIndex: 1, statementCount: 2 });
    expect(find("INSERT INTO t (name) VALUES ('a'), ('b'), ('c')")?.outcome).toMatchObject({ status: "ok", affectedRows: 3, lastInsertId: 1 });
    expect(find("SELECT name FROM t WHERE name <> 'x;y' /* ; */ ORDER BY id")?.outcome).toMatchObject({ status: "ok", rows: 3, resultSets: 1 });
    expect(find("SELECT 1 AS `a;b`")?.outcome).toMatchObject({ status: "ok", rows: 1 });
    expect(find("SELECT * FROM no_such_table")?.outcome).toMatchObject({ status: "error", error: { errno: 1146, sqlState: "42S02" } });
    expect(find("SELECT 2")?.outcome.status).toBe("skipped");
    expect(find("CALL two_sets()")?.outcome).toMatchObject({ status: "ok", rows: 3, resultSets: 2 });
    expect(find("SELECT 4")?.outcome).toMatchObject({ status: "ok", rows: 1 });
    expect(find("BEGIN")?.outcome).toMatchObject({ inTransaction: true });
    expect(find("UPDATE t SET name = 'z' WHERE id > 1")?.outcome).toMatchObject({ affectedRows: 2, inTransaction: true });
    expect(find("COMMIT")?.outcome).toMatchObject({ inTransaction: false });
    expect(find("KILL QUERY 987654321")).toMatchObject({ command: { kind: "kill" }, outcome: { status: "error", error: { errno: 1094 } } });
    expect(done.filter((c) => c.command.kind === "ping")).toHaveLength(1);
    expect(done.at(-1)?.command.kind).toBe("quit");
    expect(sink.events.some((e) => e.event === "terminated")).toBe(true);
    // Every started command completed, none interrupted.
    expect(sink.events.filter((e) => e.event === "started")).toHaveLength(done.length);
    expect(done.every((c) => c.outcome.status !== "interrupted")).toBe(true);
  });

  it("gives the same events however the chunks are cut", () => {
    expectSameAtEveryCut(capture, range(1, 300));
  });
});

describe("mysql2 prepared statements", () => {
  let capture: MysqlCapture;
  beforeAll(async () => {
    capture = await captureFromServer(async (port) => {
      const conn = await connect(port);
      await conn.query(
        "CREATE OR REPLACE TABLE types (i TINYINT, u INT UNSIGNED, b BIGINT, f FLOAT, d DOUBLE, dec1 DECIMAL(10,2), s VARCHAR(50), bl BLOB, dt DATETIME(6), da DATE, ti TIME, j JSON)",
      );
      const insert = "INSERT INTO types VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
      await conn.execute(insert, [-5, 4000000000, "-9007199254740993", 1.5, 2.25, "12.34", "héllo", Buffer.from([0, 1, 254, 255]), new Date(Date.UTC(2024, 0, 2, 3, 4, 5, 6)), "2024-02-29", "12:34:56", '{"a":1}']);
      await conn.execute(insert, [null, null, null, null, null, null, null, null, null, null, null, null]);
      await conn.execute("SELECT * FROM types WHERE s = ? OR s IS NULL", ["héllo"]);
      await conn.execute("SELECT ? AS big", ["x".repeat(10_000)]);
      await conn.execute("SELECT * FROM no_such_table WHERE a = ?", [1]).catch(() => undefined);
      conn.unprepare("SELECT ? AS big");
      await conn.end();
    });
  });

  it("records statement ids, decoded parameters of every type, NULLs, rows and capped values", () => {
    const sink = replayMysql(capture, undefined, { maxParamBytes: 100 });
    const done = sink.completed;
    const prepares = done.filter((c) => c.command.kind === "prepare");
    expect(prepares.map((c) => c.outcome.paramCount)).toEqual([12, 1, 1, undefined]);
    const executes = done.filter((c) => c.command.kind === "execute");
    expect(executes[0]!.command.text).toBe("INSERT INTO types VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
    expect(executes[0]!.command.statementId).toBe(prepares[0]!.outcome.statementId);
    const params = executes[0]!.command.params!;
    expect(params.slice(0, 7)).toEqual(["-5", "4000000000", "-9007199254740993", "1.5", "2.25", "12.34", "héllo"]);
    expect(params[7]).toEqual({ hex: "0001feff", bytes: 4, truncated: false });
    expect(String(params[8])).toMatch(/^2024-01-0\d \d\d:04:05\.006000$/);
    expect(params.slice(9)).toEqual(["2024-02-29", "12:34:56", '{"a":1}']);
    expect(executes[0]!.outcome).toMatchObject({ status: "ok", affectedRows: 1 });
    expect(executes[1]!.command.params).toEqual(Array(12).fill(null));
    expect(executes[2]!.outcome).toMatchObject({ status: "ok", rows: 2, resultSets: 1 });
    expect(executes[3]!.command.params).toEqual([{ text: "x".repeat(100), bytes: 10_000, truncated: true }]);
    expect(executes[3]!.outcome).toMatchObject({ rows: 1 });
    expect(prepares[3]!.outcome).toMatchObject({ status: "error", error: { errno: 1146, sqlState: "42S02" } });
    const close = done.find((c) => c.command.kind === "close_statement");
    expect(close?.command).toMatchObject({ text: "SELECT ? AS big", statementId: prepares[2]!.outcome.statementId });
  });

  it("gives the same events however the chunks are cut", () => {
    expectSameAtEveryCut(capture, range(1, 200));
  });
});

describe("big rows, LOCAL INFILE, the mariadb CLI", () => {
  it("counts a 20 MiB row (split packets) as one row, and a 20 MiB parameter capped", async () => {
    const capture = await captureFromServer(async (port) => {
      const conn = await connect(port);
      const [rows] = await conn.query("SELECT REPEAT('x', 20 * 1024 * 1024) AS big");
      expect((rows as { big: string }[])[0]!.big).toHaveLength(20 * 1024 * 1024);
      await conn.execute("SELECT LENGTH(?) AS n", ["y".repeat(20 * 1024 * 1024)]);
      await conn.end();
    });
    for (const cut of [undefined, 3, 0xffffff + 2, 0xffffff + 4, 1 << 24]) {
      const done = replayMysql(capture, cut).completed;
      expect(done.find((c) => c.command.kind === "query")?.outcome).toMatchObject({ status: "ok", rows: 1 });
      const execute = done.find((c) => c.command.kind === "execute");
      expect(execute?.command.params).toEqual([{ text: "y".repeat(4096), bytes: 20 * 1024 * 1024, truncated: true }]);
      expect(execute?.outcome).toMatchObject({ status: "ok", rows: 1 });
    }
  });

  it("exposes a LOAD DATA LOCAL INFILE request and counts the file's bytes", async () => {
    const file = "a\nb\nc\n";
    const capture = await captureFromServer(async (port) => {
      const conn = await connect(port, { infileStreamFactory: () => Readable.from([Buffer.from(file)]) });
      await conn.query("CREATE OR REPLACE TABLE infile_lines (v VARCHAR(10))");
      await conn.query({ sql: "LOAD DATA LOCAL INFILE '/tmp/lines.txt' INTO TABLE infile_lines", infileStreamFactory: () => Readable.from([Buffer.from(file)]) });
      await conn.query("SELECT 1");
      await conn.end();
    });
    const sink = replayMysql(capture);
    expect(sink.events).toContainEqual({ event: "localInfile", fileName: "/tmp/lines.txt" });
    const load = sink.completed.find((c) => c.command.text.startsWith("LOAD DATA"));
    expect(load?.outcome).toMatchObject({ status: "ok", affectedRows: 3, localInfile: { fileName: "/tmp/lines.txt", bytes: file.length } });
    expect(sink.completed.find((c) => c.command.text === "SELECT 1")?.outcome).toMatchObject({ rows: 1 });
    expectSameAtEveryCut(capture, range(1, 60));
  });

  it("records the mariadb CLI's statements and errors", async () => {
    const capture = await captureFromServer(async (port) => {
      await run("mariadb", ["-h", "127.0.0.1", "-P", String(port), "-u", server.user, "-e", `USE ${DB}; SELECT 1 UNION SELECT 2; SELECT * FROM no_such_table`], {
        env: { ...process.env, ...(server.password === null ? {} : { MYSQL_PWD: server.password }) },
      }).catch(() => undefined);
    });
    const done = replayMysql(capture).completed;
    // The CLI turns `USE` into COM_INIT_DB.
    expect(done.find((c) => c.command.kind === "init_db")).toMatchObject({ command: { command: "COM_INIT_DB", text: DB }, outcome: { status: "ok" } });
    const mine = done.filter((c) => c.command.text.includes("UNION") || c.command.text.includes("no_such_table"));
    expect(mine.map((c) => [c.command.text, c.outcome.status, c.outcome.rows, c.outcome.error?.errno])).toEqual([
      ["SELECT 1 UNION SELECT 2", "ok", 2, undefined],
      ["SELECT * FROM no_such_table", "error", undefined, 1146],
    ]);
    expectSameAtEveryCut(capture, range(1, 120));
  });
});
