import fc from "fast-check";
import { describe, expect, test } from "vitest";

import { encodeConnector, encodeGateway } from "../test/fixtures.js";
import { readDataFrame } from "./data-decoder.js";
import { TunnelError } from "./errors.js";
import { encodeFrames, FrameDecoder } from "./frame-codec.js";
import { MessageBuilder } from "./message-builder.js";
import { ConnectorFrame, GatewayFrame } from "./messages.js";
import { connectorCodec, gatewayCodec } from "./role-codec.js";

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex");

/** Both directions: the field Data has, how protobufjs writes and reads that frame message. */
const sides = [
  { field: 2, encode: encodeGateway, decode: (b: Uint8Array) => GatewayFrame.decode(b), codec: connectorCodec },
  { field: 3, encode: encodeConnector, decode: (b: Uint8Array) => ConnectorFrame.decode(b), codec: gatewayCodec },
] as const;

/** What protobufjs makes of `bytes` as a Data frame: {streamId, payload hex}, "other" (another kind), or "error". */
function reference(side: (typeof sides)[number], bytes: Uint8Array): { streamId: number; payload: string } | string {
  try {
    const frame = side.decode(bytes);
    if (frame.frame !== "data") return "other";
    return { streamId: frame.data!.streamId ?? 0, payload: hex(frame.data!.payload ?? new Uint8Array(0)) };
  } catch {
    return "error";
  }
}

