import { createPublicKey, randomBytes, verify } from "node:crypto";
import { describe, expect, it } from "vitest";
import { ed25519PublicKey, ed25519Sign } from "./ed25519.js";

describe("client_ed25519", () => {
  it("derives the public key MariaDB stores for PASSWORD('x')", () => {
    // From MariaDB 10.11: CREATE USER u IDENTIFIED VIA ed25519 USING PASSWORD('x'); then
    // JSON_VALUE(priv, '$.authentication_string') in mysql.global_priv.
    expect(Buffer.from(ed25519PublicKey("x")).toString("base64").replace(/=+$/, "")).toBe(EXPECTED_X);
  });

  it("signs nonces so that Node's Ed25519 verify accepts them under that key, and rejects a wrong password's", () => {
    const key = createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: Buffer.from(ed25519PublicKey("s3cret ünïcode")).toString("base64url") }, format: "jwk" });
    for (let i = 0; i < 3; i++) {
      const nonce = randomBytes(32);
      expect(verify(null, nonce, key, ed25519Sign("s3cret ünïcode", nonce))).toBe(true);
      expect(verify(null, nonce, key, ed25519Sign("s3cret", nonce))).toBe(false);
    }
  });
});

const EXPECTED_X = "Gv2JI8Env2fd5YGonZ082tX3UAW+yJYldOlj4R1bfK4";
