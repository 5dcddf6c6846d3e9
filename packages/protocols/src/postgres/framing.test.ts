import { describe, expect, it } from "vitest";
import { concat } from "../../test/helpers/frames.js";
import { encodeBackendCopyData, encodeDataRow } from "./backend-messages.js";
import { PostgresProtocolError } from "./errors.js";
import type { Frame } from "./framing.js";
import { DEFAULT_BACKEND_LIMITS, MessageReader } from "./framing.js";
import { encodeQuery, encodeSSLRequest, encodeStartupMessage, encodeSync } from "./frontend-messages.js";

function drain(reader: MessageReader): Frame[] {
  const out: Frame[] = [];
  for (let f = reader.read(); f !== undefined; f = reader.read()) out.push(f);
  return out;
}

function errorCode(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (error) {
    if (error instanceof PostgresProtocolError) return error.code;
    throw error;
  }
  return undefined;
}

describe("MessageReader", () => {
  it("returns views into the pushed chunk when a message is contiguous", () => {
    const chunk = concat([encodeQuery({ query: "SELECT 1" }), encodeSync()]);
    const reader = new MessageReader();
    reader.push(chunk);
    const [query, sync] = drain(reader);
    expect(query).toMatchObject({ kind: "message", code: "Q", length: 9, truncated: false });
    expect(query?.kind === "message" && query.body.buffer).toBe(chunk.buffer);
    expect(sync).toMatchObject({ kind: "message", code: "S", length: 0 });
    expect(reader.buffered).toBe(0);
  });

  it("waits for the rest of a header and of a body", () => {
    const bytes = encodeQuery({ query: "SELECT 1" });
    const reader = new MessageReader();
    reader.push(bytes.subarray(0, 3));
    expect(reader.read()).toBeUndefined();
    reader.push(bytes.subarray(3, 8));
    expect(reader.read()).toBeUndefined();
    reader.push(bytes.subarray(8));
    const frame = reader.read();
    expect(frame?.kind === "message" && new TextDecoder().decode(frame.body)).toBe("SELECT 1\0");
  });

  it("rejects a declared length above the limit from the header alone, before buffering", () => {
    const reader = new MessageReader({ limits: { Q: 100 } });
    // Header of a 1 GB Query: the body never arrives, the reader must not wait for it.
    reader.push(new Uint8Array([0x51, 0x40, 0, 0, 0]));
    expect(errorCode(() => reader.read())).toBe("MESSAGE_TOO_LARGE");
  });

  it("uses the server's per-type limits by default (10000 bytes for Sync, 1 GiB for Query)", () => {
    const sync = new MessageReader();
    sync.push(new Uint8Array([0x53, 0, 0, 0x27, 0x11]));
    expect(errorCode(() => sync.read())).toBe("MESSAGE_TOO_LARGE");
    const query = new MessageReader();
    query.push(new Uint8Array([0x51, 0x3f, 0xff, 0xff, 0xfe]));
    expect(query.read()).toBeUndefined(); // allowed, waiting for the body
    const huge = new MessageReader();
    huge.push(new Uint8Array([0x51, 0x40, 0, 0, 0]));
    expect(errorCode(() => huge.read())).toBe("MESSAGE_TOO_LARGE");
  });

  it("rejects unknown types and lengths below 4", () => {
    const unknown = new MessageReader();
    unknown.push(new Uint8Array([0x7a, 0, 0, 0, 4]));
    expect(errorCode(() => unknown.read())).toBe("PROTOCOL_VIOLATION");
    const short = new MessageReader();
    short.push(new Uint8Array([0x53, 0, 0, 0, 3]));
    expect(errorCode(() => short.read())).toBe("PROTOCOL_VIOLATION");
  });

  it("reads untyped startup packets in startup mode and checks their length", () => {
    const reader = new MessageReader({ startup: true });
    reader.push(concat([encodeSSLRequest(), encodeStartupMessage({ params: { user: "u" } })]));
    const [ssl, startup] = drain(reader);
    expect(ssl).toMatchObject({ kind: "message", code: "", length: 4 });
    expect(startup).toMatchObject({ kind: "message", code: "" });
    const tooShort = new MessageReader({ startup: true });
    tooShort.push(new Uint8Array([0, 0, 0, 7, 0, 0, 0]));
    expect(errorCode(() => tooShort.read())).toBe("PROTOCOL_VIOLATION");
    const tooLong = new MessageReader({ startup: true });
    tooLong.push(new Uint8Array([0, 0, 0x27, 0x11]));
    expect(errorCode(() => tooLong.read())).toBe("MESSAGE_TOO_LARGE");
  });

  it("keeps only a prefix when the policy says so, and skips the rest as it arrives", () => {
    const big = encodeBackendCopyData({ data: new Uint8Array(100_000).fill(7) });
    const reader = new MessageReader({ limits: DEFAULT_BACKEND_LIMITS, policy: () => 10 });
    const frames: Frame[] = [];
    let maxBuffered = 0;
    for (let at = 0; at < big.byteLength; at += 4096) {
      reader.push(big.subarray(at, at + 4096));
      maxBuffered = Math.max(maxBuffered, reader.buffered);
      frames.push(...drain(reader));
    }
    expect(frames).toHaveLength(1);
    expect(frames[0]).toMatchObject({ kind: "message", code: "d", length: 100_000, truncated: true });
    expect(frames[0]?.kind === "message" && frames[0].body.byteLength).toBe(10);
    expect(maxBuffered).toBeLessThanOrEqual(4096);
    expect(reader.buffered).toBe(0);
  });

  it("knows when the bytes pushed end between messages, whether a message is kept, skipped or streamed", () => {
    const first = encodeDataRow({ values: [new Uint8Array(1000).fill(3)] });
    const second = encodeDataRow({ values: [new Uint8Array(5)] });
    const bytes = concat([first, second]);
    const boundaries = new Set([0, first.byteLength, bytes.byteLength]);
    for (const policy of [() => "buffer" as const, () => 10, () => "stream" as const]) {
      for (let at = 0; at <= bytes.byteLength; at++) {
        const reader = new MessageReader({ limits: DEFAULT_BACKEND_LIMITS, policy });
        reader.push(bytes.subarray(0, at));
        drain(reader);
        expect(reader.atMessageBoundary, `split at ${at}`).toBe(boundaries.has(at));
      }
    }
  });

  it("streams a large body as fragments without holding it", () => {
    const rowBytes = 5_000_000;
    const row = encodeDataRow({ values: [new Uint8Array(rowBytes).fill(1)] });
    const after = encodeBackendCopyData({ data: new Uint8Array([1, 2, 3]) });
    const stream = concat([row, after]);
    const reader = new MessageReader({
      limits: DEFAULT_BACKEND_LIMITS,
      policy: (_code, length) => (length > 1000 ? "stream" : "buffer"),
    });
    let streamed = 0;
    let fragments = 0;
    let maxBuffered = 0;
    const kinds: string[] = [];
    for (let at = 0; at < stream.byteLength; at += 65536) {
      reader.push(stream.subarray(at, at + 65536));
      maxBuffered = Math.max(maxBuffered, reader.buffered);
      for (const f of drain(reader)) {
        if (f.kind === "fragment") {
          streamed += f.bytes.byteLength;
          fragments++;
          if (f.final) kinds.push("final");
        } else kinds.push(`${f.kind}:${f.code}`);
      }
    }
    expect(kinds).toEqual(["start:D", "final", "message:d"]);
    expect(streamed).toBe(rowBytes + 6);
    expect(fragments).toBeGreaterThan(70);
    expect(maxBuffered).toBeLessThanOrEqual(65536);
  });

  it("hands over unread bytes, and refuses to in the middle of a message", () => {
    const reader = new MessageReader();
    const trailing = new Uint8Array([0x16, 3, 1]);
    reader.push(concat([encodeSync(), trailing]));
    expect(reader.read()).toMatchObject({ code: "S" });
    expect(reader.peekByte()).toBe(0x16);
    expect(concat(reader.takeBuffered())).toEqual(trailing);
    expect(reader.buffered).toBe(0);

    const partial = new MessageReader();
    partial.push(encodeQuery({ query: "SELECT 1" }).subarray(0, 7));
    expect(partial.read()).toBeUndefined();
    expect(errorCode(() => partial.takeBuffered())).toBe("INVALID_STATE");
  });

  it("reads a raw byte between messages (the server's answer to SSLRequest)", () => {
    const reader = new MessageReader({ limits: DEFAULT_BACKEND_LIMITS });
    reader.push(new Uint8Array([0x4e, 0x5a, 0, 0, 0, 5, 0x49]));
    expect(reader.readRawByte()).toBe(0x4e);
    expect(reader.read()).toMatchObject({ code: "Z", length: 1 });
    expect(reader.readRawByte()).toBeUndefined();
  });

  it("copies a body that spans chunks into one array", () => {
    const bytes = encodeQuery({ query: "x".repeat(50) });
    const reader = new MessageReader();
    for (let i = 0; i < bytes.byteLength; i += 7) reader.push(bytes.slice(i, i + 7));
    const frame = reader.read();
    expect(frame?.kind === "message" && new TextDecoder().decode(frame.body)).toBe(`${"x".repeat(50)}\0`);
  });
});
