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
  it("are this gateway's key and those of console.publicKeys", () => {
    const own = loadOrCreateSigningKey(tempDir()).key;
    const peer = loadOrCreateSigningKey(tempDir()).key;
    const file = join(tempDir(), "peers.pem");
    writeFileSync(file, peer.publicKeyPem);
    expect(consoleVerifyKeys(undefined, own).keys.map((k) => k.keyId)).toEqual([own.keyId]);
    expect(consoleVerifyKeys(file, own)).toMatchObject({ keyId: own.keyId, keys: [{ keyId: own.keyId }, { keyId: peer.keyId }] });
  });

  it("name console.publicKeys when its file cannot be used", () => {
    const own = loadOrCreateSigningKey(tempDir()).key;
    const empty = join(tempDir(), "empty.pem");
    writeFileSync(empty, "not a key\n");
    for (const file of [empty, join(tempDir(), "missing.pem")]) {
      let error: unknown;
      try {
        consoleVerifyKeys(file, own);
      } catch (caught) {
        error = caught;
      }
      expect(error).toBeInstanceOf(GatewayError);
      expect((error as GatewayError).problems[0]).toMatch(/^console\.publicKeys: cannot use /);
    }
  });
});
