/**
 * caching_sha2_password, client side, plus the helpers the gateway's server side needs.
 * https://dev.mysql.com/doc/dev/mysql-server/latest/page_caching_sha2_authentication_exchanges.html
 *
 * Fast path: token = SHA256(password) XOR SHA256(SHA256(SHA256(password)) ‖ scramble).
 * The server answers AuthMoreData 0x03 (fast auth success, an OK follows) or 0x04 (perform full
 * authentication): the client then sends password+NUL in cleartext over TLS, or, without TLS,
 * asks for the server's RSA public key (0x02) and sends RSA-OAEP(SHA-1) of
 * (password+NUL) XOR scramble (the scramble repeated).
 */
import { constants, createHash, publicEncrypt } from "node:crypto";

function sha256(...parts: Uint8Array[]): Uint8Array {
  const h = createHash("sha256");
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
}

export function cachingSha2Token(password: string, scramble: Uint8Array): Uint8Array {
  if (password === "") return new Uint8Array(0);
  const stage1 = sha256(new TextEncoder().encode(password));
  const stage2 = sha256(sha256(stage1), scramble.subarray(0, 20));
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i++) out[i] = stage1[i]! ^ stage2[i]!;
  return out;
}

/** password + NUL, the full-authentication cleartext (over TLS) and mysql_clear_password's payload. */
export function passwordWithNul(password: string): Uint8Array {
  const bytes = new TextEncoder().encode(password);
  const out = new Uint8Array(bytes.byteLength + 1);
  out.set(bytes);
  return out;
}

/** Full authentication without TLS: (password+NUL) XOR scramble, encrypted with the server's PEM public key. */
export function cachingSha2EncryptPassword(password: string, scramble: Uint8Array, publicKeyPem: string): Uint8Array {
  const plain = passwordWithNul(password);
  const seed = scramble.subarray(0, 20);
  for (let i = 0; i < plain.byteLength; i++) plain[i] = plain[i]! ^ seed[i % seed.byteLength]!;
  return new Uint8Array(publicEncrypt({ key: publicKeyPem, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha1" }, plain));
}

/**
 * The cleartext password a client sent (password+NUL); tolerant of a missing NUL (some
 * clients' mysql_clear_password omit it). Undefined when it holds a NUL before the end.
 */
export function decodeCleartextPassword(data: Uint8Array): string | undefined {
  const end = data.byteLength > 0 && data[data.byteLength - 1] === 0 ? data.byteLength - 1 : data.byteLength;
  const bytes = data.subarray(0, end);
  if (bytes.includes(0)) return undefined;
  return new TextDecoder("utf-8", { fatal: false }).decode(bytes);
}
