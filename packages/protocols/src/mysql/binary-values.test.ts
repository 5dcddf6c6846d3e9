import { describe, expect, it } from "vitest";
import type { CaptureBudget } from "./binary-values.js";
import { PayloadCursor, captureBytes, readBinaryValue } from "./binary-values.js";
import { ColumnType } from "./constants.js";
import { MysqlProtocolError } from "./errors.js";

const budget = (maxParamBytes = 4096, remaining = 65536): CaptureBudget => ({ maxParamBytes, remaining, exhausted: false });
const read = (type: number, bytes: number[], unsigned = false) => {
  const cursor = new PayloadCursor(Uint8Array.from(bytes));
  const value = readBinaryValue(cursor, type, unsigned, budget());
  expect(cursor.remaining).toBe(0);
  return value;
};

describe("binary protocol values", () => {
  it("reads integers signed and unsigned", () => {
    expect(read(ColumnType.MYSQL_TYPE_TINY, [0xff])).toBe("-1");
    expect(read(ColumnType.MYSQL_TYPE_TINY, [0xff], true)).toBe("255");
    expect(read(ColumnType.MYSQL_TYPE_SHORT, [0x00, 0x80])).toBe("-32768");
    expect(read(ColumnType.MYSQL_TYPE_YEAR, [0xe8, 0x07])).toBe("2024");
    expect(read(ColumnType.MYSQL_TYPE_LONG, [0xff, 0xff, 0xff, 0xff], true)).toBe("4294967295");
    expect(read(ColumnType.MYSQL_TYPE_INT24, [0xfe, 0xff, 0xff, 0xff])).toBe("-2");
    expect(read(ColumnType.MYSQL_TYPE_LONGLONG, [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], true)).toBe("18446744073709551615");
  });

  it("reads floats as the server prints them", () => {
    expect(read(ColumnType.MYSQL_TYPE_FLOAT, [...Buffer.from(new Float32Array([0.1]).buffer)])).toBe("0.1");
    expect(read(ColumnType.MYSQL_TYPE_DOUBLE, [...Buffer.from(new Float64Array([-2.5e-300]).buffer)])).toBe("-2.5e-300");
  });

  it("reads every length of DATE, DATETIME and TIME", () => {
    expect(read(ColumnType.MYSQL_TYPE_DATE, [0])).toBe("0000-00-00");
    expect(read(ColumnType.MYSQL_TYPE_DATE, [4, 0xe8, 0x07, 2, 29])).toBe("2024-02-29");
    expect(read(ColumnType.MYSQL_TYPE_DATETIME, [7, 0xe8, 0x07, 1, 2, 3, 4, 5])).toBe("2024-01-02 03:04:05");
    expect(read(ColumnType.MYSQL_TYPE_TIMESTAMP, [11, 0xe8, 0x07, 1, 2, 3, 4, 5, 0x40, 0xe2, 0x01, 0])).toBe("2024-01-02 03:04:05.123456");
    expect(read(ColumnType.MYSQL_TYPE_TIME, [0])).toBe("00:00:00");
    expect(read(ColumnType.MYSQL_TYPE_TIME, [8, 1, 1, 0, 0, 0, 2, 3, 4])).toBe("-26:03:04");
    expect(read(ColumnType.MYSQL_TYPE_TIME, [12, 0, 0, 0, 0, 0, 12, 34, 56, 1, 0, 0, 0])).toBe("12:34:56.000001");
    expect(() => read(ColumnType.MYSQL_TYPE_TIME, [5, 0, 0, 0, 0, 0])).toThrow(MysqlProtocolError);
  });

  it("reads strings as text, other bytes as hex, and caps both", () => {
    expect(read(ColumnType.MYSQL_TYPE_VAR_STRING, [2, 0x68, 0x69])).toBe("hi");
    expect(read(ColumnType.MYSQL_TYPE_BLOB, [2, 0xff, 0x00])).toEqual({ hex: "ff00", bytes: 2, truncated: false });
    expect(captureBytes(Buffer.from("héllo"), budget(2))).toEqual({ text: "h", bytes: 6, truncated: true });
    expect(captureBytes(Uint8Array.from([0xff, 0xfe, 0xfd]), budget(2))).toEqual({ hex: "fffe", bytes: 3, truncated: true });
    const spent = budget(4096, 10);
    expect(captureBytes(Buffer.from("a"), spent)).toBe("a");
    expect(captureBytes(Buffer.from("b"), spent)).toBeUndefined();
    expect(spent.exhausted).toBe(true);
  });

  it("reads an 8-byte length as the server does: the low 4 bytes", () => {
    const cursor = new PayloadCursor(Uint8Array.from([0xfe, 2, 0, 0, 0, 2, 0, 0, 0, 0x6f, 0x6b]));
    expect(readBinaryValue(cursor, ColumnType.MYSQL_TYPE_STRING, false, budget())).toBe("ok");
  });

  it("throws a coded error on a truncated value", () => {
    expect(() => read(ColumnType.MYSQL_TYPE_LONGLONG, [1, 2, 3])).toThrow(MysqlProtocolError);
    expect(() => read(ColumnType.MYSQL_TYPE_VAR_STRING, [5, 0x61])).toThrow(MysqlProtocolError);
  });
});
