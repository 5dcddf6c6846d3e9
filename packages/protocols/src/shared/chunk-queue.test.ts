import { describe, expect, it } from "vitest";
import { ChunkQueue, concatBytes } from "./chunk-queue.js";

describe("ChunkQueue", () => {
  it("reads across chunks: bytes, uint32, a view when contiguous and a copy when not", () => {
    const queue = new ChunkQueue();
    const first = Uint8Array.of(1, 2, 3);
    queue.push(first);
    queue.push(new Uint8Array(0));
    queue.push(Uint8Array.of(4, 5, 6, 7));
    expect(queue.length).toBe(7);
    expect(queue.byteAt(4)).toBe(5);
    expect(queue.uint32BE(1)).toBe(0x02030405);
    const view = queue.take(2);
    expect(view.buffer).toBe(first.buffer);
    expect([...queue.take(3)]).toEqual([3, 4, 5]);
    expect(queue.length).toBe(2);
    expect(queue.takeAll().map((c) => [...c])).toEqual([[6, 7]]);
    expect(queue.length).toBe(0);
  });

  it("takeView stays within the current chunk", () => {
    const queue = new ChunkQueue();
    queue.push(Uint8Array.of(1, 2));
    queue.push(Uint8Array.of(3));
    expect([...queue.takeView(5)]).toEqual([1, 2]);
    expect([...queue.takeView(5)]).toEqual([3]);
    expect(queue.takeView(5).byteLength).toBe(0);
  });

  it("drops consumed chunks over a long run of small ones, and keeps reading right", () => {
    const queue = new ChunkQueue();
    for (let i = 0; i < 1000; i++) queue.push(Uint8Array.of(i & 0xff));
    for (let i = 0; i < 999; i++) expect(queue.take(1)[0]).toBe(i & 0xff);
    expect(queue.takeAll().map((c) => [...c])).toEqual([[999 & 0xff]]);
  });

  it("concatBytes joins in order", () => {
    expect([...concatBytes([Uint8Array.of(1), new Uint8Array(0), Uint8Array.of(2, 3)])]).toEqual([1, 2, 3]);
  });
});
