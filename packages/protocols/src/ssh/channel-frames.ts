import { ChunkQueue } from "../shared/chunk-queue.js";

/**
 * How one SSH `session` channel travels on its tunnel stream between the gateway (which terminates
 * the client's SSH) and the connector (which holds the SSH connection to the resource's sshd).
 * A channel carries more than bytes — stderr apart from stdout, EOF, window changes, signals, the
 * exit status — so each piece is a frame: type (1 byte), payload length (uint32 BE), payload.
 * `direct-tcpip` channels (port forwards) are plain bytes and use no frames.
 */
export const ChannelFrame = {
  /** gateway→connector: the client's stdin; connector→gateway: the command's stdout. */
  Data: 0,
  /** connector→gateway: the command's stderr (SSH extended data, type 1). */
  Stderr: 1,
  /** Either way: no more data from this side (SSH_MSG_CHANNEL_EOF). Empty payload. */
  Eof: 2,
  /** gateway→connector: the client's terminal was resized. Payload: JSON `WindowSize`. */
  WindowChange: 3,
  /** gateway→connector: the client sent a signal. Payload: the signal name without "SIG" (UTF-8), e.g. "INT". */
  Signal: 4,
  /** connector→gateway: the command exited. Payload: uint32 BE exit status. */
  ExitStatus: 5,
  /** connector→gateway: the command was killed by a signal. Payload: JSON `ExitSignal`. */
  ExitSignal: 6,
} as const;
export type ChannelFrameType = (typeof ChannelFrame)[keyof typeof ChannelFrame];

export interface WindowSize {
  cols: number;
  rows: number;
  width: number;
  height: number;
}

export interface ExitSignal {
  /** Without "SIG": "TERM", "KILL"... */
  signal: string;
  coreDumped: boolean;
  message: string;
}

export interface Frame {
  type: ChannelFrameType;
  /** A view into the pushed chunks when the frame sat in one chunk (no copy): don't keep it past the next push. */
  payload: Uint8Array;
}

const HEADER = 5;
/** A channel frame larger than this is a broken peer, not data (SSH packets are at most 256 KiB). */
export const MAX_FRAME_PAYLOAD = 1024 * 1024;

const TYPES = new Set<number>(Object.values(ChannelFrame));

/** One frame: header and payload in one buffer. */
export function encodeFrame(type: ChannelFrameType, payload: Uint8Array = EMPTY): Uint8Array {
  const out = new Uint8Array(HEADER + payload.byteLength);
  out[0] = type;
  new DataView(out.buffer).setUint32(1, payload.byteLength);
  out.set(payload, HEADER);
  return out;
}

/** Just the 5-byte header, for writing a large payload after it without copying it. */
export function frameHeader(type: ChannelFrameType, payloadLength: number): Uint8Array {
  const out = new Uint8Array(HEADER);
  out[0] = type;
  new DataView(out.buffer).setUint32(1, payloadLength);
  return out;
}

export function encodeJsonFrame(type: typeof ChannelFrame.WindowChange | typeof ChannelFrame.ExitSignal, value: WindowSize | ExitSignal): Uint8Array {
  return encodeFrame(type, new TextEncoder().encode(JSON.stringify(value)));
}

export function encodeExitStatus(status: number): Uint8Array {
  const payload = new Uint8Array(4);
  new DataView(payload.buffer).setUint32(0, status >>> 0);
  return encodeFrame(ChannelFrame.ExitStatus, payload);
}

export function decodeExitStatus(payload: Uint8Array): number {
  if (payload.byteLength !== 4) throw new ChannelFrameError(`exit-status frame of ${payload.byteLength} bytes (expected 4)`);
  return new DataView(payload.buffer, payload.byteOffset, 4).getUint32(0);
}

export function decodeJson<T>(payload: Uint8Array): T {
  try {
    return JSON.parse(new TextDecoder().decode(payload)) as T;
  } catch {
    throw new ChannelFrameError("a frame's JSON payload does not parse");
  }
}

export class ChannelFrameError extends Error {
  override name = "ChannelFrameError";
}

/** Splits a tunnel stream's chunks into frames; throws ChannelFrameError on an unknown type or an oversized frame. */
export class ChannelFrameReader {
  private readonly queue = new ChunkQueue();

  push(chunk: Uint8Array): void {
    this.queue.push(chunk);
  }

  /** The next complete frame, or undefined until more bytes arrive. */
  next(): Frame | undefined {
    const q = this.queue;
    if (q.length < HEADER) return undefined;
    const type = q.byteAt(0);
    if (!TYPES.has(type)) throw new ChannelFrameError(`unknown channel frame type ${type}`);
    const length = q.uint32BE(1);
    if (length > MAX_FRAME_PAYLOAD) throw new ChannelFrameError(`channel frame of ${length} bytes (at most ${MAX_FRAME_PAYLOAD})`);
    if (q.length < HEADER + length) return undefined;
    q.discard(HEADER);
    return { type: type as ChannelFrameType, payload: length === 0 ? EMPTY : q.take(length) };
  }

  /** Bytes held that do not make a whole frame yet. */
  get pending(): number {
    return this.queue.length;
  }
}

const EMPTY = new Uint8Array(0);
