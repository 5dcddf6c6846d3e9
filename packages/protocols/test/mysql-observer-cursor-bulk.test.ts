/**
 * The MySQL observer on what mysql2 never sends, driven with raw packets against a real MariaDB
 * (found by @gatehouse/test-servers) through the recording proxy: a read-only cursor
 * (COM_STMT_EXECUTE with CURSOR_TYPE_READ_ONLY, then COM_STMT_FETCH in batches) with and without
 * CLIENT_DEPRECATE_EOF, and MariaDB's COM_STMT_BULK_EXECUTE built per its documentation. The real
 * server's replies are checked first (so the packets we built are the ones it understands), then
 * what the observer made of the same bytes, whole and cut at many offsets.
 */
import type { Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createMariadbTestAccounts, findMariadb, type MariadbServer, type MariadbTestAccounts } from "@gatehouse/test-servers";
import { BulkFlag } from "../src/mysql/commands.js";
import { Capability, ColumnType, Command, MariadbCapability, ServerStatus, hasCapability } from "../src/mysql/constants.js";
import { PacketReader, encodePacket } from "../src/mysql/framing.js";
import { decodeOkPacket } from "../src/mysql/packets.js";
import { DEFAULT_CLIENT_CAPABILITIES } from "../src/mysql/server-login.js";
import { captureMysql, type MysqlCapture } from "./helpers/mysql-capture.js";
import { mysqlLogin } from "./helpers/mysql-login.js";
import { replayMysql, summary } from "./helpers/mysql-observer-harness.js";

let server: MariadbServer;
let accounts: MariadbTestAccounts;

beforeAll(async () => {
  server = await findMariadb();
  accounts = createMariadbTestAccounts(server, "gh_cursor");
});

afterAll(async () => {
  accounts?.drop();
  await server?.stop();
});

const CURSOR_TYPE_READ_ONLY = 1;
const SELECT = "SELECT id, name FROM t ORDER BY id";
const INSERT = "INSERT INTO t VALUES (?, ?)";

/** Sends one command packet and collects the server's reply packets (until it has been quiet for 150 ms). */
function exchange(socket: Socket, payload: Uint8Array): Promise<Uint8Array[]> {
  const reader = new PacketReader();
  const packets: Uint8Array[] = [];
  socket.write(encodePacket(0, payload));
  return new Promise((resolve) => {
    let timer = setTimeout(done, 1000);
    function done(): void {
      socket.removeListener("data", onData);
      resolve(packets);
    }
    function onData(chunk: Buffer): void {
      reader.push(chunk);
      for (let p = reader.read(); p; p = reader.read()) packets.push(p.payload);
      clearTimeout(timer);
      timer = setTimeout(done, 150);
    }
    socket.on("data", onData);
  });
}

const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
};
const command = (byte: number, ...parts: Uint8Array[]) => Buffer.concat([Buffer.of(byte), ...parts]);
/** One bulk row for (INT, VARCHAR): indicator NONE + int<4>, then NONE + lenenc string or NULL. */
const bulkRow = (id: number, name: string | null) =>
  Buffer.concat([Buffer.of(0), u32(id), name === null ? Buffer.of(1) : Buffer.concat([Buffer.of(0, Buffer.byteLength(name)), Buffer.from(name)])]);

interface Replies {
  execute: Uint8Array[];
  fetches: Uint8Array[][];
  bulk: Uint8Array[];
  bulkRemembered: Uint8Array[];
  bulkDuplicate: Uint8Array[];
}

