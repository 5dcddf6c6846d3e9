import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { MAX_WS_MESSAGE, WS_OPCODE, WebSocketFrameError, WebSocketReader, type WebSocketMessage } from "./websocket-reader.js";

interface FrameOptions {
  fin?: boolean;
  /** Mask the payload (a client frame) with this key, or a random one when `true`. */
  mask?: boolean | Buffer;
  /** Force a length encoding (the reader must accept a longer-than-needed one too). */
  lengthBits?: 7 | 16 | 64;
  /** RSV bits, to check they do not disturb the opcode. */
  rsv?: number;
}

/** An RFC 6455 frame, built by hand. */
function frame(opcode: number, payload: Buffer | string, options: FrameOptions = {}): Buffer {
  const data = typeof payload === "string" ? Buffer.from(payload, "utf8") : payload;
  const fin = options.fin ?? true;
  const bits = options.lengthBits ?? (data.length < 126 ? 7 : data.length <= 0xffff ? 16 : 64);
  const key = options.mask === true ? randomBytes(4) : options.mask === false || options.mask === undefined ? undefined : options.mask;
  const parts: Buffer[] = [];
  const first = Buffer.from([(fin ? 0x80 : 0) | ((options.rsv ?? 0) << 4) | opcode]);
  parts.push(first);
  const maskBit = key ? 0x80 : 0;
  if (bits === 7) {
    if (data.length >= 126) throw new Error("too long for a 7-bit length");
    parts.push(Buffer.from([maskBit | data.length]));
  } else if (bits === 16) {
    const len = Buffer.alloc(3);
    len[0] = maskBit | 126;
    len.writeUInt16BE(data.length, 1);
    parts.push(len);
  } else {
    const len = Buffer.alloc(9);
    len[0] = maskBit | 127;
    len.writeBigUInt64BE(BigInt(data.length), 1);
    parts.push(len);
  }
  if (key) {
    parts.push(key);
    const masked = Buffer.alloc(data.length);
    for (let i = 0; i < data.length; i++) masked[i] = data[i]! ^ key[i % 4]!;
    parts.push(masked);
  } else parts.push(data);
  return Buffer.concat(parts);
}

const client = (opcode: number, payload: Buffer | string, options: Omit<FrameOptions, "mask"> & { mask?: Buffer } = {}) => frame(opcode, payload, { mask: true, ...options });
const server = (opcode: number, payload: Buffer | string, options: Omit<FrameOptions, "mask"> = {}) => frame(opcode, payload, options);

const msg = (opcode: number, data: Buffer | string): WebSocketMessage => ({ opcode, data: typeof data === "string" ? Buffer.from(data) : data });

/** Compares messages by opcode and bytes (Buffer.equals: toEqual walks large buffers byte by byte, slowly). */
function expectMessages(actual: WebSocketMessage[], expected: WebSocketMessage[]): void {
  expect(actual.map((m) => m.opcode)).toEqual(expected.map((m) => m.opcode));
  actual.forEach((m, i) => {
    expect(Buffer.isBuffer(m.data)).toBe(true);
    if (!m.data.equals(expected[i]!.data)) expect(m.data.toString("hex")).toBe(expected[i]!.data.toString("hex"));
  });
}

/** Every message, pushing `bytes` in chunks cut at `cuts`. */
function readAll(masked: boolean, bytes: Buffer, cuts: number[]): WebSocketMessage[] {
  const reader = new WebSocketReader(masked);
  const out: WebSocketMessage[] = [];
  let at = 0;
  for (const cut of [...cuts, bytes.length]) {
    out.push(...reader.push(bytes.subarray(at, cut)));
    at = cut;
  }
  return out;
}

const patterned = (n: number) => {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + 7) & 0xff;
  return b;
};

