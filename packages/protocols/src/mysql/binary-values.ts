/**
 * Reading payload fields, and the binary protocol's values (COM_STMT_EXECUTE parameters, binary
 * result rows), recorded with the same caps as the Postgres observer's bound values.
 *
 * Field encodings: https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_basic_dt_integers.html
 * Binary values:   https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_binary_resultset.html#sect_protocol_binary_resultset_row_value
 *
 *   TINY                         int<1>
 *   SHORT, YEAR                  int<2>
 *   LONG, INT24                  int<4>
 *   LONGLONG                     int<8>
 *   FLOAT / DOUBLE               IEEE 754, 4 / 8 bytes little-endian
 *   DATE, DATETIME, TIMESTAMP    int<1> length (0, 4, 7 or 11) | year<2> month day [hour min sec [micro<4>]]
 *   TIME                         int<1> length (0, 8 or 12) | negative<1> days<4> hour min sec [micro<4>]
 *   NULL                         nothing
 *   everything else              string<lenenc> (DECIMAL, strings, blobs, ENUM, SET, BIT, JSON, GEOMETRY)
 */
import { ColumnType } from "./constants.js";
import { violation } from "./errors.js";

/**
 * A recorded parameter, as the Postgres observer records one: a value as a string (numbers and
 * temporal values in their SQL text form); SQL NULL as null; bytes that are not UTF-8 as hex
 * (`{ hex }`); a value cut at the cap as `{ text | hex, bytes: full size, truncated: true }`.
 */
export type ObservedParam =
  | string
  | null
  | { readonly hex: string; readonly bytes: number; readonly truncated: boolean }
  | { readonly text: string; readonly bytes: number; readonly truncated: true };

const strictUtf8 = new TextDecoder("utf-8", { fatal: true });
const lenientUtf8 = new TextDecoder("utf-8");

/** A read position in one packet payload; every read checks the bounds and throws a coded violation. */
export class PayloadCursor {
  private readonly view: DataView;
  offset = 0;

  constructor(readonly bytes: Uint8Array, offset = 0) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.offset = offset;
  }

  get remaining(): number {
    return this.bytes.byteLength - this.offset;
  }

  private need(n: number, what: string): void {
    if (this.remaining < n) throw violation(`truncated ${what}`, { need: n, remaining: this.remaining });
  }

  u8(what = "int<1>"): number {
    this.need(1, what);
    return this.bytes[this.offset++]!;
  }

  u16(what = "int<2>"): number {
    this.need(2, what);
    const value = this.view.getUint16(this.offset, true);
    this.offset += 2;
    return value;
  }

  u24(what = "int<3>"): number {
    this.need(3, what);
    const value = this.view.getUint16(this.offset, true) | (this.bytes[this.offset + 2]! << 16);
    this.offset += 3;
    return value;
  }

  u32(what = "int<4>"): number {
    this.need(4, what);
    const value = this.view.getUint32(this.offset, true);
    this.offset += 4;
    return value;
  }

  u64(what = "int<8>"): bigint {
    this.need(8, what);
    const value = this.view.getBigUint64(this.offset, true);
    this.offset += 8;
    return value;
  }

  i64(what = "int<8>"): bigint {
    this.need(8, what);
    const value = this.view.getBigInt64(this.offset, true);
    this.offset += 8;
    return value;
  }

  f32(): number {
    this.need(4, "float");
    const value = this.view.getFloat32(this.offset, true);
    this.offset += 4;
    return value;
  }

  f64(): number {
    this.need(8, "double");
    const value = this.view.getFloat64(this.offset, true);
    this.offset += 8;
    return value;
  }

  /**
   * int<lenenc>; `null` for 0xFB (NULL in a text row). Values above 2^53 are not exact as numbers;
   * they are lengths or counts here, and such lengths fail the bounds check anyway.
   */
  lenenc(what = "int<lenenc>"): number | null {
    const first = this.u8(what);
    if (first < 0xfb) return first;
    if (first === 0xfb) return null;
    if (first === 0xfc) return this.u16(what);
    if (first === 0xfd) return this.u24(what);
    if (first === 0xfe) return Number(this.u64(what));
    throw violation(`invalid ${what} prefix 0xff`);
  }

  /**
   * The length of a string<lenenc> as the server reads it (net_field_length): after 0xFE only the
   * low 4 of the 8 bytes count. mysql2 3.x writes the high half as a copy of the low half for
   * values of 16 MiB and more, and the server accepts that, so the observer must too.
   */
  lenencLength(what = "string<lenenc>"): number | null {
    if (this.remaining > 0 && this.bytes[this.offset] === 0xfe) {
      this.u8(what);
      const low = this.u32(what);
      this.u32(what);
      return low;
    }
    return this.lenenc(what);
  }

  /** string<lenenc> as a view. */
  lenencBytes(what = "string<lenenc>"): Uint8Array {
    const length = this.lenencLength(what);
    if (length === null) throw violation(`unexpected NULL ${what}`);
    return this.take(length, what);
  }

  take(n: number, what = "string<fix>"): Uint8Array {
    this.need(n, what);
    const out = this.bytes.subarray(this.offset, this.offset + n);
    this.offset += n;
    return out;
  }

  /** string<NUL> as a view, the NUL consumed. */
  nulTerminated(what = "string<NUL>"): Uint8Array {
    const end = this.bytes.indexOf(0, this.offset);
    if (end < 0) throw violation(`unterminated ${what}`);
    const out = this.bytes.subarray(this.offset, end);
    this.offset = end + 1;
    return out;
  }

  rest(): Uint8Array {
    const out = this.bytes.subarray(this.offset);
    this.offset = this.bytes.byteLength;
    return out;
  }
}

