// The writer's bookkeeping (order, bounds, settling) with a sink that records what it is given.
// Its behaviour against the real databases is in test/suite.ts.
import { describe, expect, it } from "vitest";
import { StoreError } from "./errors.js";
import type { SessionEvent } from "./types.js";
import { createEventWriter, type EventSink } from "./writer.js";

const ev = (seq: number): SessionEvent => ({ sessionId: "s", seq, timeUs: seq, kind: "query" });

/** Records batches; each takes `delayMs` to "commit". Fails the batches whose index is in `failing`. */
function recordingSink(delayMs = 1, failing = new Set<number>()) {
  const sink = {
    batches: [] as number[][],
    concurrent: 0,
    maxConcurrent: 0,
    events: {
      insertBatch: async (events: readonly SessionEvent[]) => {
        const index = sink.batches.push(events.map((e) => e.seq)) - 1;
        sink.concurrent++;
        sink.maxConcurrent = Math.max(sink.maxConcurrent, sink.concurrent);
        await new Promise((resolve) => setTimeout(resolve, delayMs));
        sink.concurrent--;
        if (failing.has(index)) throw new Error(`batch ${index} refused`);
      },
    },
  };
  return sink;
}

describe("createEventWriter", () => {
  it("keeps arrival order across batches and through thousands of waiting writers", async () => {
    const sink = recordingSink();
    const writer = createEventWriter(sink, { maxBatch: 5, maxQueued: 10, flushIntervalMs: 0 });
    let maxQueued = 0;
    const n = 3_000;
    const writes = Array.from({ length: n }, (_, i) => writer.write(ev(i + 1)));
    const settledOrder: number[] = [];
    writes.forEach((w, i) => void w.then(() => settledOrder.push(i + 1)));
    while (writer.stats.written < n) {
      maxQueued = Math.max(maxQueued, writer.stats.queued);
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    await Promise.all(writes);
    const expected = Array.from({ length: n }, (_, i) => i + 1);
    expect(sink.batches.flat()).toEqual(expected);
    expect(settledOrder).toEqual(expected);
    expect(Math.max(...sink.batches.map((b) => b.length))).toBeLessThanOrEqual(5);
    expect(maxQueued).toBeLessThanOrEqual(10);
    expect(sink.maxConcurrent).toBe(1);
  });

  it("rejects exactly the writes of the failed batch", async () => {
    const sink = recordingSink(1, new Set([1]));
    const writer = createEventWriter(sink, { maxBatch: 2, flushIntervalMs: 0 });
    const results = await Promise.allSettled(Array.from({ length: 6 }, (_, i) => writer.write(ev(i + 1))));
    expect(sink.batches).toEqual([[1, 2], [3, 4], [5, 6]]);
    expect(results.map((r) => r.status)).toEqual(["fulfilled", "fulfilled", "rejected", "rejected", "fulfilled", "fulfilled"]);
    const err = (results[2] as PromiseRejectedResult).reason as StoreError;
    expect(err).toBeInstanceOf(StoreError);
    expect(err.code).toBe("WRITE_FAILED");
    expect(err.context.batchSize).toBe(2);
    expect((err.cause as Error).message).toBe("batch 1 refused");
    expect(writer.stats).toMatchObject({ written: 4, failedBatches: 1, failedEvents: 2, batches: 3 });
  });

  it("treats a sink that throws synchronously like a failed batch", async () => {
    const sink: EventSink = {
      events: {
        insertBatch: () => {
          throw new Error("sync boom");
        },
      },
    };
    const writer = createEventWriter(sink, { flushIntervalMs: 0 });
    await expect(writer.write(ev(1))).rejects.toMatchObject({ code: "WRITE_FAILED" });
  });

  it("waits flushIntervalMs for company, and flush() does not", async () => {
    const sink = recordingSink();
    const writer = createEventWriter(sink, { flushIntervalMs: 60_000 });
    const first = writer.write(ev(1));
    const second = writer.write(ev(2));
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(sink.batches).toEqual([]);
    await writer.flush();
    expect(sink.batches).toEqual([[1, 2]]);
    await Promise.all([first, second]);
    await writer.flush(); // nothing pending: resolves at once
  });

  it("close() flushes the waiting writers too, then refuses new ones", async () => {
    const sink = recordingSink();
    const writer = createEventWriter(sink, { maxBatch: 2, maxQueued: 2, flushIntervalMs: 60_000 });
    const writes = Array.from({ length: 7 }, (_, i) => writer.write(ev(i + 1)));
    // The first two filled a batch and left at once; two more fill the queue.
    expect(writer.stats).toMatchObject({ inFlight: 2, queued: 2, waiting: 3 });
    await writer.close();
    expect(sink.batches.flat()).toEqual([1, 2, 3, 4, 5, 6, 7]);
    await Promise.all(writes);
    await expect(writer.write(ev(8))).rejects.toMatchObject({ code: "CLOSED" });
  });

  it("refuses nonsensical options", () => {
    const sink = recordingSink();
    expect(() => createEventWriter(sink, { maxBatch: 0 })).toThrow(StoreError);
    expect(() => createEventWriter(sink, { maxQueued: 1.5 })).toThrow(/maxQueued/);
    expect(() => createEventWriter(sink, { flushIntervalMs: -1 })).toThrow(/flushIntervalMs/);
  });
});
