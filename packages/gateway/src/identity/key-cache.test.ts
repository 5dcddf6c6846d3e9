import type { AccessKeyRecord } from "@gatehouse/store";
import { afterEach, describe, expect, it } from "vitest";
import { KeyCache, type KeyCacheTiming } from "./key-cache.js";

// The cache's rules against a store whose answers the test decides: answer, fail, or never answer
// (a blackholed store). The real store behind a cut network: test/store-outage-logins.test.ts.

const S = 1_000_000;
const timing: KeyCacheTiming = { refreshUs: 5 * S, graceUs: 15 * 60 * S, keepUnusedUs: 60 * 60 * S, coldReadMs: 50 };

function key(id: string, identity = "agent"): AccessKeyRecord {
  return { id, identity, verifiers: {}, createdUs: 0, expiresUs: null, revokedUs: null, lastUsedUs: null };
}

/** The store as the cache sees it: `mode` decides how the next reads go; `reads` counts them. */
function fakeStore(initial: AccessKeyRecord[]) {
  const state = { keys: initial, mode: "up" as "up" | "down" | "blackholed", reads: 0, pending: [] as Array<() => void> };
  const readKeys = (identity: string) => {
    state.reads++;
    if (state.mode === "down") return Promise.reject(new Error("connect ECONNREFUSED"));
    const answer = state.keys.filter((k) => k.identity === identity);
    if (state.mode === "blackholed") return new Promise<AccessKeyRecord[]>((resolve) => state.pending.push(() => resolve(answer)));
    return Promise.resolve(answer);
  };
  return { state, readKeys };
}

const caches: KeyCache[] = [];
afterEach(() => caches.splice(0).forEach((c) => c.close()));

function setup(initial = [key("k1")]) {
  let now = 1_000 * S;
  const store = fakeStore(initial);
  const outages: string[] = [];
  const cache = new KeyCache(store.readKeys, () => now, timing, (identity) => outages.push(identity));
  caches.push(cache);
  return { cache, store, outages, advance: (us: number) => (now += us) };
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 0));