describe("readDataFrame", () => {
  test("reads what protobufjs writes, with the same result", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 28 - 1 }), fc.uint8Array({ maxLength: 600 }), (streamId, payload) => {
        for (const side of sides) {
          const bytes = side.encode({ data: { streamId, payload } });
          const data = readDataFrame(bytes, side.field);
          expect(data).toBeDefined();
          expect({ streamId: data!.streamId, payload: hex(data!.payload) }).toEqual(reference(side, bytes));
        }
      }),
      { numRuns: 500 },
    );
  });

  test("a 64 KiB payload (3-byte lengths) is a view into the frame, not a copy", () => {
    const payload = Uint8Array.from({ length: 65_536 }, (_, i) => i % 251);
    const bytes = Buffer.from(encodeGateway({ data: { streamId: 300, payload } }));
    const data = readDataFrame(bytes, 2)!;
    expect(data.streamId).toBe(300);
    expect(hex(data.payload)).toBe(hex(payload));
    expect(data.payload.buffer).toBe(bytes.buffer);
    expect(Buffer.isBuffer(data.payload)).toBe(true);
  });

  test("leaves stream ids of 2^28 and more (5-byte varints) to protobufjs, which the codec then uses", () => {
    for (const streamId of [2 ** 28, 0xffff_ffff]) {
      const bytes = encodeConnector({ data: { streamId, payload: Uint8Array.of(1, 2) } });
      expect(readDataFrame(bytes, 3)).toBeUndefined();
      const frame = gatewayCodec.decode(bytes);
      expect(frame.frame).toBe("data");
      expect(frame.data?.streamId).toBe(streamId);
    }
  });

  test("is not fooled by the other side's field number or by other frame kinds", () => {
    const data = encodeGateway({ data: { streamId: 1, payload: Uint8Array.of(1) } });
    expect(readDataFrame(data, 3)).toBeUndefined();
    expect(readDataFrame(encodeGateway({ windowUpdate: { streamId: 1, credit: 5 } }), 2)).toBeUndefined();
    expect(readDataFrame(encodeConnector({ close: { streamId: 1, kind: 1 } }), 3)).toBeUndefined();
    expect(readDataFrame(new Uint8Array(0), 2)).toBeUndefined();
  });

  test("non-canonical encodings go to protobufjs: fields reversed, an unknown field, a frame with two fields", () => {
    // data { payload = [7]; stream_id = 5 } (reversed order)
    const reversed = Uint8Array.of(0x12, 0x05, 0x12, 0x01, 0x07, 0x08, 0x05);
    // data { stream_id = 5; unknown field 9 = 1; payload = [7] }
    const unknown = Uint8Array.of(0x12, 0x07, 0x08, 0x05, 0x48, 0x01, 0x12, 0x01, 0x07);
    // data {stream_id 5} followed by another data field (last one wins in protobuf)
    const twice = Uint8Array.of(0x12, 0x02, 0x08, 0x05, 0x12, 0x02, 0x08, 0x06);
    for (const bytes of [reversed, unknown, twice]) {
      expect(readDataFrame(bytes, 2)).toBeUndefined();
      const frame = connectorCodec.decode(bytes);
      expect(frame.frame).toBe("data");
      expect(frame.data?.streamId).toBe(bytes === twice ? 6 : 5);
    }
  });

  test("every truncation of a Data frame is refused, and the frame decoder fails cleanly on it", () => {
    const frame = encodeConnector({ data: { streamId: 70_000, payload: Uint8Array.from({ length: 200 }, (_, i) => i) } });
    for (let cut = 0; cut < frame.length; cut++) {
      const bytes = frame.subarray(0, cut);
      expect(readDataFrame(bytes, 3)).toBeUndefined();
      const decoder = new FrameDecoder(gatewayCodec.decode, 1024);
      let outcome: unknown;
      try {
        outcome = [...decoder.frames(encodeFrames([bytes]))];
      } catch (err) {
        outcome = err;
      }
      // protobufjs either reads a shorter frame or refuses it; a refusal is BAD_FRAME, never a crash.
      if (outcome instanceof Error) {
        expect(outcome).toBeInstanceOf(TunnelError);
        expect((outcome as TunnelError).code).toBe("BAD_FRAME");
      }
    }
  });

  test("on arbitrary and mutated bytes it never throws, and whatever it reads protobufjs reads the same", () => {
    const valid = fc
      .tuple(fc.integer({ min: 0, max: 2 ** 32 - 1 }), fc.uint8Array({ maxLength: 40 }))
      .map(([streamId, payload]) => encodeGateway({ data: { streamId, payload } }));
    const mutated = fc
      .tuple(valid, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 3 }), fc.nat(), fc.uint8Array({ maxLength: 3 }))
      .map(([bytes, edits, cut, tail]) => {
        const out = Uint8Array.from(bytes);
        for (const [at, value] of edits) out[at % out.length] = value;
        return Uint8Array.from([...out.subarray(0, cut % (out.length + 1)), ...tail]);
      });
    const arbitrary = fc.uint8Array({ maxLength: 20 }).map((rest) => Uint8Array.of(0x12, ...rest));
    fc.assert(
      fc.property(fc.oneof(mutated, arbitrary), (bytes) => {
        const side = sides[0];
        const data = readDataFrame(bytes, side.field);
        if (data !== undefined) {
          expect({ streamId: data.streamId, payload: hex(data.payload) }).toEqual(reference(side, bytes));
        }
        // The codec (fast path, else protobufjs) agrees with protobufjs alone.
        let viaCodec: ReturnType<typeof reference>;
        try {
          const frame = side.codec.decode(bytes);
          viaCodec =
            frame.frame === "data"
              ? { streamId: frame.data!.streamId ?? 0, payload: hex(frame.data!.payload ?? new Uint8Array(0)) }
              : "other";
        } catch {
          viaCodec = "error";
        }
        expect(viaCodec).toEqual(reference(side, bytes));
      }),
      { numRuns: 3000 },
    );
  });

  test("reads every Data frame a MessageBuilder writes, several to a message", () => {
    const builder = new MessageBuilder(3);
    builder.addData(1, [Uint8Array.of(1, 2)], 2);
    builder.addData(2, [], 0);
    builder.addData(3, [Uint8Array.of(3), Uint8Array.of(4, 5)], 3);
    const frames = [...new FrameDecoder(gatewayCodec.decode, 1024).frames(builder.finish())];
    expect(frames.map((f) => (f.frame === "data" ? [f.data!.streamId, hex(f.data!.payload ?? new Uint8Array(0))] : f.frame))).toEqual([
      [1, "0102"],
      [2, ""],
      [3, "030405"],
    ]);
  });
});
