/**
 * Framing: turns a byte stream into MySQL packets, and packets into bytes.
 *
 * Wire layout (https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_basic_packets.html):
 *
 *   int<3> payload_length | int<1> sequence_id | string<var> payload
 *
 * A payload of 0xFFFFFF bytes or more is sent as pieces of exactly 0xFFFFFF bytes, each with
 * its own header and the next sequence id, ended by a piece shorter than 0xFFFFFF (possibly
 * empty). `PacketReader` joins the pieces into one logical packet; `encodePacket` splits.
 *
 * The reader keeps pushed chunks in a list and returns *views* into them; it copies only when a
 * payload spans chunks or pieces. Each piece's declared length is added to the packet's total
 * and checked against `maxPacketSize` as soon as its header has arrived, **before** any of its
 * bytes are buffered. Don't reuse a chunk's memory after pushing it.
 */
import { MysqlProtocolError } from "./errors.js";

/** The largest payload one piece carries; a piece of this size means "more follows". */
export const MAX_PACKET_PIECE = 0xffffff;
export const PACKET_HEADER_LENGTH = 4;
/**
 * Default maximum logical packet size: the largest max_allowed_packet a MySQL/MariaDB server
 * accepts (1 GiB), so the gateway never refuses what the resource could take.
 */
export const DEFAULT_MAX_PACKET_SIZE = 1 << 30;

/** One logical packet. */
export interface Packet {
  /** Sequence id of its first piece. */
  readonly sequenceId: number;
  /** Sequence id of its last piece (equal to `sequenceId` unless split); the reply uses this + 1. */
  readonly lastSequenceId: number;
  /** The whole payload. A view when it arrived in one chunk and one piece: valid as long as the chunk is. */
  readonly payload: Uint8Array;
}

export interface PacketReaderOptions {
  /** Maximum logical payload length in bytes. Default `DEFAULT_MAX_PACKET_SIZE`. */
  readonly maxPacketSize?: number;
}

const EMPTY = new Uint8Array(0);

export class PacketReader {
  private readonly maxPacketSize: number;
  private chunks: Uint8Array[] = [];
  private head = 0;
  private offset = 0;
  private available = 0;
  /** Pieces of a split packet read so far (payload views/copies). */
  private pieces: Uint8Array[] = [];
  private piecesLength = 0;
  private firstSequenceId = -1;
  private lastPieceSequenceId = -1;

  constructor(options: PacketReaderOptions = {}) {
    this.maxPacketSize = options.maxPacketSize ?? DEFAULT_MAX_PACKET_SIZE;
  }

  /** Bytes pushed and not yet returned. */
  get buffered(): number {
    return this.available;
  }

  /** Every pushed byte belongs to a packet already returned: the stream is between packets. */
  get atPacketBoundary(): boolean {
    return this.available === 0 && this.firstSequenceId < 0;
  }

  push(chunk: Uint8Array): void {
    if (chunk.byteLength === 0) return;
    this.chunks.push(chunk);
    this.available += chunk.byteLength;
  }

  /** The next unread byte without consuming it (e.g. to spot a TLS ClientHello, 0x16). */
  peekByte(): number | undefined {
    return this.available === 0 ? undefined : this.byteAt(0);
  }

  /**
   * Remove and return every unread byte, e.g. to hand the bytes that followed a handshake to
   * the relay, or a TLS ClientHello to the TLS layer. Only between packets.
   */
  takeBuffered(): Uint8Array[] {
    if (this.firstSequenceId >= 0) {
      throw new MysqlProtocolError("INVALID_STATE", "takeBuffered() called in the middle of a split packet");
    }
    const out: Uint8Array[] = [];
    for (let i = this.head; i < this.chunks.length; i++) {
      const chunk = this.chunks[i]!;
      out.push(i === this.head ? chunk.subarray(this.offset) : chunk);
    }
    this.chunks = [];
    this.head = 0;
    this.offset = 0;
    this.available = 0;
    return out.filter((part) => part.byteLength > 0);
  }