/** A session that opens a cursor, fetches it in batches of 2, and bulk-inserts 3 rows, 1 row, then a duplicate. */
async function cursorAndBulk(table: string, deprecateEof: boolean, firstId: number): Promise<{ capture: MysqlCapture; replies: Replies }> {
  server.sql(`CREATE TABLE ${table} (id INT PRIMARY KEY, name VARCHAR(20)); INSERT INTO ${table} VALUES (1,'a'),(2,'b'),(3,'c'),(4,'d'),(5,'e')`, accounts.database);
  let replies: Replies | undefined;
  const capture = await captureMysql(
    async (port) => {
      // MariaDB's extended capabilities go only with CLIENT_LONG_PASSWORD clear (it means CLIENT_MYSQL to MariaDB).
      const capabilities = (DEFAULT_CLIENT_CAPABILITIES & ~Capability.CLIENT_LONG_PASSWORD & ~(deprecateEof ? 0 : Capability.CLIENT_DEPRECATE_EOF)) >>> 0;
      const { socket, result } = await mysqlLogin(port, {
        user: accounts.native.user,
        password: accounts.native.password,
        database: accounts.database,
        tls: "disable",
        clientCapabilities: capabilities,
        mariadbCapabilities: MariadbCapability.MARIADB_CLIENT_STMT_BULK_OPERATIONS,
      });
      try {
        if (result.type !== "ready") throw new Error(`login failed: ${JSON.stringify(result)}`);
        expect(result.mariadbCapabilities & MariadbCapability.MARIADB_CLIENT_STMT_BULK_OPERATIONS).not.toBe(0);
        const select = await exchange(socket, command(Command.COM_STMT_PREPARE, Buffer.from(SELECT.replace(" t ", ` ${table} `))));
        const selectId = Buffer.from(select[0]!).readUInt32LE(1);
        const execute = await exchange(socket, command(Command.COM_STMT_EXECUTE, u32(selectId), Buffer.of(CURSOR_TYPE_READ_ONLY), u32(1)));
        const fetches: Uint8Array[][] = [];
        for (let i = 0; i < 3; i++) fetches.push(await exchange(socket, command(Command.COM_STMT_FETCH, u32(selectId), u32(2))));
        const insert = await exchange(socket, command(Command.COM_STMT_PREPARE, Buffer.from(INSERT.replace(" t ", ` ${table} `))));
        const insertId = Buffer.from(insert[0]!).readUInt32LE(1);
        const types = Buffer.of(ColumnType.MYSQL_TYPE_LONG, 0, ColumnType.MYSQL_TYPE_VAR_STRING, 0);
        const flags = Buffer.from([BulkFlag.SEND_TYPES_TO_SERVER, 0]);
        const bulk = await exchange(socket, command(Command.COM_STMT_BULK_EXECUTE, u32(insertId), flags, types, bulkRow(firstId, "x"), bulkRow(firstId + 1, null), bulkRow(firstId + 2, "zz ü")));
        // No types this time: the server (and the observer) use the statement's previous ones.
        const bulkRemembered = await exchange(socket, command(Command.COM_STMT_BULK_EXECUTE, u32(insertId), Buffer.of(0, 0), bulkRow(firstId + 3, "w")));
        const bulkDuplicate = await exchange(socket, command(Command.COM_STMT_BULK_EXECUTE, u32(insertId), flags, types, bulkRow(firstId, "again")));
        replies = { execute, fetches, bulk, bulkRemembered, bulkDuplicate };
      } finally {
        socket.destroy();
      }
    },
    { host: server.host, port: server.port },
  );
  return { capture, replies: replies! };
}

/** The status flags of a terminator (0xFE): an OK packet under CLIENT_DEPRECATE_EOF, else an EOF packet (0xFE | warnings | status). */
function terminatorStatus(payload: Uint8Array, capabilities: number): number {
  expect(payload[0]).toBe(0xfe);
  if (hasCapability(capabilities, Capability.CLIENT_DEPRECATE_EOF)) return decodeOkPacket(payload, capabilities).statusFlags;
  return payload[3]! | (payload[4]! << 8);
}

