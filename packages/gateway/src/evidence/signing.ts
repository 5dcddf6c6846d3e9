import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { GatewayError } from "../errors.js";
import { canonicalSeal, type SealFields } from "./canonical.js";

// The gateway's Ed25519 key seals sessions. It is generated at first start into the data
// directory (PKCS#8 PEM, mode 0600); `gatehouse keys signing` prints its public half, which is what
// a verifier needs. A seal is stored in sessions.seal_signature as
//   ed25519:<key id>:<base64 signature of canonicalSeal(...)>
// where the key id is the first 16 hex digits of SHA-256 of the raw 32-byte public key, so a
// verifier holding several keys (gateway replicas, rotations) knows which one to use.

export const SIGNING_KEY_FILE = "signing-key.pem";
const SEAL_PREFIX = "ed25519";

export interface SigningKey {
  keyId: string;
  privateKey: KeyObject;
  publicKey: KeyObject;
  /** SubjectPublicKeyInfo PEM of the public key. */
  publicKeyPem: string;
}

export interface PublicKey {
  keyId: string;
  key: KeyObject;
}

/** The signing key in `dataDir`, generated (and `generated: true`) when there is none yet. */
export function loadOrCreateSigningKey(dataDir: string): { key: SigningKey; generated: boolean } {
  const existing = readSigningKey(dataDir);
  if (existing) return { key: existing, generated: false };
  const { privateKey } = generateKeyPairSync("ed25519");
  const pem = privateKey.export({ type: "pkcs8", format: "pem" }) as string;
  const path = join(dataDir, SIGNING_KEY_FILE);
  try {
    // wx: never overwrite a key that appeared meanwhile (two starts racing) — it would orphan seals.
    writeFileSync(path, pem, { mode: 0o600, flag: "wx" });
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === "EEXIST") return { key: readSigningKey(dataDir)!, generated: false };
    throw new GatewayError("SIGNING_KEY_UNUSABLE", `cannot write the signing key ${path}: ${(cause as Error).message}`, { cause });
  }
  return { key: signingKeyOf(privateKey), generated: true };
}

/** The signing key in `dataDir`, or undefined when none was generated yet. */
export function readSigningKey(dataDir: string): SigningKey | undefined {
  const path = join(dataDir, SIGNING_KEY_FILE);
  let pem: string;
  try {
    pem = readFileSync(path, "utf8");
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new GatewayError("SIGNING_KEY_UNUSABLE", `cannot read the signing key ${path}: ${(cause as Error).message}`, { cause });
  }
  try {
    const privateKey = createPrivateKey(pem);
    if (privateKey.asymmetricKeyType !== "ed25519") throw new Error(`a ${privateKey.asymmetricKeyType} key, not ed25519`);
    return signingKeyOf(privateKey);
  } catch (cause) {
    throw new GatewayError("SIGNING_KEY_UNUSABLE", `the signing key ${path} is not a usable Ed25519 private key: ${(cause as Error).message}`, { cause });
  }
}

function signingKeyOf(privateKey: KeyObject): SigningKey {
  const publicKey = createPublicKey(privateKey);
  return { keyId: keyIdOf(publicKey), privateKey, publicKey, publicKeyPem: publicKey.export({ type: "spki", format: "pem" }) as string };
}

/** First 16 hex digits of SHA-256 over the raw 32-byte Ed25519 public key. */
export function keyIdOf(publicKey: KeyObject): string {
  const raw = Buffer.from(publicKey.export({ format: "jwk" }).x ?? "", "base64url");
  return createHash("sha256").update(raw).digest("hex").slice(0, 16);
}

/** Every Ed25519 public key in a PEM text (several BEGIN PUBLIC KEY blocks allowed). */
export function parsePublicKeys(pemText: string, source: string): PublicKey[] {
  const blocks = pemText.match(/-----BEGIN PUBLIC KEY-----[\s\S]*?-----END PUBLIC KEY-----/g) ?? [];
  if (blocks.length === 0) throw new GatewayError("SIGNING_KEY_UNUSABLE", `${source}: no PEM public key (-----BEGIN PUBLIC KEY-----) found`);
  return blocks.map((block, i) => {
    let key: KeyObject;
    try {
      key = createPublicKey(block);
    } catch (cause) {
      throw new GatewayError("SIGNING_KEY_UNUSABLE", `${source}: public key ${i + 1} cannot be read: ${(cause as Error).message}`, { cause });
    }
    if (key.asymmetricKeyType !== "ed25519") throw new GatewayError("SIGNING_KEY_UNUSABLE", `${source}: public key ${i + 1} is ${key.asymmetricKeyType}, not ed25519`);
    return { keyId: keyIdOf(key), key };
  });
}

/** The seal for sessions.seal_signature. */
export function signSeal(key: SigningKey, fields: SealFields): string {
  const signature = sign(null, Buffer.from(canonicalSeal(fields), "utf8"), key.privateKey);
  return `${SEAL_PREFIX}:${key.keyId}:${signature.toString("base64")}`;
}

export type SealCheck = "ok" | "malformed" | "unknown_key" | "bad_signature";

/** Checks a stored seal against the fields it should cover, with the keys the verifier trusts. */
export function checkSeal(seal: string, fields: SealFields, keys: readonly PublicKey[]): { result: SealCheck; keyId?: string } {
  const parts = seal.split(":");
  if (parts.length !== 3 || parts[0] !== SEAL_PREFIX || !/^[0-9a-f]{16}$/.test(parts[1]!)) return { result: "malformed" };
  const keyId = parts[1]!;
  const key = keys.find((k) => k.keyId === keyId);
  if (!key) return { result: "unknown_key", keyId };
  const signature = Buffer.from(parts[2]!, "base64");
  const ok = signature.length === 64 && verify(null, Buffer.from(canonicalSeal(fields), "utf8"), key.key, signature);
  return { result: ok ? "ok" : "bad_signature", keyId };
}
