// SPDY/3.1 as kubectl and the kubelet speak it (github.com/moby/spdystream): frame reading and
// writing, header blocks compressed with zlib and the SPDY/3 dictionary (one compression context per
// direction per connection, each block ended with Z_SYNC_FLUSH), and a server-side session.
// Written from the SPDY/3.1 draft; test-only.
//
// Frame layout (all integers big-endian):
//   control: 1 | version(15) | type(16) | flags(8) | length(24) | payload
//   data:    0 | stream id(31)          | flags(8) | length(24) | data
import { constants as zlibConstants, createDeflate, createInflate, type Deflate, type Inflate } from "node:zlib";

export const SPDY_VERSION = 3;

export const FrameType = { SYN_STREAM: 1, SYN_REPLY: 2, RST_STREAM: 3, SETTINGS: 4, PING: 6, GOAWAY: 7, HEADERS: 8, WINDOW_UPDATE: 9 } as const;
/** FLAG_FIN on data frames, SYN_STREAM, SYN_REPLY and HEADERS; FLAG_UNIDIRECTIONAL on SYN_STREAM. */
export const Flags = { FIN: 0x01, UNIDIRECTIONAL: 0x02, CLEAR_SETTINGS: 0x01 } as const;
export const RstStatus = {
  PROTOCOL_ERROR: 1, INVALID_STREAM: 2, REFUSED_STREAM: 3, UNSUPPORTED_VERSION: 4, CANCEL: 5, INTERNAL_ERROR: 6,
  FLOW_CONTROL_ERROR: 7, STREAM_IN_USE: 8, STREAM_ALREADY_CLOSED: 9, FRAME_TOO_LARGE: 11,
} as const;
export const GoAwayStatus = { OK: 0, PROTOCOL_ERROR: 1, INTERNAL_ERROR: 2 } as const;
export const MAX_FRAME_LENGTH = 0xffffff;

// The SPDY/3 header compression dictionary: length-prefixed words, then a plain string.
const DICTIONARY_WORDS = [
  "options", "head", "post", "put", "delete", "trace", "accept", "accept-charset", "accept-encoding", "accept-language",
  "accept-ranges", "age", "allow", "authorization", "cache-control", "connection", "content-base", "content-encoding",
  "content-language", "content-length", "content-location", "content-md5", "content-range", "content-type", "date", "etag",
  "expect", "expires", "from", "host", "if-match", "if-modified-since", "if-none-match", "if-range", "if-unmodified-since",
  "last-modified", "location", "max-forwards", "pragma", "proxy-authenticate", "proxy-authorization", "range", "referer",
  "retry-after", "server", "te", "trailer", "transfer-encoding", "upgrade", "user-agent", "vary", "via", "warning",
  "www-authenticate", "method", "get", "status", "200 OK", "version", "HTTP/1.1", "url", "public", "set-cookie", "keep-alive",
  "origin",
];
const DICTIONARY_TAIL =
  "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505" +
  "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request401 Unauthorized" +
  "403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented503 Service Unavailable" +
  "Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT" +
  "chunked,text/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain," +
  "text/javascript,publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.";
export const HEADER_DICTIONARY: Buffer = Buffer.concat([
  ...DICTIONARY_WORDS.flatMap((w) => [u32(w.length), Buffer.from(w, "latin1")]),
  Buffer.from(DICTIONARY_TAIL, "latin1"),
]);

/** Header names are lowercase; a value list is sent NUL-separated. */
export type SpdyHeaders = Record<string, string[]>;

export interface SettingsEntry {
  flags: number;
  id: number;
  value: number;
}

export type SpdyFrame =
  | { kind: "data"; streamId: number; flags: number; data: Buffer }
  | { kind: "syn_stream"; streamId: number; associatedStreamId: number; priority: number; slot: number; flags: number; headers: SpdyHeaders }
  | { kind: "syn_reply"; streamId: number; flags: number; headers: SpdyHeaders }
  | { kind: "rst_stream"; streamId: number; status: number }
  | { kind: "settings"; flags: number; entries: SettingsEntry[] }
  | { kind: "ping"; id: number }
  | { kind: "goaway"; lastGoodStreamId: number; status: number }
  | { kind: "headers"; streamId: number; flags: number; headers: SpdyHeaders }
  | { kind: "window_update"; streamId: number; delta: number }
  /** A control frame of a type SPDY/3.1 does not define (the spec says: ignore it). */
  | { kind: "unknown"; type: number; version: number; flags: number; payload: Buffer };