describe("WebSocketReader: single frames", () => {
  it("reads an unmasked server binary frame with a 7-bit length", () => {
    expectMessages(new WebSocketReader(false).push(server(WS_OPCODE.binary, "\x01hello")), [msg(WS_OPCODE.binary, "\x01hello")]);
  });

  it("unmasks a masked client frame with a random key", () => {
    for (let i = 0; i < 20; i++) {
      const payload = randomBytes(1 + (i * 7) % 100);
      expectMessages(new WebSocketReader(true).push(client(WS_OPCODE.binary, payload)), [msg(WS_OPCODE.binary, payload)]);
    }
  });

  it("reads 16-bit lengths (126..65535), masked and unmasked", () => {
    for (const n of [126, 1000, 0xffff]) {
      const payload = patterned(n);
      expectMessages(new WebSocketReader(true).push(client(WS_OPCODE.binary, payload)), [msg(WS_OPCODE.binary, payload)]);
      expectMessages(new WebSocketReader(false).push(server(WS_OPCODE.binary, payload)), [msg(WS_OPCODE.binary, payload)]);
    }
  });

  it("reads 64-bit lengths, masked and unmasked", () => {
    const payload = patterned(70_000);
    const c = client(WS_OPCODE.binary, payload);
    expect(c[1]! & 0x7f).toBe(127);
    expectMessages(new WebSocketReader(true).push(c), [msg(WS_OPCODE.binary, payload)]);
    expectMessages(new WebSocketReader(false).push(server(WS_OPCODE.binary, payload)), [msg(WS_OPCODE.binary, payload)]);
  });

  it("accepts a small payload in a longer-than-needed length form", () => {
    expectMessages(new WebSocketReader(false).push(server(WS_OPCODE.text, "hi", { lengthBits: 16 })), [msg(WS_OPCODE.text, "hi")]);
    expectMessages(new WebSocketReader(true).push(client(WS_OPCODE.text, "hi", { lengthBits: 64 })), [msg(WS_OPCODE.text, "hi")]);
  });

  it("reads an empty frame", () => {
    expectMessages(new WebSocketReader(true).push(client(WS_OPCODE.binary, "")), [msg(WS_OPCODE.binary, "")]);
    expectMessages(new WebSocketReader(false).push(server(WS_OPCODE.close, "")), [msg(WS_OPCODE.close, "")]);
  });

  it("reads the opcode without the RSV bits (permessage-deflate's RSV1)", () => {
    expectMessages(new WebSocketReader(false).push(server(WS_OPCODE.binary, "x", { rsv: 0b100 })), [msg(WS_OPCODE.binary, "x")]);
  });

  it("returns every message of several frames in one chunk, in order, control frames included", () => {
    const bytes = Buffer.concat([
      server(WS_OPCODE.binary, "\x01out"),
      server(WS_OPCODE.ping, "p"),
      server(WS_OPCODE.text, "t"),
      server(WS_OPCODE.pong, ""),
      server(WS_OPCODE.close, Buffer.from([0x03, 0xe8])),
    ]);
    expect(new WebSocketReader(false).push(bytes)).toEqual([
      msg(WS_OPCODE.binary, "\x01out"),
      msg(WS_OPCODE.ping, "p"),
      msg(WS_OPCODE.text, "t"),
      msg(WS_OPCODE.pong, ""),
      msg(WS_OPCODE.close, Buffer.from([0x03, 0xe8])),
    ]);
  });

  it("returns nothing for a partial frame, then the message once it completes", () => {
    const reader = new WebSocketReader(false);
    const f = server(WS_OPCODE.binary, "abcdef");
    expect(reader.push(f.subarray(0, 4))).toEqual([]);
    expectMessages(reader.push(f.subarray(4)), [msg(WS_OPCODE.binary, "abcdef")]);
  });
});

