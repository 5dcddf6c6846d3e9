/**
 * Byte-level reading and writing of the protocol's field types (Int8/16/32, String = NUL-terminated
 * UTF-8, Byte[n]). Every read is bounds-checked and fails with a `PROTOCOL_VIOLATION`, so the
 * message decoders above never index past a body.
 */
import { violation } from "./errors.js";

const utf8Decoder = new TextDecoder("utf-8");
const utf8Encoder = new TextEncoder();

export const EMPTY_BYTES: Uint8Array = new Uint8Array(0);

/** Decode UTF-8 without throwing (invalid sequences become U+FFFD, as a log viewer would show them). */
export function decodeUtf8(bytes: Uint8Array): string {
  const n = bytes.byteLength;
  if (n === 0) return "";
  if (n <= 64) {
    // Names, tags and small parameters are short ASCII: skip TextDecoder's per-call overhead.
    let out = "";
    for (let i = 0; i < n; i++) {
      const b = bytes[i]!;
      if (b >= 0x80) return utf8Decoder.decode(bytes);
      out += String.fromCharCode(b);
    }
    return out;
  }
  return utf8Decoder.decode(bytes);
}

export function encodeUtf8(text: string): Uint8Array {
  return utf8Encoder.encode(text);
}

/** How many bytes of `bytes[0..limit)` end on a UTF-8 character boundary (so a cut never splits a character). */
export function utf8Boundary(bytes: Uint8Array, limit: number): number {
  if (limit >= bytes.byteLength) return bytes.byteLength;
  let end = limit;
  // Step back over continuation bytes (10xxxxxx) to the lead byte of the cut character.
  while (end > 0 && end > limit - 4 && ((bytes[end] ?? 0) & 0xc0) === 0x80) end--;
  return end;
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

export function toHex(bytes: Uint8Array): string {
  let out = "";
  for (let i = 0; i < bytes.byteLength; i++) out += HEX[bytes[i] ?? 0];
  return out;
}

/** Reads protocol fields from one message body. */
export class ByteCursor {
  readonly bytes: Uint8Array;
  offset = 0;

  // Big-endian reads by hand: a DataView per message costs more than the message on the hot path.
  constructor(bytes: Uint8Array, private readonly what: string) {
    this.bytes = bytes;
  }

  get remaining(): number {
    return this.bytes.byteLength - this.offset;
  }

  private need(n: number, field: string): void {
    if (this.offset + n > this.bytes.byteLength) {
      throw violation(`${this.what}: truncated ${field}`, {
        message: this.what,
        offset: this.offset,
        needed: n,
        length: this.bytes.byteLength,
      });
    }
  }

  int8(field = "Int8"): number {
    this.need(1, field);
    return this.bytes[this.offset++]!;
  }

  int16(field = "Int16"): number {
    const value = this.uint16(field);
    return value > 0x7fff ? value - 0x10000 : value;
  }

  /** An Int16 count the server reads unsigned (pq_getmsgint(…, 2)): up to 65535 parameters. */
  uint16(field = "Int16"): number {
    this.need(2, field);
    const b = this.bytes;
    const o = this.offset;
    this.offset += 2;
    return (b[o]! << 8) | b[o + 1]!;
  }

  int32(field = "Int32"): number {
    this.need(4, field);
    const b = this.bytes;
    const o = this.offset;
    this.offset += 4;
    return (b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!;
  }

  uint32(field = "Int32"): number {
    return this.int32(field) >>> 0;
  }

  /** A view (no copy) of the next `n` bytes. */
  bytesView(n: number, field = "Byte[n]"): Uint8Array {
    if (n < 0) throw violation(`${this.what}: negative length for ${field}`, { length: n });
    this.need(n, field);
    const out = this.bytes.subarray(this.offset, this.offset + n);
    this.offset += n;
    return out;
  }

  rest(): Uint8Array {
    const out = this.bytes.subarray(this.offset);
    this.offset = this.bytes.byteLength;
    return out;
  }

  /** A NUL-terminated string. */
  cstring(field = "String"): string {
    const end = this.bytes.indexOf(0, this.offset);
    if (end < 0) throw violation(`${this.what}: unterminated ${field}`, { offset: this.offset });
    const text = decodeUtf8(this.bytes.subarray(this.offset, end));
    this.offset = end + 1;
    return text;
  }

  /** Int32 length (-1 = NULL) followed by that many bytes, as a view. */
  nullableBytes(field = "value"): Uint8Array | null {
    const length = this.int32(`${field} length`);
    if (length === -1) return null;
    if (length < -1) throw violation(`${this.what}: invalid length ${length} for ${field}`, { length });
    return this.bytesView(length, field);
  }

  /** Decoders call this last: leftover bytes mean the message was not what its type says. */
  end(): void {
    if (this.offset !== this.bytes.byteLength) {
      throw violation(`${this.what}: ${this.bytes.byteLength - this.offset} unexpected trailing bytes`, {
        offset: this.offset,
        length: this.bytes.byteLength,
      });
    }
  }
}

/** Builds one or more messages into a growing buffer. */
export class ByteWriter {
  private buf: Uint8Array;
  private view: DataView;
  private length = 0;
  private messageStart = -1;

  constructor(initialSize = 256) {
    this.buf = new Uint8Array(initialSize);
    this.view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength);
  }

  private ensure(n: number): void {
    if (this.length + n <= this.buf.byteLength) return;
    let size = this.buf.byteLength * 2;
    while (size < this.length + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
    this.view = new DataView(next.buffer, next.byteOffset, next.byteLength);
  }

  /** Start a typed message: type byte + a length placeholder patched by `end()`. `code` "" = untyped (startup). */
  begin(code: string): this {
    if (code !== "") this.int8(code.charCodeAt(0));
    this.messageStart = this.length;
    this.int32(0);
    return this;
  }

  /** Patch the length of the message begun last (the length counts itself, not the type byte). */
  end(): this {
    if (this.messageStart < 0) throw new Error("ByteWriter.end() without begin()");
    this.view.setInt32(this.messageStart, this.length - this.messageStart);
    this.messageStart = -1;
    return this;
  }

  int8(value: number): this {
    this.ensure(1);
    this.view.setUint8(this.length, value);
    this.length += 1;
    return this;
  }

  int16(value: number): this {
    this.ensure(2);
    this.view.setInt16(this.length, value);
    this.length += 2;
    return this;
  }

  int32(value: number): this {
    this.ensure(4);
    this.view.setInt32(this.length, value);
    this.length += 4;
    return this;
  }

  bytes(value: Uint8Array): this {
    this.ensure(value.byteLength);
    this.buf.set(value, this.length);
    this.length += value.byteLength;
    return this;
  }

  cstring(value: string): this {
    // UTF-8 needs at most 3 bytes per UTF-16 code unit.
    this.ensure(value.length * 3 + 1);
    const { written } = utf8Encoder.encodeInto(value, this.buf.subarray(this.length));
    this.length += written;
    this.buf[this.length++] = 0;
    return this;
  }

  /** Int32 length (or -1 for null) followed by the bytes. */
  nullableBytes(value: Uint8Array | null): this {
    if (value === null) return this.int32(-1);
    return this.int32(value.byteLength).bytes(value);
  }

  /** The bytes written so far (a copy-free view; the writer must not be reused afterwards). */
  finish(): Uint8Array {
    return this.buf.subarray(0, this.length);
  }
}

/** Concatenate a few byte arrays (used for short handshake replies, never on the relay path). */
export { concatBytes } from "../shared/chunk-queue.js";
