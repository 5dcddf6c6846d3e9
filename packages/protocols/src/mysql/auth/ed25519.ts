/**
 * MariaDB client_ed25519, client side.
 * https://mariadb.com/kb/en/authentication-plugin-ed25519/ ; server source
 * plugin/auth_ed25519/ref10/sign.c (`crypto_sign` with the password in place of the seed).
 *
 * The server sends a 32-byte nonce; the client answers with the 64-byte Ed25519 signature of
 * that nonce under a key whose expanded secret is SHA-512(password) — i.e. RFC 8032 signing
 * with the password bytes in the place of the 32-byte seed. Node's crypto only signs from a
 * 32-byte seed (it hashes the seed itself), so it cannot produce this; the few lines of
 * RFC 8032 §5.1.6 below can. Signing runs once per login, so plain BigInt arithmetic is fast
 * enough; the tests check signatures with Node's own Ed25519 verify and a real MariaDB.
 * The password is not secret-dependent-timing hardened; it is the connector's own credential
 * for this login, on the connector's machine.
 */
import { createHash } from "node:crypto";

const P = 2n ** 255n - 19n;
/** The group order L (RFC 8032 §5.1). */
const L = 2n ** 252n + 27742317777372353535851937790883648493n;
const mod = (a: bigint, m = P): bigint => ((a % m) + m) % m;

function pow(base: bigint, exp: bigint): bigint {
  let result = 1n;
  let b = mod(base);
  while (exp > 0n) {
    if (exp & 1n) result = (result * b) % P;
    b = (b * b) % P;
    exp >>= 1n;
  }
  return result;
}

const D = mod(-121665n * pow(121666n, P - 2n));
const D2 = mod(2n * D);

/** A point in extended coordinates (X:Y:Z:T), x = X/Z, y = Y/Z, xy = T/Z. */
type Point = readonly [bigint, bigint, bigint, bigint];

const BASE: Point = (() => {
  const x = 15112221349535400772501151409588531511454012693041857206046113283949847762202n;
  const y = 46316835694926478169428394003475163141307993866256225615783033603165251855960n;
  return [x, y, 1n, mod(x * y)];
})();
const IDENTITY: Point = [0n, 1n, 1n, 0n];

/** RFC 8032 §5.1.4 addition (also valid for doubling). */
function add(p: Point, q: Point): Point {
  const a = mod((p[1] - p[0]) * (q[1] - q[0]));
  const b = mod((p[1] + p[0]) * (q[1] + q[0]));
  const c = mod(p[3] * D2 * q[3]);
  const d = mod(p[2] * 2n * q[2]);
  const e = b - a;
  const f = d - c;
  const g = d + c;
  const h = b + a;
  return [mod(e * f), mod(g * h), mod(f * g), mod(e * h)];
}

function multiplyBase(scalar: bigint): Point {
  let result = IDENTITY;
  let addend = BASE;
  while (scalar > 0n) {
    if (scalar & 1n) result = add(result, addend);
    addend = add(addend, addend);
    scalar >>= 1n;
  }
  return result;
}

function encodePoint(p: Point): Uint8Array {
  const zInverse = pow(p[2], P - 2n);
  const x = mod(p[0] * zInverse);
  const y = mod(p[1] * zInverse);
  const out = littleEndian(y, 32);
  out[31] = out[31]! | (Number(x & 1n) << 7);
  return out;
}

function littleEndian(value: bigint, length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) {
    out[i] = Number(value & 0xffn);
    value >>= 8n;
  }
  return out;
}

function fromLittleEndian(bytes: Uint8Array): bigint {
  let value = 0n;
  for (let i = bytes.byteLength - 1; i >= 0; i--) value = (value << 8n) | BigInt(bytes[i]!);
  return value;
}

function sha512(...parts: Uint8Array[]): Uint8Array {
  const h = createHash("sha512");
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
}

function expandPassword(password: string): { scalar: bigint; prefix: Uint8Array } {
  const h = sha512(new TextEncoder().encode(password));
  const a = h.slice(0, 32);
  a[0] = a[0]! & 248;
  a[31] = (a[31]! & 63) | 64;
  return { scalar: fromLittleEndian(a), prefix: h.subarray(32) };
}

/** The 32-byte public key MariaDB stores for the password (base64 of it is `mysql.user`'s authentication_string). */
export function ed25519PublicKey(password: string): Uint8Array {
  return encodePoint(multiplyBase(expandPassword(password).scalar));
}

/** client_ed25519's answer to `nonce`: the 64-byte signature R ‖ S. */
export function ed25519Sign(password: string, nonce: Uint8Array): Uint8Array {
  const { scalar, prefix } = expandPassword(password);
  const publicKey = encodePoint(multiplyBase(scalar));
  const r = mod(fromLittleEndian(sha512(prefix, nonce)), L);
  const bigR = encodePoint(multiplyBase(r));
  const k = mod(fromLittleEndian(sha512(bigR, publicKey, nonce)), L);
  const s = mod(r + k * scalar, L);
  const out = new Uint8Array(64);
  out.set(bigR, 0);
  out.set(littleEndian(s, 32), 32);
  return out;
}