/** One frame as cut from the byte stream, before its payload is decoded. */
export interface RawFrame {
  control: boolean;
  /** Control frames: the version and type fields; data frames: 0 and the stream id in streamId. */
  version: number;
  type: number;
  streamId: number;
  flags: number;
  payload: Buffer;
}

export class SpdyProtocolError extends Error {}

/** Cuts a byte stream into frames (any chunking in, whole frames out). */
export class FrameSplitter {
  private pending: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): RawFrame[] {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    const frames: RawFrame[] = [];
    while (this.pending.length >= 8) {
      const length = this.pending.readUInt32BE(4) & 0xffffff;
      if (this.pending.length < 8 + length) break;
      const first = this.pending.readUInt32BE(0);
      const control = (first & 0x80000000) !== 0;
      frames.push({
        control,
        version: control ? (first >>> 16) & 0x7fff : 0,
        type: control ? first & 0xffff : 0,
        streamId: control ? 0 : first & 0x7fffffff,
        flags: this.pending[4]!,
        payload: this.pending.subarray(8, 8 + length),
      });
      this.pending = this.pending.subarray(8 + length);
    }
    return frames;
  }
}

export function encodeHeaderBlock(headers: SpdyHeaders): Buffer {
  const parts: Buffer[] = [u32(Object.keys(headers).length)];
  for (const [name, values] of Object.entries(headers)) {
    const n = Buffer.from(name.toLowerCase(), "utf8");
    const v = Buffer.from(values.join("\0"), "utf8");
    parts.push(u32(n.length), n, u32(v.length), v);
  }
  return Buffer.concat(parts);
}

export function decodeHeaderBlock(block: Buffer): SpdyHeaders {
  let at = 0;
  const need = (n: number) => {
    if (at + n > block.length) throw new SpdyProtocolError("truncated header block");
  };
  const readU32 = () => {
    need(4);
    const v = block.readUInt32BE(at);
    at += 4;
    return v;
  };
  const readString = () => {
    const len = readU32();
    need(len);
    const s = block.toString("utf8", at, at + len);
    at += len;
    return s;
  };
  const headers: SpdyHeaders = {};
  const count = readU32();
  for (let i = 0; i < count; i++) {
    const name = readString();
    const value = readString();
    if (name === "" || name !== name.toLowerCase()) throw new SpdyProtocolError(`invalid header name ${JSON.stringify(name)}`);
    if (headers[name]) throw new SpdyProtocolError(`duplicate header ${name}`);
    headers[name] = value.split("\0");
  }
  return headers;
}

/**
 * One direction's zlib context. Every header block of a connection goes through the same stream,
 * each ended with Z_SYNC_FLUSH so the peer can decode it at once; operations run one at a time.
 */
class ZlibContext {
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly z: Deflate | Inflate) {
    z.on("error", () => undefined);
  }

  run(input: Buffer): Promise<Buffer> {
    const z = this.z;
    const next = this.queue.then(
      () =>
        new Promise<Buffer>((resolve, reject) => {
          if (z.destroyed) return reject(new SpdyProtocolError("header compression context is broken"));
          const fail = (e: Error) => reject(new SpdyProtocolError(`header block: ${e.message}`));
          z.once("error", fail);
          z.write(input);
          z.flush(zlibConstants.Z_SYNC_FLUSH, () => {
            z.off("error", fail);
            const out: Buffer[] = [];
            for (let b: Buffer | null; (b = z.read() as Buffer | null) !== null; ) out.push(b);
            resolve(Buffer.concat(out));
          });
        }),
    );
    this.queue = next.catch(() => undefined);
    return next;
  }

  close(): void {
    this.z.destroy();
  }
}

/** A connection's framer: encodes frames we send, decodes frames we receive (each with its own zlib context). */
export class SpdyFramer {
  private readonly compressor = new ZlibContext(createDeflate({ dictionary: HEADER_DICTIONARY }));
  private readonly decompressor = new ZlibContext(createInflate({ dictionary: HEADER_DICTIONARY }));

