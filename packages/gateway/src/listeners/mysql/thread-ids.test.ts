import { describe, expect, it } from "vitest";
import type { RecordedSession } from "../../sessions/recorder.js";
import { ThreadIds } from "./thread-ids.js";

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
});
