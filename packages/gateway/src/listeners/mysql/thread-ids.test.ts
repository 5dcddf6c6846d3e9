import { describe, expect, it } from "vitest";
import type { RecordedSession } from "../../sessions/recorder.js";
import { MAX_THREAD_ID, ThreadIds } from "./thread-ids.js";

describe("thread ids", () => {
  it("issues fresh ids, routes bound ones, and forgets released ones", () => {
    const ids = new ThreadIds();
    const a = ids.next();
    const b = ids.next();
    expect(a).not.toBe(b);
    expect(ids.find(a)).toBeUndefined();
    const route = { session: {} as RecordedSession, identity: "agent", serverThreadId: 77, end: () => undefined };
    ids.bind(a, route);
    expect(ids.find(a)).toBe(route);
    ids.release(a);
    expect(ids.find(a)).toBeUndefined();
    expect(ids.size).toBe(0);
  });

  it("draws ids at random below 2^31 (gateways share the id space) and never one still bound", () => {
    const draws = [5, 5, 9];
    const ids = new ThreadIds(() => draws.shift()!);
    const route = { session: {} as RecordedSession, identity: "agent", serverThreadId: 1, end: () => undefined };
    ids.bind(ids.next(), route);
    expect(ids.next()).toBe(9);
    const real = new ThreadIds();
    for (let i = 0; i < 1000; i++) {
      const id = real.next();
      expect(id).toBeGreaterThan(0);
      expect(id).toBeLessThan(MAX_THREAD_ID);
    }
  });
});
