/**
 * The basic data types of MySQL payloads: fixed-length little-endian integers, length-encoded
 * integers and strings, NUL-terminated and rest-of-packet strings.
 * https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_basic_data_types.html
 *
 * `PayloadReader` is a cursor over one packet's payload; every read checks the bytes are there
 * and throws a PROTOCOL_VIOLATION naming the field otherwise. `PayloadWriter` builds a payload.
 */
import { violation } from "./errors.js";

const utf8 = new TextDecoder("utf-8");
const encoder = new TextEncoder();

/** The first byte of a length-encoded integer that means NULL (in result rows only). */
export const LENENC_NULL = 0xfb;

export class PayloadReader {
  private readonly view: DataView;
  offset = 0;

  constructor(readonly bytes: Uint8Array, private readonly what = "packet") {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  get remaining(): number {
    return this.bytes.byteLength - this.offset;
  }

  private need(n: number, field: string): void {
    if (this.remaining < n) {
      throw violation(`${this.what}: truncated ${field} (needs ${n} bytes, ${this.remaining} left)`, { field, offset: this.offset });
    }
  }

  u8(field = "int<1>"): number {
    this.need(1, field);
    return this.bytes[this.offset++]!;
  }

  u16(field = "int<2>"): number {
    this.need(2, field);
    const value = this.view.getUint16(this.offset, true);
    this.offset += 2;
    return value;
  }

  u24(field = "int<3>"): number {
    this.need(3, field);
    const value = this.view.getUint16(this.offset, true) | (this.bytes[this.offset + 2]! << 16);
    this.offset += 3;
    return value;
  }

  u32(field = "int<4>"): number {
    this.need(4, field);
    const value = this.view.getUint32(this.offset, true);
    this.offset += 4;
    return value;
  }

  u64(field = "int<8>"): bigint {
    this.need(8, field);
    const value = this.view.getBigUint64(this.offset, true);
    this.offset += 8;
    return value;
  }

  /**
   * int<lenenc> as a number; values above 2^53 are a violation (no length or count we accept
   * is that large). Returns null for 0xFB (NULL in a text row).
   */
  lenencIntOrNull(field = "int<lenenc>"): number | null {
    const first = this.u8(field);
    if (first < 0xfb) return first;
    if (first === LENENC_NULL) return null;
    if (first === 0xfc) return this.u16(field);
    if (first === 0xfd) return this.u24(field);
    if (first === 0xfe) {
      const value = this.u64(field);
      if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw violation(`${this.what}: ${field} too large`, { field });
      return Number(value);
    }
    throw violation(`${this.what}: invalid length-encoded integer prefix 0xff in ${field}`, { field, offset: this.offset - 1 });
  }

  lenencInt(field = "int<lenenc>"): number {
    const value = this.lenencIntOrNull(field);
    if (value === null) throw violation(`${this.what}: unexpected NULL in ${field}`, { field });
    return value;
  }

  /** string<fix> as a view. */
  bytesOf(n: number, field = "string<fix>"): Uint8Array {
    this.need(n, field);
    const out = this.bytes.subarray(this.offset, this.offset + n);
    this.offset += n;
    return out;
  }

  skip(n: number, field = "filler"): void {
    this.need(n, field);
    this.offset += n;
  }

  /** string<NUL> as bytes (view), the NUL consumed. */
  nulBytes(field = "string<NUL>"): Uint8Array {
    const end = this.bytes.indexOf(0, this.offset);
    if (end < 0) throw violation(`${this.what}: ${field} is not NUL-terminated`, { field, offset: this.offset });
    const out = this.bytes.subarray(this.offset, end);
    this.offset = end + 1;
    return out;
  }

  nulString(field = "string<NUL>"): string {
    return utf8.decode(this.nulBytes(field));
  }

  /** string<NUL>, or the rest of the packet when no NUL follows (servers that omit the terminator). */
  nulStringOrRest(field = "string<NUL>"): string {
    return this.bytes.indexOf(0, this.offset) < 0 ? utf8.decode(this.rest()) : this.nulString(field);
  }

  lenencBytes(field = "string<lenenc>"): Uint8Array {
    return this.bytesOf(this.lenencInt(field), field);
  }

  lenencString(field = "string<lenenc>"): string {
    return utf8.decode(this.lenencBytes(field));
  }

  /** string<EOF>: the rest of the payload, as a view. */
  rest(): Uint8Array {
    const out = this.bytes.subarray(this.offset);
    this.offset = this.bytes.byteLength;
    return out;
  }

  restString(): string {
    return utf8.decode(this.rest());
  }
}

export class PayloadWriter {
  private buffer: Uint8Array;
  private view: DataView;
  private length = 0;

  constructor(initial = 64) {
    this.buffer = new Uint8Array(initial);
    this.view = new DataView(this.buffer.buffer);
  }

  private ensure(n: number): void {
    if (this.length + n <= this.buffer.byteLength) return;
    const grown = new Uint8Array(Math.max(this.buffer.byteLength * 2, this.length + n));
    grown.set(this.buffer.subarray(0, this.length));
    this.buffer = grown;
    this.view = new DataView(grown.buffer);
  }

  u8(value: number): this {
    this.ensure(1);
    this.buffer[this.length++] = value & 0xff;
    return this;
  }

  u16(value: number): this {
    this.ensure(2);
    this.view.setUint16(this.length, value & 0xffff, true);
    this.length += 2;
    return this;
  }

  u24(value: number): this {
    this.ensure(3);
    this.view.setUint16(this.length, value & 0xffff, true);
    this.buffer[this.length + 2] = (value >>> 16) & 0xff;
    this.length += 3;
    return this;
  }

  u32(value: number): this {
    this.ensure(4);
    this.view.setUint32(this.length, value >>> 0, true);
    this.length += 4;
    return this;
  }

  u64(value: bigint): this {
    this.ensure(8);
    this.view.setBigUint64(this.length, value, true);
    this.length += 8;
    return this;
  }

  lenencInt(value: number): this {
    if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`invalid length-encoded integer ${value}`);
    if (value < 0xfb) return this.u8(value);
    if (value < 0x10000) return this.u8(0xfc).u16(value);
    if (value < 0x1000000) return this.u8(0xfd).u24(value);
    return this.u8(0xfe).u64(BigInt(value));
  }

  bytes(value: Uint8Array): this {
    this.ensure(value.byteLength);
    this.buffer.set(value, this.length);
    this.length += value.byteLength;
    return this;
  }

  zeros(n: number): this {
    this.ensure(n);
    this.buffer.fill(0, this.length, this.length + n);
    this.length += n;
    return this;
  }

  string(value: string): this {
    return this.bytes(encoder.encode(value));
  }

  nulString(value: string): this {
    return this.string(value).u8(0);
  }

  lenencBytes(value: Uint8Array): this {
    return this.lenencInt(value.byteLength).bytes(value);
  }

  lenencString(value: string): this {
    return this.lenencBytes(encoder.encode(value));
  }

  finish(): Uint8Array {
    return this.buffer.slice(0, this.length);
  }
}

export function utf8Bytes(value: string): Uint8Array {
  return encoder.encode(value);
}

export { concatBytes } from "../shared/chunk-queue.js";
