import type { Identity } from "@gatehouse/store";
import type { AccessKeys } from "./access-keys.js";

/** Why a presented password did not authenticate; recorded with the attempt, never the secret itself. */
export type AuthFailureReason = "no_key" | "wrong_key" | "expired" | (string & {});

export type PasswordCheck =
  | { ok: true; identity: Identity; keyId?: string }
  | { ok: false; reason: AuthFailureReason; method: string };

/**
 * Turns a claimed identity name and a presented password into an identity.
 * Every protocol that takes a password (Postgres cleartext over TLS now;
 * MySQL, SSH and Kubernetes bearer tokens later) goes through here, so they
 * all accept the same credentials: access keys, and what the identity work adds.
 */
export class PasswordAuthenticator {
  constructor(private readonly accessKeys: AccessKeys) {}

  async check(name: string, password: string): Promise<PasswordCheck> {
    const result = await this.accessKeys.verify(name, password);
    if (result.ok) return { ok: true, identity: { name, method: "access_key" }, keyId: result.keyId };
    return { ok: false, reason: result.reason, method: "access_key" };
  }
}
