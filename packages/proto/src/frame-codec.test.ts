import fc from "fast-check";
import { describe, expect, test } from "vitest";

import {
  connectorFrames,
  encodeConnector,
  encodeGateway,
  gatewayFrames,
  connectorJson,
  gatewayJson,
} from "../test/fixtures.js";
import { TunnelError } from "./errors.js";
import { encodeFrames, FrameDecoder } from "./frame-codec.js";
import { ConnectorFrame, GatewayFrame } from "./messages.js";

const MAX = 1024 * 1024;
const rawDecoder = (max = MAX) => new FrameDecoder((bytes) => Buffer.from(bytes).toString("hex"), max);
const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex");
const gatewayDecoder = () => new FrameDecoder(gatewayJson, MAX);
const connectorDecoder = () => new FrameDecoder(connectorJson, MAX);

function drain<T>(decoder: FrameDecoder<T>, ...chunks: Uint8Array[]): T[] {
  const out: T[] = [];
  for (const chunk of chunks) out.push(...decoder.frames(chunk));
  return out;
}

function thrown(run: () => unknown): unknown {
  try {
    run();
  } catch (err) {
    return err;
  }
  throw new Error("expected a throw");
}

const gatewayMessage = encodeFrames(gatewayFrames.map(encodeGateway));
const connectorMessage = encodeFrames(connectorFrames.map(encodeConnector));
const expectedGateway = gatewayFrames.map((frame) => gatewayJson(encodeGateway(frame)));
const expectedConnector = connectorFrames.map((frame) => connectorJson(encodeConnector(frame)));

describe("frame round trip", () => {
  test.each(gatewayFrames.map((frame) => [Object.keys(frame)[0], frame] as const))(
    "GatewayFrame %s",
    (_kind, frame) => {
      const [decoded] = drain(new FrameDecoder(GatewayFrame.decode, MAX), encodeFrames([encodeGateway(frame)]));
      expect(JSON.stringify(GatewayFrame.toObject(decoded!, { oneofs: true, bytes: String }))).toBe(
        JSON.stringify(GatewayFrame.toObject(GatewayFrame.fromObject(frame), { oneofs: true, bytes: String })),
      );
      expect(decoded!.frame).toBe(Object.keys(frame)[0]);
    },
  );

  test.each(connectorFrames.map((frame) => [Object.keys(frame)[0], frame] as const))(
    "ConnectorFrame %s",
    (_kind, frame) => {
      const [decoded] = drain(new FrameDecoder(ConnectorFrame.decode, MAX), encodeFrames([encodeConnector(frame)]));
      expect(JSON.stringify(ConnectorFrame.toObject(decoded!, { oneofs: true, bytes: String }))).toBe(
        JSON.stringify(ConnectorFrame.toObject(ConnectorFrame.fromObject(frame), { oneofs: true, bytes: String })),
      );
      expect(decoded!.frame).toBe(Object.keys(frame)[0]);
    },
  );

  test("the fixtures cover every oneof case", () => {
    const kinds = (frames: object[]) => new Set(frames.map((frame) => Object.keys(frame)[0]));
    expect(kinds(gatewayFrames)).toEqual(new Set(["open", "data", "windowUpdate", "close", "ping", "pong"]));
    expect(kinds(connectorFrames)).toEqual(
      new Set(["opened", "failed", "data", "windowUpdate", "close", "ping", "pong", "drain"]),
    );
  });
});

