import { describe, expect, it } from "vitest";
import { concatBytes } from "../shared/chunk-queue.js";
import { MysqlProtocolError } from "./errors.js";
import { MAX_PACKET_PIECE, PacketReader, encodePacket, encodePacketChunks, nextSequenceId, type Packet } from "./framing.js";

function readAll(reader: PacketReader): Packet[] {
  const out: Packet[] = [];
  for (let p = reader.read(); p; p = reader.read()) out.push(p);
  return out;
}


describe("PacketReader", () => {
  const stream = concatBytes([
    encodePacket(0, new TextEncoder().encode("\x03SELECT 1")),
    encodePacket(1, new Uint8Array(0)),
    encodePacket(7, Uint8Array.of(0xfe, 0, 0, 2, 0)),
  ]);

  it("reads packets split at every offset", () => {
    for (let cut = 0; cut <= stream.byteLength; cut++) {
      const reader = new PacketReader();
      reader.push(stream.subarray(0, cut));
      const first = readAll(reader);
      reader.push(stream.subarray(cut));
      const packets = [...first, ...readAll(reader)];
      expect(packets.map((p) => [p.sequenceId, p.lastSequenceId, Buffer.from(p.payload).toString("latin1")])).toEqual([
        [0, 0, "\x03SELECT 1"],
        [1, 1, ""],
        [7, 7, "\xfe\x00\x00\x02\x00"],
      ]);
      expect(reader.atPacketBoundary).toBe(true);
    }
  });

  it("joins a packet split into 0xFFFFFF-byte pieces, also at an exact multiple (empty last piece)", () => {
    for (const size of [MAX_PACKET_PIECE - 1, MAX_PACKET_PIECE, MAX_PACKET_PIECE + 5, 2 * MAX_PACKET_PIECE]) {
      const payload = new Uint8Array(size);
      for (let i = 0; i < size; i += 4099) payload[i] = (i / 4099) & 0xff;
      payload[size - 1] = 0x5a;
      const chunks = encodePacketChunks(255, payload);
      const reader = new PacketReader();
      // Feed in uneven chunks so pieces straddle pushes.
      const wire = concatBytes(chunks);
      for (let at = 0; at < wire.byteLength; at += 1_000_003) reader.push(wire.subarray(at, at + 1_000_003));
      const [packet, ...rest] = readAll(reader);
      expect(rest).toEqual([]);
      expect(packet!.sequenceId).toBe(255);
      expect(packet!.lastSequenceId).toBe((255 + Math.floor(size / MAX_PACKET_PIECE)) & 0xff);
      expect(nextSequenceId(255, size)).toBe((packet!.lastSequenceId + 1) & 0xff);
      expect(packet!.payload.byteLength).toBe(size);
      expect(Buffer.compare(Buffer.from(packet!.payload), Buffer.from(payload))).toBe(0);
    }
  });

  it("refuses a packet above the maximum from its header, before buffering the payload", () => {
    const reader = new PacketReader({ maxPacketSize: 100 });
    reader.push(Uint8Array.of(101, 0, 0, 0));
    expect(() => reader.read()).toThrow(expect.objectContaining({ code: "PACKET_TOO_LARGE", errno: 1153, sqlState: "08S01" }));
  });

  it("counts every piece of a split packet against the maximum", () => {
    const reader = new PacketReader({ maxPacketSize: MAX_PACKET_PIECE + 10 });
    reader.push(encodePacketChunks(0, new Uint8Array(MAX_PACKET_PIECE + 11))[0]!);
    reader.push(new Uint8Array(MAX_PACKET_PIECE));
    reader.push(Uint8Array.of(11, 0, 0, 1));
    expect(() => reader.read()).toThrow(MysqlProtocolError);
  });

  it("refuses a piece whose sequence id does not follow the previous piece's", () => {
    const chunks = encodePacketChunks(3, new Uint8Array(MAX_PACKET_PIECE + 1));
    chunks[2] = Uint8Array.of(1, 0, 0, 9);
    const reader = new PacketReader();
    for (const c of chunks) reader.push(c);
    expect(() => reader.read()).toThrow(expect.objectContaining({ code: "PACKETS_OUT_OF_ORDER", errno: 1156 }));
  });

  it("hands on the bytes after a packet", () => {
    const reader = new PacketReader();
    reader.push(concatBytes([encodePacket(1, Uint8Array.of(1, 2)), Uint8Array.of(0x16, 3, 1)]));
    expect(reader.read()?.payload).toEqual(Uint8Array.of(1, 2));
    expect(reader.read()).toBeUndefined();
    expect(reader.peekByte()).toBe(0x16);
    expect(concatBytes(reader.takeBuffered())).toEqual(Uint8Array.of(0x16, 3, 1));
    expect(reader.buffered).toBe(0);
  });
});
