// Migration 007 through both drivers: gateways' seal keys registered and retired, identity
// settings, and the change notices gateways sharing a Postgres store listen to. What a user relies
// on: a key is registered once under the id the gateway computes, a retired key stays listed, the
// gateway's role can register and retire but never write or delete a key row, and a change to an
// access key reaches a listener when it commits (a key's use does not).
import { createHash, generateKeyPairSync } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GATEWAY_ROLE, openStore, StoreError, type StoreChange, type Store } from "../src/index.js";
import { createTestDatabase, probePostgres, type TestDatabase } from "./helpers.js";

const T0 = 1_709_294_400_123_456;

function newKey(): { pem: string; keyId: string } {
  const { publicKey } = generateKeyPairSync("ed25519");
  const raw = Buffer.from(publicKey.export({ format: "jwk" }).x!, "base64url");
  return { pem: publicKey.export({ type: "spki", format: "pem" }) as string, keyId: createHash("sha256").update(raw).digest("hex").slice(0, 16) };
}

async function storeError(promise: Promise<unknown>): Promise<StoreError> {
  const err = await promise.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(StoreError);
  return err as StoreError;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function defineSuite(open: () => Promise<Store>, driver: "postgres" | "embedded"): void {
  let store: Store;
  beforeAll(async () => {
    store = await open();
  });
  afterAll(async () => {
    await store?.close();
  });

  it("registers a gateway key once, under the key id the gateway computes from it", async () => {
    const key = newKey();
    expect(await store.gatewayKeys.register(key.pem, "gw-a")).toEqual({ keyId: key.keyId, inserted: true, retiredUs: null });
    // A restart registers again: nothing changes, not even the gateway's name.
    expect(await store.gatewayKeys.register(key.pem, "gw-renamed")).toEqual({ keyId: key.keyId, inserted: false, retiredUs: null });
    const listed = (await store.gatewayKeys.list()).find((k) => k.keyId === key.keyId);
    expect(listed).toMatchObject({ keyId: key.keyId, publicKeyPem: key.pem, gateway: "gw-a", retiredUs: null });
    expect(typeof listed?.createdUs).toBe("number");
  });

  it("refuses what is not an Ed25519 public key", async () => {
    const { publicKey } = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
    const err = await storeError(store.gatewayKeys.register(publicKey.export({ type: "spki", format: "pem" }) as string, "gw-x"));
    expect(err.code).toBe("INVALID_ARGUMENT");
    expect((await storeError(store.gatewayKeys.register("not a key", "gw-x"))).code).toBe("INVALID_ARGUMENT");
  });

  it("retires a key once; it stays listed, and a later registration reports it retired", async () => {
    const key = newKey();
    await store.gatewayKeys.register(key.pem, "gw-b");
    expect(await store.gatewayKeys.retire(key.keyId, T0)).toBe("retired");
    expect(await store.gatewayKeys.retire(key.keyId, T0 + 5)).toBe("already_retired");
    expect(await store.gatewayKeys.retire("0000000000000000", T0)).toBe("not_found");
    expect((await store.gatewayKeys.list()).find((k) => k.keyId === key.keyId)?.retiredUs).toBe(T0);
    expect(await store.gatewayKeys.register(key.pem, "gw-b")).toEqual({ keyId: key.keyId, inserted: false, retiredUs: T0 });
  });

  it("keeps identity settings, and moves the change counter on each change", async () => {
    const before = await store.changes.version();
    await store.identitySettings.setDisabled("agent-x", true, T0);
    await store.identitySettings.setDisabled("agent-x", true, T0 + 1); // no change: the first time stands
    expect(await store.identitySettings.list()).toEqual([{ identity: "agent-x", disabled: true, updatedUs: T0 }]);
    await store.identitySettings.setDisabled("agent-x", false, T0 + 2);
    expect(await store.identitySettings.list()).toEqual([{ identity: "agent-x", disabled: false, updatedUs: T0 + 2 }]);
    expect(await store.changes.version()).toBeGreaterThan(before);
  });

  it.runIf(driver === "embedded")("has nothing to listen to (one gateway)", () => {
    expect(store.changes.listen).toBeUndefined();
  });

  it.runIf(driver === "postgres")("notifies a listener of key and identity changes when they commit, not of key uses", async () => {
    const seen: StoreChange[] = [];
    let listens = 0;
    const stop = await store.changes.listen!((c) => seen.push(c), () => listens++);
    try {
      expect(listens).toBe(1);
      await store.accessKeys.create({ id: "ak1", identity: "agent-n", verifiers: {}, createdUs: T0 });
      await store.accessKeys.touch("ak1", T0 + 1);
      await store.accessKeys.revoke("ak1", T0 + 2);
      await store.identitySettings.setDisabled("agent-n", true, T0 + 3);
      await store.sshKeys.create({ id: "sk1", identity: "agent-s", algorithm: "ssh-ed25519", publicKey: "ssh-ed25519 AAAA", fingerprint: "SHA256:sk1", createdUs: T0 });
      await store.sshKeys.touch("sk1", T0 + 1);
      await store.sshKeys.revoke("sk1", T0 + 2);
      const key = newKey();
      await store.gatewayKeys.register(key.pem, "gw-n");
      await store.gatewayKeys.retire(key.keyId, T0 + 4);
      await expect.poll(() => seen.length, { timeout: 3_000 }).toBeGreaterThanOrEqual(7);
      await sleep(100);
      expect(seen.map((c) => [c.table, c.identity])).toEqual([
        ["access_keys", "agent-n"],
        ["access_keys", "agent-n"],
        ["identity_settings", "agent-n"],
        ["ssh_keys", "agent-s"],
        ["ssh_keys", "agent-s"],
        ["gateway_keys", null],
        ["gateway_keys", null],
      ]);
      expect(seen.at(-1)!.version).toBe(await store.changes.version());
      // A rolled-back change is never announced.
      await store.sql
        .transaction(async (tx) => {
          await tx.query("update access_keys set revoked_at = null where id = 'ak1'");
          throw new Error("roll back");
        })
        .catch(() => undefined);
      await sleep(200);
      expect(seen).toHaveLength(7);
    } finally {
      await stop();
    }
  });

  it.runIf(driver === "postgres")("lets the gateway's role register and retire keys and set identities, never write key rows itself", async () => {
    const key = newKey();
    await store.sql.transaction(async (tx) => {
      await tx.query(`set local role ${GATEWAY_ROLE}`);
      await tx.query("select * from gatehouse_register_gateway_key($1, 'gw-role')", [key.pem]);
      expect(await tx.query("select gatehouse_retire_gateway_key($1, now()) as s", [key.keyId])).toEqual([{ s: "retired" }]);
      expect((await tx.query("select key_id from gateway_keys")).length).toBeGreaterThan(0);
      await tx.query("insert into identity_settings (identity, disabled) values ('role-agent', true) on conflict (identity) do update set disabled = true");
      await tx.query("select last_value from gatehouse_change_seq");
      for (const statement of [
        "insert into gateway_keys (key_id, public_key, gateway) values ('ffffffffffffffff', 'x', 'forged')",
        `update gateway_keys set retired_at = null where key_id = '${key.keyId}'`,
        `delete from gateway_keys where key_id = '${key.keyId}'`,
        "delete from identity_settings",
        "select nextval('gatehouse_change_seq')",
      ]) {
        const refused = await storeError(tx.transaction((sp) => sp.query(statement)));
        expect(refused.context.sqlstate, statement).toBe("42501");
      }
    });
  });
}

const probe = await probePostgres();
describe.skipIf(!probe.available)(`gateway keys and changes, postgres driver${probe.available ? "" : ` — SKIPPED: ${probe.reason}`}`, () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    await db?.drop();
  });
  defineSuite(() => openStore({ url: db.url, maxConnections: 2 }), "postgres");
});

describe("gateway keys and changes, embedded driver", () => {
  defineSuite(() => openStore({ memory: true }), "embedded");
});
