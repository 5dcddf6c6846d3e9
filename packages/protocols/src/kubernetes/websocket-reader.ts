// Reads WebSocket (RFC 6455) messages out of relayed bytes, one reader per direction, to follow
// a kubectl exec/attach without taking part in it: the bytes themselves are relayed unchanged.
// Client frames are masked, server frames are not; fragmented messages are joined; control frames
// (ping, pong, close) come out as they arrive, between a message's fragments if need be.

export const WS_OPCODE = { continuation: 0, text: 1, binary: 2, close: 8, ping: 9, pong: 10 } as const;

export interface WebSocketMessage {
  opcode: number;
  data: Buffer;
}

export class WebSocketFrameError extends Error {
  override readonly name = "WebSocketFrameError";
}

/** A message larger than this (kubectl sends stdin in 32 KiB pieces) is a broken or hostile peer. */
export const MAX_WS_MESSAGE = 16 * 1024 * 1024;

export class WebSocketReader {
  private pending: Buffer = Buffer.alloc(0);
  private fragments: Buffer[] = [];
  private fragmentsBytes = 0;
  private fragmentedOpcode = -1;

  constructor(private readonly masked: boolean) {}

  /** Every whole message the chunk completes (none while a frame is still partial). */
  push(chunk: Buffer): WebSocketMessage[] {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    const out: WebSocketMessage[] = [];
    for (;;) {
      const frame = this.nextFrame();
      if (!frame) break;
      const { fin, opcode, payload } = frame;
      if (opcode >= 8) {
        out.push({ opcode, data: payload });
        continue;
      }
      if (opcode === WS_OPCODE.continuation) {
        if (this.fragmentedOpcode < 0) throw new WebSocketFrameError("continuation frame without a message to continue");
      } else {
        if (this.fragmentedOpcode >= 0) throw new WebSocketFrameError("new message before the previous one's last fragment");
        if (fin) {
          out.push({ opcode, data: payload });
          continue;
        }
        this.fragmentedOpcode = opcode;
      }
      this.fragments.push(payload);
      this.fragmentsBytes += payload.length;
      if (this.fragmentsBytes > MAX_WS_MESSAGE) throw new WebSocketFrameError(`message longer than ${MAX_WS_MESSAGE} bytes`);
      if (fin) {
        out.push({ opcode: this.fragmentedOpcode, data: Buffer.concat(this.fragments) });
        this.fragments = [];
        this.fragmentsBytes = 0;
        this.fragmentedOpcode = -1;
      }
    }
    return out;
  }

  private nextFrame(): { fin: boolean; opcode: number; payload: Buffer } | undefined {
    const b = this.pending;
    if (b.length < 2) return undefined;
    const fin = (b[0]! & 0x80) !== 0;
    const opcode = b[0]! & 0x0f;
    const isMasked = (b[1]! & 0x80) !== 0;
    if (isMasked !== this.masked) throw new WebSocketFrameError(this.masked ? "unmasked frame from the client" : "masked frame from the server");
    let length = b[1]! & 0x7f;
    let offset = 2;
    if (length === 126) {
      if (b.length < 4) return undefined;
      length = b.readUInt16BE(2);
      offset = 4;
    } else if (length === 127) {
      if (b.length < 10) return undefined;
      const high = b.readUInt32BE(2);
      if (high !== 0) throw new WebSocketFrameError("frame longer than 4 GiB");
      length = b.readUInt32BE(6);
      offset = 10;
    }
    if (length > MAX_WS_MESSAGE) throw new WebSocketFrameError(`frame longer than ${MAX_WS_MESSAGE} bytes`);
    const maskAt = offset;
    if (isMasked) offset += 4;
    if (b.length < offset + length) return undefined;
    let payload = b.subarray(offset, offset + length);
    if (isMasked) {
      // A copy: the relayed chunk itself must go on unchanged.
      const unmasked = Buffer.allocUnsafe(length);
      for (let i = 0; i < length; i++) unmasked[i] = payload[i]! ^ b[maskAt + (i & 3)]!;
      payload = unmasked;
    } else {
      payload = Buffer.from(payload);
    }
    this.pending = b.subarray(offset + length);
    return { fin, opcode, payload };
  }
}