describe("WebSocketReader: fragmented messages", () => {
  it("joins a fragmented client message, a ping between its fragments coming out first", () => {
    const bytes = Buffer.concat([
      client(WS_OPCODE.binary, "\x00hel", { fin: false }),
      client(WS_OPCODE.continuation, "lo ", { fin: false }),
      client(WS_OPCODE.ping, "are you there"),
      client(WS_OPCODE.continuation, "world"),
    ]);
    expectMessages(new WebSocketReader(true).push(bytes), [msg(WS_OPCODE.ping, "are you there"), msg(WS_OPCODE.binary, "\x00hello world")]);
  });

  it("joins a fragmented server message across separate pushes", () => {
    const reader = new WebSocketReader(false);
    expect(reader.push(server(WS_OPCODE.text, "a", { fin: false }))).toEqual([]);
    expectMessages(reader.push(server(WS_OPCODE.ping, "")), [msg(WS_OPCODE.ping, "")]);
    expect(reader.push(server(WS_OPCODE.continuation, "b", { fin: false }))).toEqual([]);
    expectMessages(reader.push(server(WS_OPCODE.continuation, "c")), [msg(WS_OPCODE.text, "abc")]);
    // The next message starts fresh.
    expectMessages(reader.push(server(WS_OPCODE.binary, "d")), [msg(WS_OPCODE.binary, "d")]);
  });

  it("rejects a continuation frame without a message to continue", () => {
    expect(() => new WebSocketReader(true).push(client(WS_OPCODE.continuation, "x"))).toThrow(WebSocketFrameError);
    expect(() => new WebSocketReader(false).push(server(WS_OPCODE.continuation, "x", { fin: false }))).toThrow(/continuation frame without a message/);
  });

  it("rejects a continuation after the previous message has ended", () => {
    const reader = new WebSocketReader(false);
    reader.push(Buffer.concat([server(WS_OPCODE.binary, "a", { fin: false }), server(WS_OPCODE.continuation, "b")]));
    expect(() => reader.push(server(WS_OPCODE.continuation, "c"))).toThrow(WebSocketFrameError);
  });

  it("rejects a new message before the previous one's last fragment", () => {
    const bytes = Buffer.concat([server(WS_OPCODE.binary, "a", { fin: false }), server(WS_OPCODE.binary, "b")]);
    expect(() => new WebSocketReader(false).push(bytes)).toThrow(/new message before/);
  });
});

describe("WebSocketReader: frames split at every byte boundary", () => {
  const clientBytes = Buffer.concat([
    client(WS_OPCODE.binary, "\x00ls -la\n"),
    client(WS_OPCODE.binary, patterned(300), { fin: false }),
    client(WS_OPCODE.ping, "p"),
    client(WS_OPCODE.continuation, "tail"),
    client(WS_OPCODE.binary, "\x04{}", { lengthBits: 64 }),
    client(WS_OPCODE.close, Buffer.from([0x03, 0xe8])),
  ]);
  const clientMessages = [
    msg(WS_OPCODE.binary, "\x00ls -la\n"),
    msg(WS_OPCODE.ping, "p"),
    msg(WS_OPCODE.binary, Buffer.concat([patterned(300), Buffer.from("tail")])),
    msg(WS_OPCODE.binary, "\x04{}"),
    msg(WS_OPCODE.close, Buffer.from([0x03, 0xe8])),
  ];
  const serverBytes = Buffer.concat([
    server(WS_OPCODE.binary, "\x01out"),
    server(WS_OPCODE.binary, patterned(200), { fin: false }),
    server(WS_OPCODE.pong, ""),
    server(WS_OPCODE.continuation, "!"),
    server(WS_OPCODE.binary, "\x03{}", { lengthBits: 64 }),
  ]);
  const serverMessages = [
    msg(WS_OPCODE.binary, "\x01out"),
    msg(WS_OPCODE.pong, ""),
    msg(WS_OPCODE.binary, Buffer.concat([patterned(200), Buffer.from("!")])),
    msg(WS_OPCODE.binary, "\x03{}"),
  ];

  it("client bytes cut in two at every boundary give the same messages", () => {
    for (let cut = 0; cut <= clientBytes.length; cut++) {
      expectMessages(readAll(true, clientBytes, [cut]), clientMessages);
    }
  });

  it("server bytes cut in two at every boundary give the same messages", () => {
    for (let cut = 0; cut <= serverBytes.length; cut++) {
      expectMessages(readAll(false, serverBytes, [cut]), serverMessages);
    }
  });

  it("bytes pushed one at a time give the same messages", () => {
    const every = (n: number) => Array.from({ length: n - 1 }, (_, i) => i + 1);
    expectMessages(readAll(true, clientBytes, every(clientBytes.length)), clientMessages);
    expectMessages(readAll(false, serverBytes, every(serverBytes.length)), serverMessages);
  });

  it("a 64-bit length split inside its 8 length bytes", () => {
    const payload = patterned(70_000);
    const f = server(WS_OPCODE.binary, payload);
    for (let cut = 1; cut < 10; cut++) {
      expectMessages(readAll(false, f, [cut]), [msg(WS_OPCODE.binary, payload)]);
    }
  });
});

