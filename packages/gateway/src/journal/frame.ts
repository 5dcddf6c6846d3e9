import { crc32 } from "node:zlib";

// One journal entry on disk:
//
//   offset  size  field
//   0       4     payload length, u32 LE (≥ 1; 0 marks the zero-filled end of a segment)
//   4       4     CRC-32 of bytes 8.. (lsn and payload), u32 LE
//   8       8     lsn: the entry's number, u64 LE; consecutive across the whole journal
//   16      n     payload (UTF-8 JSON)
//
// Segments are zero-filled before use, so a clean end reads as a zero length. Anything else that
// does not check out (a length past the end, a CRC mismatch, an lsn out of sequence) is a torn
// write from a crash, or a stale frame beyond it, and ends the segment.

export const FRAME_HEADER_BYTES = 16;
/** An entry larger than this is refused (a recorded statement is capped far below it). */
export const MAX_PAYLOAD_BYTES = 64 * 1024 * 1024;

/** The frame of `payload` (JSON text, `payloadBytes` long in UTF-8): one allocation, no copy of an encoded payload. */
export function encodeFrame(lsn: number, payload: string, payloadBytes: number): Buffer {
  const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + payloadBytes);
  frame.writeUInt32LE(payloadBytes, 0);
  writeLsn(frame, 8, lsn);
  frame.write(payload, FRAME_HEADER_BYTES, "utf8");
  frame.writeUInt32LE(crc32(frame.subarray(8)), 4);
  return frame;
}

export type FrameRead =
  /** A whole, valid frame; the next one starts at `next`. */
  | { type: "frame"; lsn: number; payload: Buffer; next: number }
  /** Zero length: the segment's written part ends here. */
  | { type: "end" }
  /** The buffer stops inside this frame: read more (only meaningful when more bytes exist). */
  | { type: "short"; needed: number }
  /** Not a valid frame: a torn write or what lies beyond one. */
  | { type: "invalid"; reason: string };

/**
 * Reads the frame at `offset` of `buf`. `expectedLsn`, when given, must match: a frame with a
 * valid CRC but the wrong number is left over from before, not ours.
 */
export function readFrame(buf: Buffer, offset: number, expectedLsn?: number): FrameRead {
  if (buf.length - offset < FRAME_HEADER_BYTES) {
    return isZero(buf, offset, buf.length) ? { type: "end" } : { type: "short", needed: FRAME_HEADER_BYTES };
  }
  const length = buf.readUInt32LE(offset);
  if (length === 0) {
    return isZero(buf, offset, offset + FRAME_HEADER_BYTES) ? { type: "end" } : { type: "invalid", reason: "zero length with a non-zero header" };
  }
  if (length > MAX_PAYLOAD_BYTES) return { type: "invalid", reason: `length ${length} over the maximum` };
  const end = offset + FRAME_HEADER_BYTES + length;
  if (end > buf.length) return { type: "short", needed: FRAME_HEADER_BYTES + length };
  const crc = buf.readUInt32LE(offset + 4);
  if (crc32(buf.subarray(offset + 8, end)) !== crc) return { type: "invalid", reason: "checksum mismatch" };
  const lsn = readLsn(buf, offset + 8);
  if (expectedLsn !== undefined && lsn !== expectedLsn) return { type: "invalid", reason: `lsn ${lsn} where ${expectedLsn} was expected` };
  return { type: "frame", lsn, payload: buf.subarray(offset + FRAME_HEADER_BYTES, end), next: end };
}

function writeLsn(buf: Buffer, offset: number, lsn: number): void {
  buf.writeUInt32LE(lsn % 0x1_0000_0000, offset);
  buf.writeUInt32LE(Math.floor(lsn / 0x1_0000_0000), offset + 4);
}

function readLsn(buf: Buffer, offset: number): number {
  return buf.readUInt32LE(offset) + buf.readUInt32LE(offset + 4) * 0x1_0000_0000;
}

export function isZero(buf: Buffer, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (buf[i] !== 0) return false;
  return true;
}