  async encode(frame: SpdyFrame): Promise<Buffer> {
    switch (frame.kind) {
      case "data": {
        if (frame.data.length > MAX_FRAME_LENGTH) throw new RangeError("data frame too large");
        return Buffer.concat([u32(frame.streamId & 0x7fffffff), u32((frame.flags << 24) | frame.data.length), frame.data]);
      }
      case "syn_stream": {
        const block = await this.compressor.run(encodeHeaderBlock(frame.headers));
        return control(FrameType.SYN_STREAM, frame.flags, Buffer.concat([u32(frame.streamId), u32(frame.associatedStreamId), Buffer.from([(frame.priority & 7) << 5, frame.slot]), block]));
      }
      case "syn_reply":
        return control(FrameType.SYN_REPLY, frame.flags, Buffer.concat([u32(frame.streamId), await this.compressor.run(encodeHeaderBlock(frame.headers))]));
      case "headers":
        return control(FrameType.HEADERS, frame.flags, Buffer.concat([u32(frame.streamId), await this.compressor.run(encodeHeaderBlock(frame.headers))]));
      case "rst_stream":
        return control(FrameType.RST_STREAM, 0, Buffer.concat([u32(frame.streamId), u32(frame.status)]));
      case "settings":
        return control(FrameType.SETTINGS, frame.flags, Buffer.concat([u32(frame.entries.length), ...frame.entries.flatMap((e) => [u32(((e.flags & 0xff) << 24) | (e.id & 0xffffff)), u32(e.value)])]));
      case "ping":
        return control(FrameType.PING, 0, u32(frame.id));
      case "goaway":
        return control(FrameType.GOAWAY, 0, Buffer.concat([u32(frame.lastGoodStreamId), u32(frame.status)]));
      case "window_update":
        return control(FrameType.WINDOW_UPDATE, 0, Buffer.concat([u32(frame.streamId), u32(frame.delta & 0x7fffffff)]));
      case "unknown":
        return Buffer.concat([u32((0x8000 | frame.version) << 16 | frame.type), u32((frame.flags << 24) | frame.payload.length), frame.payload]);
    }
  }

  async decode(raw: RawFrame): Promise<SpdyFrame> {
    const p = raw.payload;
    if (!raw.control) return { kind: "data", streamId: raw.streamId, flags: raw.flags, data: p };
    const need = (n: number) => {
      if (p.length < n) throw new SpdyProtocolError(`control frame type ${raw.type} too short (${p.length} bytes)`);
    };
    const id31 = (at: number) => p.readUInt32BE(at) & 0x7fffffff;
    switch (raw.type) {
      case FrameType.SYN_STREAM:
        need(10);
        return { kind: "syn_stream", streamId: id31(0), associatedStreamId: id31(4), priority: p[8]! >> 5, slot: p[9]!, flags: raw.flags, headers: decodeHeaderBlock(await this.decompressor.run(p.subarray(10))) };
      case FrameType.SYN_REPLY:
        need(4);
        return { kind: "syn_reply", streamId: id31(0), flags: raw.flags, headers: decodeHeaderBlock(await this.decompressor.run(p.subarray(4))) };
      case FrameType.HEADERS:
        need(4);
        return { kind: "headers", streamId: id31(0), flags: raw.flags, headers: decodeHeaderBlock(await this.decompressor.run(p.subarray(4))) };
      case FrameType.RST_STREAM:
        need(8);
        return { kind: "rst_stream", streamId: id31(0), status: p.readUInt32BE(4) };
      case FrameType.SETTINGS: {
        need(4);
        const count = p.readUInt32BE(0);
        need(4 + count * 8);
        const entries: SettingsEntry[] = [];
        for (let i = 0; i < count; i++) entries.push({ flags: p[4 + i * 8]!, id: p.readUInt32BE(4 + i * 8) & 0xffffff, value: p.readUInt32BE(8 + i * 8) });
        return { kind: "settings", flags: raw.flags, entries };
      }
      case FrameType.PING:
        need(4);
        return { kind: "ping", id: p.readUInt32BE(0) };
      case FrameType.GOAWAY:
        need(8);
        return { kind: "goaway", lastGoodStreamId: id31(0), status: p.readUInt32BE(4) };
      case FrameType.WINDOW_UPDATE:
        need(8);
        return { kind: "window_update", streamId: id31(0), delta: id31(4) };
      default:
        return { kind: "unknown", type: raw.type, version: raw.version, flags: raw.flags, payload: p };
    }
  }

