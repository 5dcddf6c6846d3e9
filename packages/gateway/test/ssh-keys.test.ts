import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openStore, type Store } from "@gatehouse/store";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GatewayError } from "../src/errors.js";
import { parseSshPublicKey, SshKeys } from "../src/identity/ssh-keys.js";
import { KEY_CACHE_DEFAULTS } from "../src/identity/key-cache.js";
import { createStoreDatabase, type StoreDatabase } from "./support/store-database.js";
import { blobOf, sshKeygen, type GeneratedKey } from "./support/ssh-keygen.js";
import { startTcpProxy, type TcpProxy } from "./support/tcp-proxy.js";

// SSH public keys against a real Postgres store, reached through a proxy the test can cut, and
// keys made by the real ssh-keygen: the lookup the SSH listener makes (find), what registration
// refuses, revoked and expired keys, last-used, and logins while the store does not answer.

const S = 1_000_000;
let dir: string;
let database: StoreDatabase;
let proxy: TcpProxy;
let store: Store;
const keys: Record<string, GeneratedKey> = {};

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "gatehouse-ssh-keys-"));
  keys.ed = sshKeygen(dir, "ed", "ed25519", { comment: "agent@laptop" });
  keys.ed2 = sshKeygen(dir, "ed2", "ed25519");
  keys.ecdsa = sshKeygen(dir, "ecdsa", "ecdsa", { bits: 384 });
  keys.rsa = sshKeygen(dir, "rsa", "rsa", { bits: 2048 });
  keys.rsaShort = sshKeygen(dir, "rsa-short", "rsa", { bits: 1024 });
  keys.dsa = sshKeygen(dir, "dsa", "dsa");
  database = await createStoreDatabase("gatehouse_sshkeys");
  const url = new URL(database.url());
  proxy = await startTcpProxy({ host: url.hostname, port: Number(url.port || 5432) });
  store = await openStore({ url: database.url({ host: "127.0.0.1", port: proxy.port }), maxConnections: 2, connectTimeoutSeconds: 2 });
});

afterAll(async () => {
  proxy?.restore();
  await store?.close();
  await proxy?.close();
  await database?.drop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function gatewayError(fn: () => unknown): GatewayError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(GatewayError);
    return error as GatewayError;
  }
  throw new Error("expected a GatewayError");
}

describe("parseSshPublicKey", () => {
  it.each(["ed", "ecdsa", "rsa"])("reads a %s .pub file with ssh-keygen's fingerprint and its comment", (name) => {
    const key = keys[name]!;
    const parsed = parseSshPublicKey(readFileSync(key.publicPath, "utf8"));
    expect(parsed.fingerprint).toBe(key.fingerprint);
    expect(parsed.publicKey).toBe(key.publicLine.split(" ").slice(0, 2).join(" "));
    expect(parsed.algorithm).toBe(key.publicLine.split(" ")[0]);
    expect(parsed.comment).toBe(name === "ed" ? "agent@laptop" : `${name}@test`);
  });

  it("refuses DSA, short RSA, private keys and text that is no key, saying why", () => {
    expect(gatewayError(() => parseSshPublicKey(keys.dsa!.publicLine)).message).toMatch(/^DSA keys are refused/);
    expect(gatewayError(() => parseSshPublicKey(keys.rsaShort!.publicLine)).message).toMatch(/at least 2048 bits, this one has 1024/);
    const privateText = readFileSync(keys.ed!.privatePath, "utf8");
    const privateRefusal = gatewayError(() => parseSshPublicKey(privateText));
    expect(privateRefusal.code).toBe("SSH_KEY_INVALID");
    expect(privateRefusal.message).toMatch(/private key/);
    expect(privateRefusal.message).not.toContain(privateText.split("\n")[1]!.slice(0, 20));
    expect(gatewayError(() => parseSshPublicKey("")).message).toMatch(/no public key given/);
    expect(gatewayError(() => parseSshPublicKey("ssh-ed25519 not-base64!")).message).toMatch(/not an OpenSSH public key/);
    expect(gatewayError(() => parseSshPublicKey(`${keys.ed!.publicLine}\n${keys.ed2!.publicLine}`)).message).toMatch(/one public key, got 2 lines/);
  });
});

