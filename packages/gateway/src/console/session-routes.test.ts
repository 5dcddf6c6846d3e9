import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { GatewayError } from "../errors.js";
import { loadOrCreateSigningKey } from "../evidence/signing.js";
import { consoleVerifyKeys } from "./session-routes.js";

const dirs: string[] = [];
const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), "gatehouse-console-keys-"));
  dirs.push(dir);
  return dir;
};
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe("the console's verification keys", () => {
  it("are this gateway's and the store's registered keys, as verify picks them; console.publicKeys pins them instead", async () => {
    const own = loadOrCreateSigningKey(tempDir()).key;
    const peer = loadOrCreateSigningKey(tempDir()).key;
    const stranger = loadOrCreateSigningKey(tempDir()).key;
    const store = { gatewayKeys: { list: async () => [{ keyId: stranger.keyId, publicKeyPem: stranger.publicKeyPem }] } } as unknown as Parameters<typeof consoleVerifyKeys>[2];
    const fromStore = await consoleVerifyKeys(undefined, own, store)();
    expect(fromStore).toMatchObject({ keyId: own.keyId, source: "store" });
    expect(fromStore.keys.map((k) => k.keyId)).toEqual([own.keyId, stranger.keyId]);
    const file = join(tempDir(), "peers.pem");
    writeFileSync(file, peer.publicKeyPem);
    const pinned = await consoleVerifyKeys(file, own, store)();
    expect(pinned).toMatchObject({ source: "pinned" });
    expect(pinned.keys.map((k) => k.keyId)).toEqual([own.keyId, peer.keyId]);
    // A store that cannot list its keys leaves this gateway's own.
    const failing = { gatewayKeys: { list: () => Promise.reject(new Error("permission denied for table gateway_keys")) } } as unknown as Parameters<typeof consoleVerifyKeys>[2];
    expect((await consoleVerifyKeys(undefined, own, failing)()).keys.map((k) => k.keyId)).toEqual([own.keyId]);
  });

  it("name console.publicKeys when its file cannot be used", () => {
    const own = loadOrCreateSigningKey(tempDir()).key;
    const empty = join(tempDir(), "empty.pem");
    writeFileSync(empty, "not a key\n");
    for (const file of [empty, join(tempDir(), "missing.pem")]) {
      let error: unknown;
      try {
        consoleVerifyKeys(file, own, {});
      } catch (caught) {
        error = caught;
      }
      expect(error).toBeInstanceOf(GatewayError);
      expect((error as GatewayError).problems[0]).toMatch(/^console\.publicKeys: cannot use /);
    }
  });
});