  close(): void {
    this.compressor.close();
    this.decompressor.close();
  }
}

/** How a session reaches its peer: a raw (TLS) socket after `Upgrade: SPDY/3.1`, or a WebSocket tunnel. */
export interface ByteTransport {
  write(data: Buffer): void;
  end(): void;
}

/** A stream the client opened (server side). Writes before the SYN_REPLY went out are held back. */
export class SpdyStream {
  /** We sent FIN (data frame with FLAG_FIN). */
  localFin = false;
  /** The client sent FIN. */
  remoteFin = false;
  /** Reset by either side, or the connection went away. */
  reset = false;
  private readonly dataHandlers: ((d: Buffer) => void)[] = [];
  private readonly endHandlers: (() => void)[] = [];
  private readonly resetHandlers: ((status: number) => void)[] = [];

  constructor(
    private readonly session: SpdyServerSession,
    readonly id: number,
    readonly headers: SpdyHeaders,
  ) {}

  header(name: string): string | undefined {
    return this.headers[name]?.[0];
  }

  write(data: Buffer): void {
    if (this.localFin || this.reset) return;
    for (let at = 0; at < data.length; at += MAX_FRAME_LENGTH) this.session.sendData(this.id, 0, data.subarray(at, at + MAX_FRAME_LENGTH));
  }

  /** Half-close: an empty data frame with FLAG_FIN (spdystream's Stream.Close). */
  end(): void {
    if (this.localFin || this.reset) return;
    this.localFin = true;
    this.session.sendData(this.id, Flags.FIN, Buffer.alloc(0));
    this.session.forgetIfDone(this);
  }

  /** RST_STREAM (spdystream's Stream.Reset sends CANCEL). */
  resetStream(status: number = RstStatus.CANCEL): void {
    if (this.reset) return;
    this.session.send({ kind: "rst_stream", streamId: this.id, status });
    this.gone(status);
  }

  onData(h: (d: Buffer) => void): void {
    this.dataHandlers.push(h);
  }
  /** The client half-closed (FIN). */
  onEnd(h: () => void): void {
    this.endHandlers.push(h);
  }
  /** RST_STREAM from the client, or the connection closed. */
  onReset(h: (status: number) => void): void {
    this.resetHandlers.push(h);
  }

  /** @internal */
  received(data: Buffer, fin: boolean): void {
    if (this.remoteFin || this.reset) return;
    if (data.length > 0) for (const h of this.dataHandlers) h(data);
    if (fin) this.remoteFinished();
  }
  /** @internal */
  remoteFinished(): void {
    if (this.remoteFin || this.reset) return;
    this.remoteFin = true;
    for (const h of this.endHandlers.splice(0)) h();
    this.session.forgetIfDone(this);
  }
  /** @internal */
  gone(status: number): void {
    if (this.reset) return;
    this.reset = true;
    this.session.forget(this);
    for (const h of this.resetHandlers.splice(0)) h(status);
  }
}

/**
 * The server end of a SPDY/3.1 connection, behaving as spdystream does for the kubelet: streams
 * come from the client (odd ids, increasing); each is accepted with an empty SYN_REPLY or refused
 * with RST_STREAM CANCEL; client PINGs are echoed; SETTINGS and WINDOW_UPDATE are read and
 * ignored (spdystream does no flow control, so none is sent either); GOAWAY stops new streams.
 */
export class SpdyServerSession {
  private readonly framer = new SpdyFramer();
  private readonly splitter = new FrameSplitter();
  private readonly streams = new Map<number, SpdyStream>();
  private inbound: Promise<void> = Promise.resolve();
  private outbound: Promise<void> = Promise.resolve();
  private lastStreamId = 0;
  private goneAway = false;
  private isClosed = false;
  private holding: SpdyFrame[] | undefined;

  constructor(
    private readonly transport: ByteTransport,
    /** Called for each new stream; return false to refuse it. Writes made here follow the SYN_REPLY. */
    private readonly onStream: (stream: SpdyStream) => boolean,
    private readonly onClose: () => void = () => undefined,
  ) {}

