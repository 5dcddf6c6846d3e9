/**
 * MD5 password authentication, client side (AuthenticationMD5Password):
 *
 *   PasswordMessage = "md5" + hex(md5( hex(md5(password + user)) + salt ))
 *
 * Deprecated by Postgres in favour of SCRAM but still found on older servers.
 */
import { createHash } from "node:crypto";

function md5Hex(data: Uint8Array | string): string {
  return createHash("md5").update(data).digest("hex");
}

/** The stored form Postgres keeps for an MD5 role: "md5" + hex(md5(password + user)). */
export function md5StoredPassword(user: string, password: string): string {
  return `md5${md5Hex(password + user)}`;
}

/** The PasswordMessage text answering AuthenticationMD5Password with `salt` (4 bytes). */
export function md5PasswordResponse(user: string, password: string, salt: Uint8Array): string {
  const inner = Buffer.from(md5Hex(password + user), "utf8");
  return `md5${md5Hex(Buffer.concat([inner, salt]))}`;
}