/** Text for logs and records: invalid UTF-8 is replaced, never thrown on. */
export function decodeText(bytes: Uint8Array): string {
  return lenientUtf8.decode(bytes);
}

/** Length of the longest prefix of `bytes` (at most `limit`) that does not cut a UTF-8 sequence. */
export function utf8Boundary(bytes: Uint8Array, limit: number): number {
  if (bytes.byteLength <= limit) return bytes.byteLength;
  let end = limit;
  // Back up over continuation bytes (10xxxxxx) to the start of the cut character.
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--;
  return end;
}

function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex");
}

/** Budget shared by the values of one command: `maxParamBytes` each, `maxTotalBytes` all together. */
export interface CaptureBudget {
  readonly maxParamBytes: number;
  remaining: number;
  /** Set when a value was counted but not recorded because the budget ran out. */
  exhausted: boolean;
}

/** Fixed per-value charge, so a million empty values are bounded too (as in postgres/param-capture.ts). */
const VALUE_OVERHEAD = 16;

/**
 * Record a byte-string value: UTF-8 text as a string, anything else as hex; cut at
 * `maxParamBytes`. Returns undefined when the command's budget has run out (count it, don't keep it).
 */
export function captureBytes(bytes: Uint8Array, budget: CaptureBudget): ObservedParam | undefined {
  if (budget.remaining <= 0) {
    budget.exhausted = true;
    return undefined;
  }
  const keep = Math.min(bytes.byteLength, budget.maxParamBytes, budget.remaining);
  budget.remaining -= keep + VALUE_OVERHEAD;
  if (keep === bytes.byteLength) {
    try {
      return strictUtf8.decode(bytes);
    } catch {
      return { hex: toHex(bytes), bytes: bytes.byteLength, truncated: false };
    }
  }
  const textEnd = utf8Boundary(bytes, keep);
  try {
    return { text: strictUtf8.decode(bytes.subarray(0, textEnd)), bytes: bytes.byteLength, truncated: true };
  } catch {
    return { hex: toHex(bytes.subarray(0, keep)), bytes: bytes.byteLength, truncated: true };
  }
}

function capturePlain(text: string, budget: CaptureBudget): ObservedParam | undefined {
  if (budget.remaining <= 0) {
    budget.exhausted = true;
    return undefined;
  }
  budget.remaining -= text.length + VALUE_OVERHEAD;
  return text;
}

const pad = (n: number, width = 2): string => String(n).padStart(width, "0");

