// SSH public keys (migration 005) round-trip through both drivers: a real Postgres server and
// embedded PGlite. What a user relies on: a key comes back as registered, one live key per
// fingerprint whichever identity asks, revoked keys leave listings and free their fingerprint,
// and on Postgres the gateway's restricted role can do what the gateway does and no more.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GATEWAY_ROLE, openStore, StoreError, type NewSshKey, type Store } from "../src/index.js";
import { createTestDatabase, probePostgres, type TestDatabase } from "./helpers.js";

/** 2024-03-01T12:00:00.123456Z: every µs digit in use, so a lossy time round trip shows. */
const T0 = 1_709_294_400_123_456;

function sshKey(id: string, overrides: Partial<NewSshKey> = {}): NewSshKey {
  return {
    id,
    identity: "copilot-agent",
    algorithm: "ssh-ed25519",
    publicKey: `ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI${id}`,
    fingerprint: `SHA256:${id}-fingerprint`,
    comment: `${id}@laptop`,
    createdUs: T0,
    ...overrides,
  };
}

async function storeError(promise: Promise<unknown>): Promise<StoreError> {
  const err = await promise.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(StoreError);
  return err as StoreError;
}

function defineSshKeySuite(open: () => Promise<Store>, driver: "postgres" | "embedded"): void {
  let store: Store;
  beforeAll(async () => {
    store = await open();
  });
  afterAll(async () => {
    await store?.close();
  });

  it("returns a registered key exactly as stored, with its times to the microsecond", async () => {
    await store.sshKeys.create(sshKey("a1", { expiresUs: T0 + 86_400_000_000 }));
    expect(await store.sshKeys.get("a1")).toEqual({
      ...sshKey("a1"),
      expiresUs: T0 + 86_400_000_000,
      revokedUs: null,
      lastUsedUs: null,
    });
    await store.sshKeys.touch("a1", T0 + 5);
    await store.sshKeys.touch("a1", T0 + 2); // reported late: the latest use stands
    expect((await store.sshKeys.get("a1"))?.lastUsedUs).toBe(T0 + 5);
  });

  it("keeps one live key per fingerprint, whichever identity claims it", async () => {
    await store.sshKeys.create(sshKey("b1", { fingerprint: "SHA256:shared" }));
    const err = await storeError(store.sshKeys.create(sshKey("b2", { identity: "other-agent", fingerprint: "SHA256:shared" })));
    expect(err.code).toBe("CONFLICT");
    expect((await store.sshKeys.list({ fingerprint: "SHA256:shared" })).map((k) => [k.id, k.identity])).toEqual([["b1", "copilot-agent"]]);
    // Revoked, the fingerprint is free again.
    expect(await store.sshKeys.revoke("b1", T0 + 10)).toBe(true);
    expect(await store.sshKeys.revoke("b1", T0 + 11)).toBe(false);
    await store.sshKeys.create(sshKey("b3", { identity: "other-agent", fingerprint: "SHA256:shared" }));
    expect((await store.sshKeys.list({ fingerprint: "SHA256:shared" })).map((k) => k.id)).toEqual(["b3"]);
  });

  it("lists an identity's live keys oldest first, revoked ones only when asked", async () => {
    await store.sshKeys.create(sshKey("c2", { identity: "lister", createdUs: T0 + 2 }));
    await store.sshKeys.create(sshKey("c1", { identity: "lister", createdUs: T0 + 1, comment: null }));
    await store.sshKeys.create(sshKey("c3", { identity: "lister", createdUs: T0 + 3 }));
    await store.sshKeys.revoke("c3", T0 + 4);
    expect((await store.sshKeys.list({ identity: "lister" })).map((k) => k.id)).toEqual(["c1", "c2"]);
    const all = await store.sshKeys.list({ identity: "lister", includeRevoked: true });
    expect(all.map((k) => [k.id, k.revokedUs, k.comment])).toEqual([
      ["c1", null, null],
      ["c2", null, "c2@laptop"],
      ["c3", T0 + 4, "c3@laptop"],
    ]);
    expect(await store.sshKeys.get("no-such-key")).toBeNull();
  });

  it.runIf(driver === "postgres")("lets the gateway's role register, read, revoke and touch keys, never delete them", async () => {
    await store.sql.transaction(async (tx) => {
      await tx.query(`set local role ${GATEWAY_ROLE}`);
      await tx.query(
        `insert into ssh_keys (id, identity, algorithm, public_key, fingerprint, created_at) values ('r1', 'x', 'ssh-ed25519', 'ssh-ed25519 AAAA', 'SHA256:r1', now())`,
      );
      await tx.query(`update ssh_keys set revoked_at = now(), last_used_at = now() where id = 'r1'`);
      expect(await tx.query("select id from ssh_keys where id = 'r1'")).toHaveLength(1);
      const refused = await storeError(tx.transaction((sp) => sp.query("delete from ssh_keys where id = 'r1'")));
      expect(refused.context.sqlstate).toBe("42501");
    });
  });
}

const probe = await probePostgres();
describe.skipIf(!probe.available)(`ssh keys, postgres driver${probe.available ? "" : ` — SKIPPED: ${probe.reason}`}`, () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    await db?.drop();
  });
  defineSshKeySuite(() => openStore({ url: db.url, maxConnections: 2 }), "postgres");
});

describe("ssh keys, embedded driver", () => {
  defineSshKeySuite(() => openStore({ memory: true }), "embedded");
});