  /** Bytes from the peer, in any chunking. */
  receive(chunk: Buffer): void {
    if (this.isClosed) return;
    for (const raw of this.splitter.push(chunk)) {
      this.inbound = this.inbound.then(async () => {
        if (this.isClosed) return;
        try {
          await this.handle(raw);
        } catch {
          // A frame we cannot read (bad version, length, header block): the connection is done.
          this.fail();
        }
      });
    }
  }

  /** The transport went away: every open stream is reset. */
  closed(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    for (const s of [...this.streams.values()]) s.gone(RstStatus.CANCEL);
    this.framer.close();
    this.onClose();
  }

  /** GOAWAY, then close the transport. */
  goAway(status: number = GoAwayStatus.OK): void {
    if (this.isClosed) return;
    this.send({ kind: "goaway", lastGoodStreamId: this.lastStreamId, status });
    this.outbound = this.outbound.then(() => this.transport.end());
  }

  /** @internal */
  send(frame: SpdyFrame): void {
    if (this.holding) return void this.holding.push(frame);
    this.outbound = this.outbound.then(async () => {
      if (this.isClosed) return;
      this.transport.write(await this.framer.encode(frame));
    }).catch(() => undefined);
  }
  /** @internal */
  sendData(streamId: number, flags: number, data: Buffer): void {
    this.send({ kind: "data", streamId, flags, data });
  }
  /** @internal */
  forgetIfDone(s: SpdyStream): void {
    if (s.localFin && s.remoteFin) this.forget(s);
  }
  /** @internal */
  forget(s: SpdyStream): void {
    if (this.streams.get(s.id) === s) this.streams.delete(s.id);
  }

  private fail(): void {
    this.goAway(GoAwayStatus.PROTOCOL_ERROR);
  }

  private async handle(raw: RawFrame): Promise<void> {
    if (raw.control && raw.version !== SPDY_VERSION) throw new SpdyProtocolError(`unsupported SPDY version ${raw.version}`);
    const frame = await this.framer.decode(raw);
    switch (frame.kind) {
      case "syn_stream": {
        if (this.goneAway) return;
        // Client streams have odd ids that only go up; anything else is a protocol error on that stream.
        if (frame.streamId === 0 || frame.streamId % 2 === 0 || frame.streamId <= this.lastStreamId) {
          return this.send({ kind: "rst_stream", streamId: frame.streamId || 1, status: RstStatus.PROTOCOL_ERROR });
        }
        this.lastStreamId = frame.streamId;
        const stream = new SpdyStream(this, frame.streamId, frame.headers);
        this.streams.set(stream.id, stream);
        // Writes made while the handler decides are held, and sent after the reply.
        const held: SpdyFrame[] = [];
        this.holding = held;
        let accepted: boolean;
        try {
          accepted = this.onStream(stream);
        } finally {
          this.holding = undefined;
        }
        if (!accepted) {
          stream.resetStream(RstStatus.CANCEL);
          return;
        }
        this.send({ kind: "syn_reply", streamId: stream.id, flags: 0, headers: {} });
        for (const f of held) this.send(f);
        if ((frame.flags & Flags.FIN) !== 0 || (frame.flags & Flags.UNIDIRECTIONAL) !== 0) stream.remoteFinished();
        return;
      }
      case "data": {
        const s = this.streams.get(frame.streamId);
        // spdystream drops data for streams it does not know (already gone or never opened).
        if (s) s.received(frame.data, (frame.flags & Flags.FIN) !== 0);
        return;
      }
      case "headers": {
        const s = this.streams.get(frame.streamId);
        if (!s) return;
        Object.assign(s.headers, frame.headers);
        if ((frame.flags & Flags.FIN) !== 0) s.remoteFinished();
        return;
      }
      case "rst_stream":
        this.streams.get(frame.streamId)?.gone(frame.status);
        return;
      case "ping":
        // Client pings have odd ids; echo them. Even ids would answer our own pings (we send none).
        if (frame.id % 2 === 1) this.send(frame);
        return;
      case "goaway":
        this.goneAway = true;
        return;
      case "syn_reply": // we open no streams
      case "settings":
      case "window_update":
      case "unknown":
        return;
    }
  }
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}

function control(type: number, flags: number, payload: Buffer): Buffer {
  if (payload.length > MAX_FRAME_LENGTH) throw new RangeError("control frame too large");
  return Buffer.concat([u32(((0x8000 | SPDY_VERSION) << 16) | type), u32((flags << 24) | payload.length), payload]);
}
