import { describe, expect, it } from "vitest";
import type { CaptureBudget } from "./binary-values.js";
import { BulkFlag, decodeStmtBulkExecute } from "./commands.js";
import { ColumnType, Command } from "./constants.js";
import { MysqlProtocolError } from "./errors.js";

const budget = (remaining = 65536): CaptureBudget => ({ maxParamBytes: 4096, remaining, exhausted: false });
const u32 = (n: number) => [n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff, n >>> 24];
/** COM_STMT_BULK_EXECUTE for statement 7 with (BIGINT UNSIGNED, VARCHAR) parameters. */
const bulk = (flags: number, ...rows: number[][]) =>
  Uint8Array.from([
    Command.COM_STMT_BULK_EXECUTE, ...u32(7), flags, 0,
    ...(flags & BulkFlag.SEND_TYPES_TO_SERVER ? [ColumnType.MYSQL_TYPE_LONGLONG, 0x80, ColumnType.MYSQL_TYPE_VAR_STRING, 0] : []),
    ...rows.flat(),
  ]);
const big = [0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]; // NONE + 2^64-1
const text = (s: string) => [0, s.length, ...Buffer.from(s)];

describe("decodeStmtBulkExecute", () => {
  it("reads the types sent, counts the rows and keeps their values row after row (NULL indicator as null)", () => {
    const decoded = decodeStmtBulkExecute(bulk(BulkFlag.SEND_TYPES_TO_SERVER, [...big, ...text("a")], [...big, 1]), 2, undefined, budget());
    expect(decoded).toEqual({
      statementId: 7,
      flags: BulkFlag.SEND_TYPES_TO_SERVER,
      types: [{ type: ColumnType.MYSQL_TYPE_LONGLONG, unsigned: true }, { type: ColumnType.MYSQL_TYPE_VAR_STRING, unsigned: false }],
      rows: 2,
      params: ["18446744073709551615", "a", "18446744073709551615", null],
      paramsTruncated: false,
    });
  });

  it("without types in the packet uses the statement's previous ones; without any, the rows are not counted", () => {
    const types = [{ type: ColumnType.MYSQL_TYPE_LONGLONG, unsigned: true }, { type: ColumnType.MYSQL_TYPE_VAR_STRING, unsigned: false }];
    expect(decodeStmtBulkExecute(bulk(0, [...big, ...text("b")]), 2, types, budget())).toMatchObject({ rows: 1, params: ["18446744073709551615", "b"] });
    expect(decodeStmtBulkExecute(bulk(0, [...big, ...text("b")]), 2, undefined, budget())).toMatchObject({ rows: undefined, params: [], paramsTruncated: true });
  });

  it("a DEFAULT or IGNORE indicator stops the capture (nothing to show in its place) but the rows are still counted", () => {
    const decoded = decodeStmtBulkExecute(bulk(BulkFlag.SEND_TYPES_TO_SERVER, [...big, 2], [...big, ...text("c")], [3, 3]), 2, undefined, budget());
    expect(decoded).toMatchObject({ rows: 3, params: ["18446744073709551615"], paramsTruncated: true });
  });

  it("values beyond the command's budget are counted, not kept", () => {
    const decoded = decodeStmtBulkExecute(bulk(BulkFlag.SEND_TYPES_TO_SERVER, [...big, ...text("d")], [...big, ...text("e")]), 2, undefined, budget(40));
    expect(decoded.rows).toBe(2);
    expect(decoded.paramsTruncated).toBe(true);
    expect(decoded.params.length).toBeLessThan(4);
  });

  it("a row cut short or an unknown indicator is a protocol violation, at every cut", () => {
    const whole = bulk(BulkFlag.SEND_TYPES_TO_SERVER, [...big, ...text("abc")]);
    for (let end = 12; end < whole.byteLength; end++) {
      expect(() => decodeStmtBulkExecute(whole.subarray(0, end), 2, undefined, budget()), `cut at ${end}`).toThrow(MysqlProtocolError);
    }
    expect(() => decodeStmtBulkExecute(bulk(BulkFlag.SEND_TYPES_TO_SERVER, [9]), 2, undefined, budget())).toThrow(/unknown indicator/);
  });
});
