/**
 * SCRAM-SHA-256 (RFC 5802 with SHA-256 per RFC 7677) as Postgres uses it
 * (https://www.postgresql.org/docs/current/sasl-authentication.html): the primitives, the
 * stored verifier, and message parsing shared by the server and client sides.
 *
 *   SaltedPassword  = Hi(Normalize(password), salt, i)          (PBKDF2-HMAC-SHA-256)
 *   ClientKey       = HMAC(SaltedPassword, "Client Key")
 *   StoredKey       = H(ClientKey)
 *   ServerKey       = HMAC(SaltedPassword, "Server Key")
 *   AuthMessage     = client-first-message-bare + "," + server-first-message + "," +
 *                     client-final-message-without-proof
 *   ClientSignature = HMAC(StoredKey, AuthMessage);  ClientProof = ClientKey XOR ClientSignature
 *   ServerSignature = HMAC(ServerKey, AuthMessage)
 *
 * node:crypto is used for hashing only (no I/O).
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from "node:crypto";
import { violation } from "../errors.js";
import { saslprep } from "./saslprep.js";

export const SCRAM_SHA_256 = "SCRAM-SHA-256";
export const DEFAULT_SCRAM_ITERATIONS = 4096;

/** What a server stores instead of the password (Postgres' pg_authid.rolpassword holds the same). */
export interface ScramVerifier {
  readonly iterations: number;
  readonly salt: Uint8Array;
  readonly storedKey: Uint8Array;
  readonly serverKey: Uint8Array;
}

export function sha256(data: Uint8Array): Uint8Array {
  return createHash("sha256").update(data).digest();
}

export function hmacSha256(key: Uint8Array, data: Uint8Array | string): Uint8Array {
  return createHmac("sha256", key).update(data).digest();
}

/** The password bytes SCRAM hashes: SASLprep'd when SASLprep accepts it, else raw (as Postgres does). */
export function normalizePassword(password: string): Uint8Array {
  return Buffer.from(saslprep(password) ?? password, "utf8");
}

export function saltedPassword(password: string, salt: Uint8Array, iterations: number): Uint8Array {
  return pbkdf2Sync(normalizePassword(password), salt, iterations, 32, "sha256");
}

export function xorBytes(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.byteLength);
  for (let i = 0; i < a.byteLength; i++) out[i] = a[i]! ^ b[i]!;
  return out;
}

export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === b.byteLength && timingSafeEqual(a, b);
}

/** Create a verifier for `password` (what `scram_build_secret` does in Postgres). */
export function scramVerifier(
  password: string,
  options: { readonly iterations?: number; readonly salt?: Uint8Array } = {},
): ScramVerifier {
  const iterations = options.iterations ?? DEFAULT_SCRAM_ITERATIONS;
  if (!Number.isInteger(iterations) || iterations < 1) throw new RangeError(`invalid SCRAM iteration count ${iterations}`);
  const salt = options.salt ?? randomBytes(16);
  const salted = saltedPassword(password, salt, iterations);
  return {
    iterations,
    salt,
    storedKey: sha256(hmacSha256(salted, "Client Key")),
    serverKey: hmacSha256(salted, "Server Key"),
  };
}

const b64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString("base64");

/** The text form Postgres stores: `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>` (base64). */
export function formatScramVerifier(v: ScramVerifier): string {
  return `${SCRAM_SHA_256}$${v.iterations}:${b64(v.salt)}$${b64(v.storedKey)}:${b64(v.serverKey)}`;
}

export function parseScramVerifier(text: string): ScramVerifier {
  const match = /^SCRAM-SHA-256\$(\d+):([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+):([A-Za-z0-9+/=]+)$/.exec(text);
  if (match === null) throw new RangeError("not a SCRAM-SHA-256 verifier");
  const storedKey = Buffer.from(match[3]!, "base64");
  const serverKey = Buffer.from(match[4]!, "base64");
  if (storedKey.byteLength !== 32 || serverKey.byteLength !== 32) throw new RangeError("SCRAM verifier keys must be 32 bytes");
  return { iterations: Number(match[1]), salt: Buffer.from(match[2]!, "base64"), storedKey, serverKey };
}

/** A printable nonce without ',' (base64 of 18 random bytes, as libpq does). */
export function scramNonce(): string {
  return randomBytes(18).toString("base64");
}

/**
 * A verifier for a user that does not exist, so that a failed attempt looks the same as a
 * wrong password (same salt on every try for the same name) and does not reveal which
 * names exist. `secret` should be stable per gateway; derived keys are unusable.
 */
export function scramMockVerifier(user: string, secret: Uint8Array, iterations = DEFAULT_SCRAM_ITERATIONS): ScramVerifier {
  const seed = hmacSha256(secret, `mock-scram-salt:${user}`);
  return {
    iterations,
    salt: seed.subarray(0, 16),
    storedKey: hmacSha256(secret, `mock-scram-stored:${user}`),
    serverKey: hmacSha256(secret, `mock-scram-server:${user}`),
  };
}

/**
 * Split a SCRAM message into its `x=value` attributes, in order. Values may contain '='
 * (base64); only the first '=' separates.
 */
export function parseScramAttributes(text: string, what: string): [string, string][] {
  const out: [string, string][] = [];
  for (const part of text.split(",")) {
    if (part.length < 2 || part[1] !== "=" || !/^[A-Za-z]$/.test(part[0]!)) {
      throw violation(`malformed SCRAM message (${what})`, { attribute: part.slice(0, 16) });
    }
    out.push([part[0]!, part.slice(2)]);
  }
  return out;
}

/** RFC 5802 `printable`: %x21-2B / %x2D-7E (no ','). */
export function isPrintableNonce(nonce: string): boolean {
  return nonce.length > 0 && /^[\x21-\x2b\x2d-\x7e]+$/.test(nonce);
}

export function decodeBase64Strict(text: string, what: string): Uint8Array {
  if (!/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(text)) {
    throw violation(`malformed SCRAM message (invalid base64 ${what})`);
  }
  return Buffer.from(text, "base64");
}

/** RFC 5802 saslname escaping of the username attribute. */
export function escapeSaslName(name: string): string {
  return name.replace(/=/g, "=3D").replace(/,/g, "=2C");
}