describe("KeyCache", () => {
  it("serves an identity seen before from memory while the store does not answer, refreshing in the background", async () => {
    const { cache, store, outages, advance } = setup();
    expect((await cache.keys("agent")).map((k) => k.id)).toEqual(["k1"]);
    expect(store.state.reads).toBe(1);
    // Within the refresh interval: no read at all.
    advance(2 * S);
    await cache.keys("agent");
    expect(store.state.reads).toBe(1);
    // Older: served at once, one read in the background, shared by concurrent logins.
    store.state.mode = "blackholed";
    advance(4 * S);
    const started = performance.now();
    const served = await Promise.all([cache.keys("agent"), cache.keys("agent"), cache.keys("agent")]);
    expect(performance.now() - started).toBeLessThan(20);
    expect(served.map((keys) => keys.map((k) => k.id))).toEqual([["k1"], ["k1"], ["k1"]]);
    expect(store.state.reads).toBe(2);
    // The unanswered read counts as an outage after the cold-read deadline: said once, and to /readyz.
    await new Promise((resolve) => setTimeout(resolve, 80));
    expect(outages).toEqual(["agent"]);
    expect(cache.storeFailing).toBe(true);
    await cache.keys("agent");
    expect(outages).toEqual(["agent"]);
    // The store answers again: the copy is new, the outage over.
    store.state.keys = [key("k1"), key("k2")];
    for (const resolve of store.state.pending.splice(0)) resolve();
    await settle();
    expect(cache.storeFailing).toBe(false);
    expect((await cache.keys("agent")).map((k) => k.id)).toEqual(["k1"]); // what the read, sent before k2, saw
  });

  it("refuses to stand in for the store with keys read more than the grace period ago, or never read", async () => {
    const { cache, store, advance } = setup();
    store.state.mode = "blackholed";
    const cold = await cache.keys("agent").catch((e: unknown) => e);
    expect(cold).toMatchObject({ code: "CREDENTIALS_UNAVAILABLE", message: "the store did not answer within 50 ms" });
    store.state.mode = "down";
    expect(await cache.keys("other").catch((e: unknown) => e)).toMatchObject({ code: "CREDENTIALS_UNAVAILABLE" });

    store.state.mode = "up";
    for (const resolve of store.state.pending.splice(0)) resolve();
    await settle();
    // The late answer to the cold read was kept: the next login needs no store.
    store.state.mode = "down";
    expect((await cache.keys("agent")).map((k) => k.id)).toEqual(["k1"]);
    advance(15 * 60 * S + 1);
    expect(await cache.keys("agent").catch((e: unknown) => e)).toMatchObject({ code: "CREDENTIALS_UNAVAILABLE" });
  });

  it("keeps a key revoked through this gateway out, even when a read sent before the revocation answers after it", async () => {
    const { cache, store, advance } = setup([key("k1"), key("k2")]);
    await cache.keys("agent");
    store.state.mode = "blackholed";
    advance(6 * S);
    await cache.keys("agent"); // starts a background read that will still list k1
    cache.drop("k1");
    expect((await cache.keys("agent")).map((k) => k.id)).toEqual(["k2"]);
    for (const resolve of store.state.pending.splice(0)) resolve();
    await settle();
    expect((await cache.keys("agent")).map((k) => k.id)).toEqual(["k2"]);
  });

  it("refreshes identities in use on its timer, forgets long unused ones, and abandons a read that never answers", async () => {
    const { cache, store, advance } = setup([key("k1"), key("o1", "other")]);
    await cache.keys("agent");
    await cache.keys("other");
    advance(30 * 60 * S);
    await cache.keys("agent");
    await settle();
    const reads = store.state.reads;
    advance(31 * 60 * S); // "other" unused for over an hour; "agent" used 31 minutes ago
    cache.refreshDue();
    expect(store.state.reads).toBe(reads + 1); // only agent's
    await settle();
    store.state.mode = "blackholed";
    advance(6 * S);
    cache.refreshDue();
    cache.refreshDue();
    expect(store.state.reads).toBe(reads + 2); // one read in flight at a time...
    advance(31 * S);
    cache.refreshDue();
    expect(store.state.reads).toBe(reads + 3); // ...until it is given up on
  });

  it("reads an invalidated identity again before the next login: a key revoked elsewhere stops at once", async () => {
    const { cache, store } = setup([key("k1"), key("k2")]);
    expect((await cache.keys("agent")).map((k) => k.id)).toEqual(["k1", "k2"]);
    // Another gateway revoked k2 (the store announced it): no waiting for the refresh interval.
    store.state.keys = [key("k1")];
    store.state.mode = "blackholed";
    const pending = cache.keys("agent");
    // A read sent before an invalidation is not shared after it: the change may postdate it.
    cache.invalidate("agent");
    const login = cache.keys("agent");
    expect(store.state.reads).toBe(2);
    store.state.pending.splice(0).forEach((answer) => answer());
    expect((await login).map((k) => k.id)).toEqual(["k1"]);
    await pending;
    // A store that does not answer leaves the keys in memory standing, after the cold-read deadline.
    cache.invalidate();
    const during = await cache.keys("agent");
    expect(during.map((k) => k.id)).toEqual(["k1"]);
    store.state.pending.splice(0).forEach((answer) => answer());
  });

  it("an invalidated identity during an outage: one login waits out the deadline, the next ones do not", async () => {
    const { cache, store } = setup([key("k1")]);
    await cache.keys("agent");
    store.state.mode = "down";
    cache.invalidate("agent");
    await settle();
    const first = Date.now();
    expect((await cache.keys("agent")).map((k) => k.id)).toEqual(["k1"]);
    // Each later login takes the copy in memory at once (and sends a read), instead of 50 ms each.
    const later = Date.now();
    for (let i = 0; i < 5; i++) expect((await cache.keys("agent")).map((k) => k.id)).toEqual(["k1"]);
    expect(Date.now() - later).toBeLessThan(40);
    expect(later - first).toBeLessThan(1_000);
    // Back: the next read answers and the identity is no longer stale.
    store.state.mode = "up";
    store.state.keys = [];
    await settle();
    await cache.keys("agent"); // the read sent by this login answers with the store's keys
    await settle();
    expect((await cache.keys("agent")).map((k) => k.id)).toEqual([]);
  });

  it("never lets a read that answers late replace a later one", async () => {
    const { cache, store } = setup([key("k1")]);
    await cache.keys("agent");
    store.state.mode = "blackholed";
    cache.invalidate("agent"); // read A, before the change
    store.state.keys = [];
    cache.invalidate("agent"); // read B, after it
    const [early, late] = store.state.pending.splice(0);
    // B answers first (no keys), A last (still k1): B stands.
    store.state.keys = [];
    late!();
    await settle();
    store.state.keys = [key("k1")];
    early!();
    await settle();
    store.state.mode = "up";
    expect((await cache.keys("agent")).map((k) => k.id)).toEqual([]);
  });
});