function temporal(cursor: PayloadCursor, type: number): string {
  const length = cursor.u8("temporal length");
  const body = new PayloadCursor(cursor.take(length, "temporal value"));
  if (type === ColumnType.MYSQL_TYPE_TIME) {
    if (length !== 0 && length !== 8 && length !== 12) throw violation("invalid TIME length", { length });
    if (length === 0) return "00:00:00";
    const negative = body.u8() === 1;
    const days = body.u32();
    const hours = days * 24 + body.u8();
    const text = `${negative ? "-" : ""}${pad(hours)}:${pad(body.u8())}:${pad(body.u8())}`;
    return length === 12 ? `${text}.${pad(body.u32(), 6)}` : text;
  }
  if (length !== 0 && length !== 4 && length !== 7 && length !== 11) throw violation("invalid DATETIME length", { length });
  if (length === 0) return type === ColumnType.MYSQL_TYPE_DATE ? "0000-00-00" : "0000-00-00 00:00:00";
  const date = `${pad(body.u16(), 4)}-${pad(body.u8())}-${pad(body.u8())}`;
  if (length === 4) return type === ColumnType.MYSQL_TYPE_DATE ? date : `${date} 00:00:00`;
  const time = `${date} ${pad(body.u8())}:${pad(body.u8())}:${pad(body.u8())}`;
  return length === 11 ? `${time}.${pad(body.u32(), 6)}` : time;
}

/**
 * One binary-protocol value of `type` at the cursor, recorded within `budget` (undefined when
 * counted only). `unsigned`: the parameter type's flag byte had 0x80 / the column is UNSIGNED.
 */
export function readBinaryValue(cursor: PayloadCursor, type: number, unsigned: boolean, budget: CaptureBudget): ObservedParam | undefined {
  switch (type) {
    case ColumnType.MYSQL_TYPE_NULL:
      return null;
    case ColumnType.MYSQL_TYPE_TINY: {
      const v = cursor.u8();
      return capturePlain(String(unsigned ? v : (v << 24) >> 24), budget);
    }
    case ColumnType.MYSQL_TYPE_SHORT:
    case ColumnType.MYSQL_TYPE_YEAR: {
      const v = cursor.u16();
      return capturePlain(String(unsigned || type === ColumnType.MYSQL_TYPE_YEAR ? v : (v << 16) >> 16), budget);
    }
    case ColumnType.MYSQL_TYPE_LONG:
    case ColumnType.MYSQL_TYPE_INT24: {
      const v = cursor.u32();
      return capturePlain(String(unsigned ? v : v | 0), budget);
    }
    case ColumnType.MYSQL_TYPE_LONGLONG:
      return capturePlain(String(unsigned ? cursor.u64() : cursor.i64()), budget);
    case ColumnType.MYSQL_TYPE_FLOAT:
      // Shortest text that reads back as the same float32, as the server prints it.
      return capturePlain(String(Number(cursor.f32().toPrecision(7))), budget);
    case ColumnType.MYSQL_TYPE_DOUBLE:
      return capturePlain(String(cursor.f64()), budget);
    case ColumnType.MYSQL_TYPE_DATE:
    case ColumnType.MYSQL_TYPE_DATETIME:
    case ColumnType.MYSQL_TYPE_TIMESTAMP:
    case ColumnType.MYSQL_TYPE_TIME:
      return capturePlain(temporal(cursor, type), budget);
    default:
      return captureBytes(cursor.lenencBytes("binary value"), budget);
  }
}

/** Skip one binary-protocol value (binary result rows are counted, not recorded). */
export function skipBinaryValue(cursor: PayloadCursor, type: number): void {
  switch (type) {
    case ColumnType.MYSQL_TYPE_NULL:
      return;
    case ColumnType.MYSQL_TYPE_TINY:
      cursor.take(1);
      return;
    case ColumnType.MYSQL_TYPE_SHORT:
    case ColumnType.MYSQL_TYPE_YEAR:
      cursor.take(2);
      return;
    case ColumnType.MYSQL_TYPE_LONG:
    case ColumnType.MYSQL_TYPE_INT24:
    case ColumnType.MYSQL_TYPE_FLOAT:
      cursor.take(4);
      return;
    case ColumnType.MYSQL_TYPE_LONGLONG:
    case ColumnType.MYSQL_TYPE_DOUBLE:
      cursor.take(8);
      return;
    case ColumnType.MYSQL_TYPE_DATE:
    case ColumnType.MYSQL_TYPE_DATETIME:
    case ColumnType.MYSQL_TYPE_TIMESTAMP:
    case ColumnType.MYSQL_TYPE_TIME:
      cursor.take(cursor.u8("temporal length"));
      return;
    default:
      cursor.lenencBytes("binary value");
  }
}
