import fc from "fast-check";
import { describe, expect, test } from "vitest";

import { encodeConnector, encodeGateway } from "../test/fixtures.js";
import { encodeFrames, FrameDecoder } from "./frame-codec.js";
import { MessageBuilder } from "./message-builder.js";
import { Close, ConnectorFrame, GatewayFrame } from "./messages.js";

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex");

describe("MessageBuilder", () => {
  test("hand-written Data frames are byte for byte what protobufjs writes", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 0xffff_ffff }),
        fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 4 }),
        (streamId, parts) => {
          const payload = Buffer.concat(parts);
          for (const [field, encode] of [
            [2, (p: Uint8Array) => encodeGateway({ data: { streamId, payload: p } })],
            [3, (p: Uint8Array) => encodeConnector({ data: { streamId, payload: p } })],
          ] as const) {
            const builder = new MessageBuilder(field);
            builder.addData(streamId, parts, payload.length);
            const size = builder.size;
            const message = builder.finish();
            expect(message.length).toBe(size);
            expect(hex(message)).toBe(hex(encodeFrames([encode(payload)])));
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  test("a 64 KiB payload from several parts (3-byte varints)", () => {
    const payload = Uint8Array.from({ length: 65_536 }, (_, i) => i % 251);
    const parts = [payload.subarray(0, 1), payload.subarray(1, 40_000), payload.subarray(40_000)];
    const builder = new MessageBuilder(2);
    builder.addData(12_345, parts, payload.length);
    expect(hex(builder.finish())).toBe(hex(encodeFrames([encodeGateway({ data: { streamId: 12_345, payload } })])));
  });

  test("mixes encoded frames and Data frames in order, then starts over empty", () => {
    const builder = new MessageBuilder(3);
    const pong = encodeConnector({ pong: { nonce: 9 } });
    const close = encodeConnector({ close: { streamId: 5, kind: Close.Kind.END } });
    builder.addFrame(pong);
    builder.addData(5, [Uint8Array.of(1, 2, 3)], 3);
    builder.addFrame(close);
    const decoder = new FrameDecoder(ConnectorFrame.decode, 1024);
    const frames = [...decoder.frames(builder.finish())];
    expect(frames.map((frame) => frame.frame)).toEqual(["pong", "data", "close"]);
    expect([...frames[1]!.data!.payload!]).toEqual([1, 2, 3]);
    expect(builder.isEmpty).toBe(true);
    expect(builder.size).toBe(0);
  });

  test("GatewayFrame decodes what a gateway builder wrote", () => {
    const builder = new MessageBuilder(2);
    builder.addData(1, [Uint8Array.of(7)], 1);
    const [frame] = new FrameDecoder(GatewayFrame.decode, 64).frames(builder.finish());
    expect(frame?.frame).toBe("data");
    expect(frame?.data?.streamId).toBe(1);
  });
});