describe("SshKeys", () => {
  let now = 2_000_000 * S;
  const clock = () => now;
  let sshKeys: SshKeys;
  const outages: string[] = [];

  beforeAll(() => {
    sshKeys = new SshKeys(store, clock, { timing: { ...KEY_CACHE_DEFAULTS, coldReadMs: 300 }, onOutage: (identity) => outages.push(identity) });
  });
  afterAll(async () => {
    await sshKeys?.close();
  });

  it("finds a registered key for its identity only, and reports its use", async () => {
    const added = await sshKeys.add("copilot-agent", keys.ed!.publicLine);
    expect(added).toMatchObject({ identity: "copilot-agent", algorithm: "ssh-ed25519", fingerprint: keys.ed!.fingerprint, comment: "agent@laptop" });
    expect(await sshKeys.find("copilot-agent", "ssh-ed25519", blobOf(keys.ed!.publicLine))).toEqual({ id: added.id, fingerprint: keys.ed!.fingerprint });
    // Another identity presenting the same key, and this identity presenting another key.
    expect(await sshKeys.find("someone-else", "ssh-ed25519", blobOf(keys.ed!.publicLine))).toBeNull();
    expect(await sshKeys.check("copilot-agent", "ssh-ed25519", blobOf(keys.ed2!.publicLine))).toMatchObject({ ok: false, reason: "unknown_key", fingerprint: keys.ed2!.fingerprint });
    // The RSA key signs as rsa-sha2-512 but is the ssh-rsa blob.
    const rsa = await sshKeys.add("copilot-agent", keys.rsa!.publicLine);
    expect((await sshKeys.find("copilot-agent", "rsa-sha2-512", blobOf(keys.rsa!.publicLine)))?.id).toBe(rsa.id);
    // Same blob under another algorithm name is not this key.
    expect(await sshKeys.find("copilot-agent", "ssh-ed25519", blobOf(keys.rsa!.publicLine))).toBeNull();
    await sshKeys.close(); // flushes the key uses to the store
    expect((await store.sshKeys.get(added.id))?.lastUsedUs).toBe(now);
    sshKeys = new SshKeys(store, clock, { timing: { ...KEY_CACHE_DEFAULTS, coldReadMs: 300 }, onOutage: (identity) => outages.push(identity) });
  });

  it("refuses a key a second identity claims, naming who has it", async () => {
    const err = await sshKeys.add("other-agent", keys.ed!.publicLine).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GatewayError);
    expect((err as GatewayError).code).toBe("SSH_KEY_TAKEN");
    expect((err as GatewayError).message).toContain(`already registered for identity copilot-agent`);
    expect((await store.sshKeys.list({ identity: "other-agent" })).length).toBe(0);
  });

  it("never matches a revoked key, whether revoked here or in the store by another gateway", async () => {
    const here = await sshKeys.add("revoker", keys.ecdsa!.publicLine);
    const blob = blobOf(keys.ecdsa!.publicLine);
    expect(await sshKeys.find("revoker", "ecdsa-sha2-nistp384", blob)).not.toBeNull();
    expect(await sshKeys.revoke(here.id)).toBe(true);
    expect(await sshKeys.find("revoker", "ecdsa-sha2-nistp384", blob)).toBeNull();
    // Registered again, then revoked behind this gateway's back: gone at the next refresh.
    const again = await sshKeys.add("revoker", keys.ecdsa!.publicLine);
    expect(await sshKeys.find("revoker", "ecdsa-sha2-nistp384", blob)).not.toBeNull();
    await store.sshKeys.revoke(again.id, now);
    now += KEY_CACHE_DEFAULTS.refreshUs + 1;
    await sshKeys.find("revoker", "ecdsa-sha2-nistp384", blob); // starts the refresh
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(await sshKeys.find("revoker", "ecdsa-sha2-nistp384", blob)).toBeNull();
  });

  it("never matches an expired key", async () => {
    const added = await sshKeys.add("short-lived", keys.ed2!.publicLine, { ttlUs: 60 * S });
    const blob = blobOf(keys.ed2!.publicLine);
    expect((await sshKeys.find("short-lived", "ssh-ed25519", blob))?.id).toBe(added.id);
    now += 61 * S;
    expect(await sshKeys.check("short-lived", "ssh-ed25519", blob)).toMatchObject({ ok: false, reason: "expired" });
    expect(await sshKeys.find("short-lived", "ssh-ed25519", blob)).toBeNull();
  });

  it("keeps serving keys as last read for 15 minutes while the store does not answer", async () => {
    const blob = blobOf(keys.ed!.publicLine);
    const known = await sshKeys.find("copilot-agent", "ssh-ed25519", blob);
    expect(known).not.toBeNull();
    proxy.blackhole();
    try {
      now += 10 * 60 * S; // a refresh is due: it goes out and hangs
      expect(await sshKeys.find("copilot-agent", "ssh-ed25519", blob)).toEqual(known);
      await new Promise((resolve) => setTimeout(resolve, 400)); // past the cold-read watchdog
      expect(outages).toContain("copilot-agent");
      expect(sshKeys.storeFailing).toBe(true);
      // An identity never read cannot be answered for: a quick, clean refusal.
      const started = Date.now();
      const cold = await sshKeys.find("never-seen", "ssh-ed25519", blob).catch((e: unknown) => e);
      expect((cold as GatewayError).code).toBe("CREDENTIALS_UNAVAILABLE");
      expect(Date.now() - started).toBeLessThan(2_000);
      // Past the grace period the old copy no longer stands in for the store.
      now += 6 * 60 * S;
      const stale = await sshKeys.find("copilot-agent", "ssh-ed25519", blob).catch((e: unknown) => e);
      expect((stale as GatewayError).code).toBe("CREDENTIALS_UNAVAILABLE");
    } finally {
      proxy.restore();
    }
    expect(await sshKeys.find("copilot-agent", "ssh-ed25519", blob)).toEqual(known);
  });
});