  /** The next logical packet, or undefined when more bytes are needed. Throws `MysqlProtocolError`. */
  read(): Packet | undefined {
    for (;;) {
      if (this.available < PACKET_HEADER_LENGTH) return undefined;
      const length = this.byteAt(0) | (this.byteAt(1) << 8) | (this.byteAt(2) << 16);
      const sequenceId = this.byteAt(3);
      const split = this.firstSequenceId >= 0;
      if (split && sequenceId !== ((this.lastPieceSequenceId + 1) & 0xff)) {
        throw new MysqlProtocolError("PACKETS_OUT_OF_ORDER", `piece of a split packet has sequence id ${sequenceId}, expected ${(this.lastPieceSequenceId + 1) & 0xff}`, {
          context: { sequenceId, expected: (this.lastPieceSequenceId + 1) & 0xff },
        });
      }
      const total = this.piecesLength + length;
      if (total > this.maxPacketSize) {
        throw new MysqlProtocolError("PACKET_TOO_LARGE", `packet of at least ${total} bytes exceeds the maximum of ${this.maxPacketSize}`, {
          context: { length: total, max: this.maxPacketSize },
        });
      }
      if (this.available < PACKET_HEADER_LENGTH + length) return undefined;
      this.discard(PACKET_HEADER_LENGTH);
      const payload = length === 0 ? EMPTY : this.take(length);

      if (length === MAX_PACKET_PIECE) {
        if (!split) this.firstSequenceId = sequenceId;
        this.lastPieceSequenceId = sequenceId;
        this.pieces.push(payload);
        this.piecesLength = total;
        continue;
      }
      if (!split) return { sequenceId, lastSequenceId: sequenceId, payload };

      const joined = new Uint8Array(total);
      let at = 0;
      for (const piece of this.pieces) {
        joined.set(piece, at);
        at += piece.byteLength;
      }
      joined.set(payload, at);
      const packet: Packet = { sequenceId: this.firstSequenceId, lastSequenceId: sequenceId, payload: joined };
      this.pieces = [];
      this.piecesLength = 0;
      this.firstSequenceId = -1;
      this.lastPieceSequenceId = -1;
      return packet;
    }
  }

  /** The byte `rel` positions ahead of the read position (caller guarantees it is buffered). */
  private byteAt(rel: number): number {
    let i = this.head;
    let pos = this.offset + rel;
    for (;;) {
      const chunk = this.chunks[i]!;
      if (pos < chunk.byteLength) return chunk[pos]!;
      pos -= chunk.byteLength;
      i++;
    }
  }

  /** Consume n bytes as one Uint8Array: a view when contiguous, else a copy. */
  private take(n: number): Uint8Array {
    const chunk = this.chunks[this.head]!;
    if (chunk.byteLength - this.offset >= n) {
      const view = chunk.subarray(this.offset, this.offset + n);
      this.discard(n);
      return view;
    }
    const out = new Uint8Array(n);
    let filled = 0;
    while (filled < n) {
      const current = this.chunks[this.head]!;
      const piece = Math.min(n - filled, current.byteLength - this.offset);
      out.set(current.subarray(this.offset, this.offset + piece), filled);
      filled += piece;
      this.discard(piece);
    }
    return out;
  }

  private discard(n: number): void {
    this.available -= n;
    while (n > 0) {
      const chunk = this.chunks[this.head]!;
      const left = chunk.byteLength - this.offset;
      if (n < left) {
        this.offset += n;
        return;
      }
      n -= left;
      this.head++;
      this.offset = 0;
    }
    if (this.head === this.chunks.length) {
      this.chunks.length = 0;
      this.head = 0;
    } else if (this.head > 32 && this.head * 2 > this.chunks.length) {
      this.chunks = this.chunks.slice(this.head);
      this.head = 0;
    }
  }
}

/** How many pieces (headers) a payload of this length takes on the wire. */
export function pieceCount(payloadLength: number): number {
  return Math.floor(payloadLength / MAX_PACKET_PIECE) + 1;
}

/** The sequence id of the packet that follows one of `payloadLength` bytes sent with `sequenceId`. */
export function nextSequenceId(sequenceId: number, payloadLength: number): number {
  return (sequenceId + pieceCount(payloadLength)) & 0xff;
}

function header(length: number, sequenceId: number): Uint8Array {
  return Uint8Array.of(length & 0xff, (length >>> 8) & 0xff, (length >>> 16) & 0xff, sequenceId & 0xff);
}

/**
 * A logical packet as wire chunks: header, payload view, header, payload view... split into
 * 0xFFFFFF-byte pieces with consecutive sequence ids (and an empty last piece when the payload
 * is an exact multiple). Writing the chunks in order writes the packet; nothing is copied.
 */
export function encodePacketChunks(sequenceId: number, payload: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  let seq = sequenceId & 0xff;
  let at = 0;
  for (;;) {
    const length = Math.min(MAX_PACKET_PIECE, payload.byteLength - at);
    out.push(header(length, seq));
    if (length > 0) out.push(payload.subarray(at, at + length));
    at += length;
    seq = (seq + 1) & 0xff;
    if (length < MAX_PACKET_PIECE) return out;
  }
}

/** A logical packet as one buffer (headers and payload copied together); for small packets. */
export function encodePacket(sequenceId: number, payload: Uint8Array): Uint8Array {
  const chunks = encodePacketChunks(sequenceId, payload);
  let total = 0;
  for (const chunk of chunks) total += chunk.byteLength;
  const out = new Uint8Array(total);
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.byteLength;
  }
  return out;
}

/** Throws PACKETS_OUT_OF_ORDER unless `packet` starts with `expected`. */
export function expectSequenceId(packet: Packet, expected: number): void {
  if (packet.sequenceId !== (expected & 0xff)) {
    throw new MysqlProtocolError("PACKETS_OUT_OF_ORDER", `packet has sequence id ${packet.sequenceId}, expected ${expected & 0xff}`, {
      context: { sequenceId: packet.sequenceId, expected: expected & 0xff },
    });
  }
}
