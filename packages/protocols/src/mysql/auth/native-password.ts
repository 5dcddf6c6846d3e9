/**
 * mysql_native_password.
 * https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_connection_phase_authentication_methods_native_password_authentication.html
 *
 *   token = SHA1(password) XOR SHA1(scramble ‖ SHA1(SHA1(password)))
 *
 * The server keeps only the verifier SHA1(SHA1(password)) (what `mysql.user` stores, hex after
 * a '*'). It checks a token by recomputing SHA1(password) = token XOR SHA1(scramble ‖ verifier)
 * and comparing SHA1 of that with the verifier — so the gateway can check an access key
 * without storing it.
 */
import { createHash, timingSafeEqual } from "node:crypto";

function sha1(...parts: Uint8Array[]): Uint8Array {
  const h = createHash("sha1");
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
}

function xor(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.byteLength);
  for (let i = 0; i < a.byteLength; i++) out[i] = a[i]! ^ b[i % b.byteLength]!;
  return out;
}

/** The stored verifier SHA1(SHA1(password)), 20 bytes. */
export function nativePasswordVerifier(password: string | Uint8Array): Uint8Array {
  return sha1(sha1(typeof password === "string" ? new TextEncoder().encode(password) : password));
}

/** The verifier as MySQL shows it: '*' and 40 upper-case hex digits (`PASSWORD('x')`). */
export function nativePasswordHashString(verifier: Uint8Array): string {
  return `*${Buffer.from(verifier).toString("hex").toUpperCase()}`;
}

/** The client's auth response for `scramble` (20 bytes); empty for an empty password, as clients send. */
export function nativePasswordToken(password: string | Uint8Array, scramble: Uint8Array): Uint8Array {
  const bytes = typeof password === "string" ? new TextEncoder().encode(password) : password;
  if (bytes.byteLength === 0) return new Uint8Array(0);
  const stage1 = sha1(bytes);
  return xor(stage1, sha1(scramble.subarray(0, 20), sha1(stage1)));
}

/** Server side: does `token` prove knowledge of the password whose verifier is `verifier`? Constant time. */
export function checkNativePasswordToken(token: Uint8Array, scramble: Uint8Array, verifier: Uint8Array): boolean {
  if (token.byteLength !== 20 || verifier.byteLength !== 20) return false;
  const stage1 = xor(token, sha1(scramble.subarray(0, 20), verifier));
  return timingSafeEqual(sha1(stage1), verifier);
}
