// Unsigned protobuf varints (base-128, least significant group first), for lengths below 2^32.
// https://protobuf.dev/programming-guides/encoding/#varints

/** Bytes `value` takes as a varint. */
export function varintSize(value: number): number {
  return value < 0x80 ? 1 : value < 0x4000 ? 2 : value < 0x200000 ? 3 : value < 0x10000000 ? 4 : 5;
}

/** Writes `value` at `pos`; returns the position after it. The caller made room (see varintSize). */
export function writeVarint(buf: Uint8Array, pos: number, value: number): number {
  while (value > 0x7f) {
    buf[pos++] = (value & 0x7f) | 0x80;
    value >>>= 7;
  }
  buf[pos++] = value;
  return pos;
}
