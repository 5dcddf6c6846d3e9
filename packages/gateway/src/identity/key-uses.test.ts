import { describe, expect, it } from "vitest";
import { KeyUses } from "./key-uses.js";

// Key uses go to the store in the background, one report at a time, each key with its latest use:
// a store that fails or hangs sees one call at a time, not one per login.

function store() {
  const state = { failing: true, calls: 0, inFlight: 0, maxInFlight: 0, stored: new Map<string, number>() };
  const accessKeys = {
    touch: async (id: string, atUs: number) => {
      state.calls++;
      state.maxInFlight = Math.max(state.maxInFlight, ++state.inFlight);
      await new Promise((resolve) => setTimeout(resolve, 5));
      state.inFlight--;
      if (state.failing) throw new Error("connect ECONNREFUSED");
      state.stored.set(id, Math.max(state.stored.get(id) ?? 0, atUs));
    },
  };
  return { state, target: accessKeys };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("KeyUses", () => {
  it("reports each key's latest use, one call at a time, and keeps them while the store fails", async () => {
    const { state, target } = store();
    const uses = new KeyUses(target, { reportDelayMs: 20, retryDelayMs: 60, closeWaitMs: 500 });
    for (let i = 1; i <= 500; i++) uses.report(i % 2 === 0 ? "k1" : "k2", i);
    await sleep(200);
    // Failing: a report stops at its first failed call and waits retryDelayMs before the next.
    expect(state.calls).toBeLessThanOrEqual(4);
    expect(state.maxInFlight).toBe(1);
    state.failing = false;
    await sleep(150);
    expect(Object.fromEntries(state.stored)).toEqual({ k1: 500, k2: 499 });
    uses.report("k1", 501);
    await uses.close();
    expect(state.stored.get("k1")).toBe(501);
  });
});