for (const deprecateEof of [true, false]) {
  describe(`a cursor and bulk inserts against the real MariaDB, ${deprecateEof ? "with" : "without"} CLIENT_DEPRECATE_EOF`, () => {
    const table = `t_${deprecateEof ? "ok" : "eof"}`;
    const firstId = deprecateEof ? 10 : 20;
    let capture: MysqlCapture;
    let replies: Replies;
    beforeAll(async () => {
      ({ capture, replies } = await cursorAndBulk(table, deprecateEof, firstId));
    });

    it("the real server answered as documented: cursor opened, rows in batches, the last with LAST_ROW_SENT; bulk rows inserted", () => {
      expect(hasCapability(capture.capabilities, Capability.CLIENT_DEPRECATE_EOF)).toBe(deprecateEof);
      // Column count, 2 definitions, and one terminator with CURSOR_EXISTS (the EOF after the
      // definitions, or in its place an OK with the 0xFE header): no rows yet.
      const last = replies.execute.at(-1)!;
      expect(replies.execute).toHaveLength(4);
      expect(terminatorStatus(last, capture.capabilities) & ServerStatus.SERVER_STATUS_CURSOR_EXISTS).not.toBe(0);
      expect(replies.fetches.map((f) => f.length - 1)).toEqual([2, 2, 1]);
      expect(replies.fetches.map((f) => (terminatorStatus(f.at(-1)!, capture.capabilities) & ServerStatus.SERVER_STATUS_LAST_ROW_SENT) !== 0)).toEqual([false, false, true]);
      expect(decodeOkPacket(replies.bulk[0]!, capture.capabilities)).toMatchObject({ header: 0, affectedRows: 3 });
      expect(decodeOkPacket(replies.bulkRemembered[0]!, capture.capabilities)).toMatchObject({ header: 0, affectedRows: 1 });
      expect(replies.bulkDuplicate[0]![0]).toBe(0xff);
      expect(server.sql(`SELECT id, IFNULL(name, 'NULL') FROM ${table} WHERE id >= ${firstId} ORDER BY id`, accounts.database)).toBe(
        `${firstId}\tx\n${firstId + 1}\tNULL\n${firstId + 2}\tzz ü\n${firstId + 3}\tw`,
      );
    });

    it("the observer records the cursor's execute and each fetch with its rows, and each bulk execute with its rows and values", () => {
      const done = replayMysql(capture).completed;
      const select = SELECT.replace(" t ", ` ${table} `);
      const insert = INSERT.replace(" t ", ` ${table} `);
      const executes = done.filter((c) => c.command.kind === "execute");
      expect(executes[0]).toMatchObject({ command: { command: "COM_STMT_EXECUTE", text: select }, outcome: { status: "ok", rows: 0, cursorOpened: true } });
      const fetches = done.filter((c) => c.command.kind === "fetch");
      expect(fetches.map((f) => [f.command.text, f.outcome.status, f.outcome.rows, f.outcome.lastRowSent])).toEqual([
        [select, "ok", 2, false],
        [select, "ok", 2, false],
        [select, "ok", 1, true],
      ]);
      expect(executes.slice(1).map((e) => ({ ...e.command, ...e.outcome }))).toEqual([
        expect.objectContaining({ command: "COM_STMT_BULK_EXECUTE", text: insert, bulkRows: 3, paramCount: 2, params: [String(firstId), "x", String(firstId + 1), null, String(firstId + 2), "zz ü"], status: "ok", affectedRows: 3 }),
        expect.objectContaining({ command: "COM_STMT_BULK_EXECUTE", text: insert, bulkRows: 1, params: [String(firstId + 3), "w"], status: "ok", affectedRows: 1 }),
        expect.objectContaining({ command: "COM_STMT_BULK_EXECUTE", text: insert, bulkRows: 1, status: "error", error: expect.objectContaining({ errno: 1062, sqlState: "23000" }) }),
      ]);
      expect(done.some((c) => c.command.kind === "other")).toBe(false);
    });

    it("gives the same records when every chunk is cut at any of the first 60 offsets", () => {
      const whole = summary(replayMysql(capture));
      for (let cut = 1; cut < 60; cut++) expect(summary(replayMysql(capture, cut)), `cut at ${cut}`).toEqual(whole);
    });
  });
}
