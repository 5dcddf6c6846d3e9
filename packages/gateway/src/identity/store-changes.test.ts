import type { StoreChange } from "@gatehouse/store";
import pino from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { followStoreChanges, type ChangeFollower } from "./store-changes.js";

// The follower's rules against a store whose notices and counter the test decides. The real
// Postgres, with two gateways: test/multi-gateway.test.ts.

const logger = pino({ level: "silent" });
const followers: ChangeFollower[] = [];
afterEach(async () => {
  for (const f of followers.splice(0)) await f.close();
});

function fakeStore() {
  const state = { version: 10, onChange: undefined as ((c: StoreChange) => void) | undefined, onListen: undefined as (() => void) | undefined, retired: false };
  const store = {
    changes: {
      version: async () => state.version,
      listen: async (onChange: (c: StoreChange) => void, onListen: () => void) => {
        state.onChange = onChange;
        state.onListen = onListen;
        onListen();
        return async () => undefined;
      },
    },
    gatewayKeys: {
      list: async () => [{ keyId: "k", publicKeyPem: "", gateway: "g", createdUs: 0, retiredUs: state.retired ? 1 : null }],
      register: async () => ({ keyId: "k", inserted: false, retiredUs: null }),
      retire: async () => "retired" as const,
    },
  };
  const calls: string[] = [];
  const targets = {
    accessKeys: { invalidate: (identity?: string) => calls.push(`access:${identity ?? "*"}`) },
    sshKeys: { invalidate: (identity?: string) => calls.push(`ssh:${identity ?? "*"}`) },
    identities: { load: async () => void calls.push("identities") },
    sealKeyId: "k",
  };
  return { state, store, calls, targets };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("followStoreChanges", () => {
  it("reads again only what a notice names", async () => {
    const { state, store, calls, targets } = fakeStore();
    followers.push(await followStoreChanges(store, targets, { logger, pollMs: 50 }));
    state.version = 11;
    state.onChange!({ table: "access_keys", identity: "agent", version: 11 });
    state.version = 12;
    state.onChange!({ table: "ssh_keys", identity: "ops", version: 12 });
    state.version = 13;
    state.onChange!({ table: "identity_settings", identity: "agent", version: 13 });
    await sleep(130);
    // The counter did not move past the notices: the poll reads nothing again.
    expect(calls).toEqual(["access:agent", "ssh:ops", "identities"]);
  });

  it("reads everything again when the counter moved without a notice, then shortly after and at the next poll", async () => {
    const { state, store, calls, targets } = fakeStore();
    followers.push(await followStoreChanges(store, targets, { logger, pollMs: 50 }));
    state.version = 14;
    const all = ["access:*", "ssh:*", "identities"];
    await expect.poll(() => calls.length, { timeout: 1_000, interval: 5 }).toBeGreaterThanOrEqual(3);
    expect(calls.slice(0, 3)).toEqual(all);
    await expect.poll(() => calls.length, { timeout: 1_000, interval: 5 }).toBe(9);
    expect(calls).toEqual([...all, ...all, ...all]);
    await sleep(200);
    expect(calls).toHaveLength(9);
  });

  it("reads everything again when listening starts again (notices may have been missed)", async () => {
    const { state, store, calls, targets } = fakeStore();
    followers.push(await followStoreChanges(store, targets, { logger, pollMs: 10_000 }));
    expect(calls).toEqual([]);
    state.onListen!();
    expect(calls).toEqual(["access:*", "ssh:*", "identities"]);
  });

  it("does nothing for a store without notices (embedded: one gateway)", async () => {
    const { store, calls, targets } = fakeStore();
    const { listen: _none, ...changes } = store.changes;
    followers.push(await followStoreChanges({ ...store, changes }, targets, { logger, pollMs: 10 }));
    await sleep(40);
    expect(calls).toEqual([]);
  });
});