describe("WebSocketReader: masking rules", () => {
  it("rejects an unmasked client frame", () => {
    expect(() => new WebSocketReader(true).push(server(WS_OPCODE.binary, "x"))).toThrow(WebSocketFrameError);
    expect(() => new WebSocketReader(true).push(server(WS_OPCODE.binary, "x"))).toThrow(/unmasked frame from the client/);
  });

  it("rejects a masked server frame", () => {
    expect(() => new WebSocketReader(false).push(client(WS_OPCODE.binary, "x"))).toThrow(WebSocketFrameError);
    expect(() => new WebSocketReader(false).push(client(WS_OPCODE.binary, "x"))).toThrow(/masked frame from the server/);
  });

  it("rejects a wrongly masked frame that follows good ones", () => {
    const reader = new WebSocketReader(true);
    expectMessages(reader.push(client(WS_OPCODE.binary, "ok")), [msg(WS_OPCODE.binary, "ok")]);
    expect(() => reader.push(server(WS_OPCODE.binary, "bad"))).toThrow(WebSocketFrameError);
  });

  it("does not modify the pushed chunk when unmasking (the relay forwards it unchanged)", () => {
    const payload = patterned(500);
    const chunk = Buffer.concat([client(WS_OPCODE.binary, payload, { mask: Buffer.from([0xa5, 0x5a, 0xff, 0x01]) }), client(WS_OPCODE.ping, "ping")]);
    const before = Buffer.from(chunk);
    const out = new WebSocketReader(true).push(chunk);
    expect(out).toEqual([msg(WS_OPCODE.binary, payload), msg(WS_OPCODE.ping, "ping")]);
    expect(chunk.equals(before)).toBe(true);
  });

  it("does not modify chunks pushed in pieces either", () => {
    const chunk = client(WS_OPCODE.binary, patterned(100), { mask: Buffer.from([1, 2, 3, 4]) });
    const before = Buffer.from(chunk);
    const reader = new WebSocketReader(true);
    const a = chunk.subarray(0, 50);
    const b = chunk.subarray(50);
    reader.push(a);
    expectMessages(reader.push(b), [msg(WS_OPCODE.binary, patterned(100))]);
    expect(chunk.equals(before)).toBe(true);
  });

  it("returns payloads that do not share memory with the pushed chunk", () => {
    const chunk = server(WS_OPCODE.binary, "abc");
    const [m] = new WebSocketReader(false).push(chunk);
    chunk.fill(0);
    expect(m!.data.toString()).toBe("abc");
  });
});

describe("WebSocketReader: limits", () => {
  it("rejects a frame claiming more than MAX_WS_MESSAGE bytes before its payload arrives", () => {
    const header = Buffer.alloc(10);
    header[0] = 0x82;
    header[1] = 127;
    header.writeBigUInt64BE(BigInt(MAX_WS_MESSAGE + 1), 2);
    expect(() => new WebSocketReader(false).push(header)).toThrow(WebSocketFrameError);
  });

  it("rejects a frame claiming 4 GiB or more", () => {
    const header = Buffer.alloc(10);
    header[0] = 0x82;
    header[1] = 127;
    header.writeBigUInt64BE(2n ** 32n, 2);
    expect(() => new WebSocketReader(false).push(header)).toThrow(/4 GiB/);
  });

  it("rejects a fragmented message longer than MAX_WS_MESSAGE in all", () => {
    const reader = new WebSocketReader(false);
    const piece = Buffer.alloc(MAX_WS_MESSAGE / 2);
    expect(reader.push(server(WS_OPCODE.binary, piece, { fin: false }))).toEqual([]);
    expect(reader.push(server(WS_OPCODE.continuation, piece, { fin: false }))).toEqual([]);
    expect(() => reader.push(server(WS_OPCODE.continuation, "x"))).toThrow(/message longer than/);
  });
});