describe("FrameDecoder", () => {
  test("several frames back to back, split at every offset, give the same frames", () => {
    for (const [message, decoder, expected] of [
      [gatewayMessage, gatewayDecoder, expectedGateway],
      [connectorMessage, connectorDecoder, expectedConnector],
    ] as const) {
      expect(drain(decoder(), message)).toEqual(expected);
      for (let cut = 0; cut <= message.length; cut++) {
        expect(drain(decoder(), message.subarray(0, cut), message.subarray(cut))).toEqual(expected);
      }
    }
  });

  test("split at every pair of offsets around the small frames, and one byte at a time", () => {
    // Every 3-way split of the first frames (the big payload is covered by the 2-way splits above).
    const head = encodeFrames(gatewayFrames.slice(0, 4).map(encodeGateway));
    const expected = expectedGateway.slice(0, 4);
    for (let a = 0; a <= head.length; a++) {
      for (let b = a; b <= head.length; b += 7) {
        expect(drain(gatewayDecoder(), head.subarray(0, a), head.subarray(a, b), head.subarray(b))).toEqual(expected);
      }
    }
    const bytes = [...connectorMessage].map((byte) => Uint8Array.of(byte));
    expect(drain(connectorDecoder(), ...bytes)).toEqual(expectedConnector);
  });

  test("hands out views into the chunk, copying only a frame that straddles chunks", () => {
    const payload = Uint8Array.from({ length: 100 }, (_, i) => i + 1);
    const message = encodeFrames([encodeGateway({ data: { streamId: 1, payload } })]);
    const whole = drain(new FrameDecoder(GatewayFrame.decode, MAX), message)[0]!.data!.payload!;
    const split = drain(new FrameDecoder(GatewayFrame.decode, MAX), message.subarray(0, 50), message.subarray(50))[0]!
      .data!.payload!;
    message.fill(0);
    // The view sees the overwrite; the straddling frame was copied (once) and keeps its bytes.
    expect(whole.every((byte) => byte === 0)).toBe(true);
    expect(hex(split)).toBe(hex(payload));
  });

  test("a 3-byte length prefix (a 70 000-byte frame) split around the prefix and inside the payload", () => {
    const frame = Uint8Array.from({ length: 70_000 }, (_, i) => (i * 31) & 0xff);
    const message = encodeFrames([frame, Uint8Array.of(1, 2, 3)]);
    for (const cut of [1, 2, 3, 4, 1000, 65_536, 70_002, 70_003, 70_004]) {
      expect(drain(rawDecoder(), message.subarray(0, cut), message.subarray(cut))).toEqual([hex(frame), "010203"]);
    }
  });

  test("empty frames decode to an empty message", () => {
    expect(drain(rawDecoder(), Uint8Array.of(0, 0))).toEqual(["", ""]);
  });

  test("a declared length over the maximum fails before any of the frame is buffered", () => {
    const decoder = rawDecoder(1000);
    // varint 1001 = 0xe9 0x07; nothing after it has arrived yet.
    const err = thrown(() => drain(decoder, Uint8Array.of(0xe9, 0x07)));
    expect(err).toBeInstanceOf(TunnelError);
    expect((err as TunnelError).code).toBe("FRAME_TOO_LARGE");
    expect(decoder.bufferedBytes).toBe(0);
    // The decoder stays failed.
    expect((thrown(() => decoder.push(Uint8Array.of(1))) as TunnelError).code).toBe("FRAME_TOO_LARGE");
  });

  test("a huge length is refused while its prefix is still incomplete", () => {
    const decoder = rawDecoder(1 << 20);
    // 0xff 0xff 0xff…: already past 2^21 after three bytes, with more to come.
    const err = thrown(() => drain(decoder, Uint8Array.of(0xff, 0xff, 0xff)));
    expect((err as TunnelError).code).toBe("FRAME_TOO_LARGE");
  });

  test("a length of exactly the maximum is accepted", () => {
    const frame = new Uint8Array(1000).fill(9);
    expect(drain(rawDecoder(1000), encodeFrames([frame]))).toEqual([hex(frame)]);
  });

  test("an over-long length prefix is BAD_FRAME", () => {
    const err = thrown(() => drain(rawDecoder(2 ** 40), Uint8Array.of(0x80, 0x80, 0x80, 0x80, 0x80, 0x01)));
    expect((err as TunnelError).code).toBe("BAD_FRAME");
  });

  test("undecodable frame bytes are BAD_FRAME, with the decoder's error as cause", () => {
    // A GatewayFrame whose `data` field claims 100 bytes but holds 2.
    const garbage = encodeFrames([Uint8Array.of(0x12, 100, 0x08, 0x01)]);
    const err = thrown(() => drain(new FrameDecoder(GatewayFrame.decode, MAX), garbage)) as TunnelError;
    expect(err).toBeInstanceOf(TunnelError);
    expect(err.code).toBe("BAD_FRAME");
    expect(err.cause).toBeInstanceOf(Error);
  });

  test("holds at most one frame's worth of bytes", () => {
    const decoder = rawDecoder(1000);
    drain(decoder, encodeFrames([new Uint8Array(1000)]).subarray(0, 900));
    expect(decoder.bufferedBytes).toBe(898); // the 2-byte prefix is parsed and gone
  });

  test("random bytes give frames or a TunnelError, never anything else", () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 8 }),
        fc.integer({ min: 1, max: 256 }),
        fc.boolean(),
        (chunks, max, gatewaySide) => {
          const decoder = gatewaySide
            ? new FrameDecoder(ConnectorFrame.decode, max)
            : new FrameDecoder(GatewayFrame.decode, max);
          try {
            for (const chunk of chunks) for (const frame of decoder.frames(chunk)) expect(frame).toBeTypeOf("object");
          } catch (err) {
            expect(err).toBeInstanceOf(TunnelError);
            expect(["BAD_FRAME", "FRAME_TOO_LARGE"]).toContain((err as TunnelError).code);
          }
          expect(decoder.bufferedBytes).toBeLessThanOrEqual(max + 5 + 64);
        },
      ),
      { numRuns: 2000 },
    );
  });
});
