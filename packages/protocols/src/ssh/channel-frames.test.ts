import { describe, expect, it } from "vitest";
import {
  ChannelFrame,
  ChannelFrameError,
  ChannelFrameReader,
  MAX_FRAME_PAYLOAD,
  decodeExitStatus,
  decodeJson,
  encodeExitStatus,
  encodeFrame,
  encodeJsonFrame,
  frameHeader,
  type ExitSignal,
  type WindowSize,
} from "./channel-frames.js";

const bytes = (text: string) => new TextEncoder().encode(text);
const text = (b: Uint8Array) => new TextDecoder().decode(b);

function readAll(reader: ChannelFrameReader) {
  const out: { type: number; payload: string }[] = [];
  for (let f = reader.next(); f; f = reader.next()) out.push({ type: f.type, payload: text(f.payload) });
  return out;
}

describe("channel frames", () => {
  it("round-trips every frame type, whatever the chunking", () => {
    const size: WindowSize = { cols: 120, rows: 40, width: 0, height: 0 };
    const sig: ExitSignal = { signal: "TERM", coreDumped: false, message: "" };
    const wire = [
      encodeFrame(ChannelFrame.Data, bytes("ls -l\n")),
      encodeFrame(ChannelFrame.Stderr, bytes("oops")),
      encodeJsonFrame(ChannelFrame.WindowChange, size),
      encodeFrame(ChannelFrame.Signal, bytes("INT")),
      encodeFrame(ChannelFrame.Eof),
      encodeExitStatus(130),
      encodeJsonFrame(ChannelFrame.ExitSignal, sig),
    ];
    const all = Buffer.concat(wire);
    for (const step of [1, 3, 7, all.length]) {
      const reader = new ChannelFrameReader();
      const frames = [];
      for (let i = 0; i < all.length; i += step) {
        reader.push(all.subarray(i, i + step));
        for (let f = reader.next(); f; f = reader.next()) frames.push({ type: f.type, payload: Uint8Array.from(f.payload) });
      }
      expect(frames.map((f) => f.type)).toEqual([0, 1, 3, 4, 2, 5, 6]);
      expect(text(frames[0]!.payload)).toBe("ls -l\n");
      expect(decodeJson<WindowSize>(frames[2]!.payload)).toEqual(size);
      expect(frames[4]!.payload.byteLength).toBe(0);
      expect(decodeExitStatus(frames[5]!.payload)).toBe(130);
      expect(decodeJson<ExitSignal>(frames[6]!.payload)).toEqual(sig);
      expect(reader.pending).toBe(0);
    }
  });

  it("a header written apart from its payload reads as one frame", () => {
    const reader = new ChannelFrameReader();
    reader.push(frameHeader(ChannelFrame.Data, 5));
    expect(reader.next()).toBeUndefined();
    reader.push(bytes("hello"));
    expect(readAll(reader)).toEqual([{ type: 0, payload: "hello" }]);
  });

  it("refuses an unknown type and an oversized frame", () => {
    const unknown = new ChannelFrameReader();
    unknown.push(Uint8Array.of(9, 0, 0, 0, 0));
    expect(() => unknown.next()).toThrow(ChannelFrameError);
    const huge = new ChannelFrameReader();
    huge.push(frameHeader(ChannelFrame.Data, MAX_FRAME_PAYLOAD + 1));
    expect(() => huge.next()).toThrow(/at most/);
    expect(() => decodeExitStatus(Uint8Array.of(1))).toThrow(ChannelFrameError);
    expect(() => decodeJson(bytes("{"))).toThrow(ChannelFrameError);
  });
});
