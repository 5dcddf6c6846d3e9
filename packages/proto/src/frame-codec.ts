// Frames on the wire: every WebSocket message carries one or more frames, each a protobuf message
// (GatewayFrame or ConnectorFrame) prefixed by its length as a varint:
//
//   message = ( varint(length) frame[length] )+
//
// The decoder below is streaming (frames may be cut anywhere), checks each declared length against
// the maximum before it buffers a byte of the frame, keeps received chunks as a list and hands out
// views into them; it copies only a frame that straddles chunks.
import { TunnelError } from "./errors.js";
import { varintSize, writeVarint } from "./varint.js";

/** A varint longer than this cannot be a length below 2^32. */
const MAX_VARINT_BYTES = 5;

/** Prefixes each encoded frame with its length and joins them into one message. */
export function encodeFrames(frames: readonly Uint8Array[]): Uint8Array {
  let size = 0;
  for (const frame of frames) size += varintSize(frame.length) + frame.length;
  const out = Buffer.allocUnsafe(size);
  let pos = 0;
  for (const frame of frames) {
    pos = writeVarint(out, pos, frame.length);
    out.set(frame, pos);
    pos += frame.length;
  }
  return out;
}

/**
 * Splits a byte stream into length-delimited frames and decodes each one.
 * Usage: `decoder.push(chunk)`, then call `next()` until it returns undefined (or iterate `frames(chunk)`).
 * Any failure is a TunnelError (FRAME_TOO_LARGE, BAD_FRAME); after one the decoder stays failed.
 */
export class FrameDecoder<T> {
  readonly #decode: (bytes: Uint8Array) => T;
  readonly #maxFrameBytes: number;
  /** Received bytes not yet handed out; chunks[0] is trimmed (as a view) as frames are taken. */
  #chunks: Uint8Array[] = [];
  #buffered = 0;
  /** Declared length of the frame being assembled, or -1 while its prefix is incomplete. */
  #frameLength = -1;
  #failure: TunnelError | undefined;

  /**
   * @param decode turns one frame's bytes into a message; anything it throws becomes BAD_FRAME.
   * @param maxFrameBytes largest frame accepted (bytes after the length prefix).
   */
  constructor(decode: (bytes: Uint8Array) => T, maxFrameBytes: number) {
    this.#decode = decode;
    this.#maxFrameBytes = maxFrameBytes;
  }

  /** Bytes held for frames not yet complete. Never more than maxFrameBytes + a prefix + one chunk. */
  get bufferedBytes(): number {
    return this.#buffered;
  }

  push(chunk: Uint8Array): void {
    if (this.#failure) throw this.#failure;
    if (chunk.length === 0) return;
    this.#chunks.push(chunk);
    this.#buffered += chunk.length;
  }

  /** The next complete frame, or undefined when more bytes are needed. */
  next(): T | undefined {
    if (this.#failure) throw this.#failure;
    if (this.#frameLength < 0 && !this.#readLength()) return undefined;
    const length = this.#frameLength;
    if (this.#buffered < length) return undefined;
    const bytes = this.#take(length);
    this.#frameLength = -1;
    try {
      return this.#decode(bytes);
    } catch (cause) {
      throw this.#fail(new TunnelError("BAD_FRAME", `undecodable frame of ${length} bytes`, { cause }));
    }
  }

  /** Pushes `chunk` and yields every frame completed by it. */
  *frames(chunk: Uint8Array): Generator<T, void, undefined> {
    this.push(chunk);
    for (let frame = this.next(); frame !== undefined; frame = this.next()) yield frame;
  }

  /** Parses the length prefix if all of it is here, rejecting oversized lengths as early as possible. */
  #readLength(): boolean {
    let value = 0;
    let index = 0;
    for (let c = 0; c < this.#chunks.length; c++) {
      const chunk = this.#chunks[c]!;
      for (let i = 0; i < chunk.length; i++) {
        const byte = chunk[i]!;
        value += (byte & 0x7f) * 2 ** (7 * index);
        index++;
        // Checked per byte so a huge length is refused before its prefix is even complete.
        if (value > this.#maxFrameBytes) {
          throw this.#fail(
            new TunnelError("FRAME_TOO_LARGE", `frame length ${value}${byte & 0x80 ? "+" : ""} exceeds ${this.#maxFrameBytes}`),
          );
        }
        if ((byte & 0x80) === 0) {
          this.#skip(index);
          this.#frameLength = value;
          return true;
        }
        if (index === MAX_VARINT_BYTES) {
          throw this.#fail(new TunnelError("BAD_FRAME", "frame length prefix longer than 5 bytes"));
        }
      }
    }
    return false;
  }

  #skip(n: number): void {
    this.#buffered -= n;
    while (n > 0) {
      const head = this.#chunks[0]!;
      if (n >= head.length) {
        this.#chunks.shift();
        n -= head.length;
      } else {
        this.#chunks[0] = head.subarray(n);
        n = 0;
      }
    }
  }

  /** `n` bytes from the front: a view when they sit in one chunk, else one copy of just those bytes. */
  #take(n: number): Uint8Array {
    this.#buffered -= n;
    const head = this.#chunks[0];
    if (head === undefined) return new Uint8Array(0);
    if (n < head.length) {
      this.#chunks[0] = head.subarray(n);
      return head.subarray(0, n);
    }
    if (n === head.length) {
      this.#chunks.shift();
      return head;
    }
    const out = Buffer.allocUnsafe(n);
    let pos = 0;
    let used = 0; // chunks consumed whole; dropped in one splice, not one shift each
    while (pos < n) {
      const chunk = this.#chunks[used]!;
      const want = n - pos;
      if (chunk.length <= want) {
        out.set(chunk, pos);
        pos += chunk.length;
        used++;
      } else {
        out.set(chunk.subarray(0, want), pos);
        this.#chunks[used] = chunk.subarray(want);
        pos = n;
      }
    }
    this.#chunks.splice(0, used);
    return out;
  }

  #fail(error: TunnelError): TunnelError {
    this.#failure = error;
    this.#chunks = [];
    this.#buffered = 0;
    return error;
  }
}
