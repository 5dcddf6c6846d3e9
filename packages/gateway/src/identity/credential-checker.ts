import type { Identity } from "@gatehouse/store";
import type { AccessKeys } from "./access-keys.js";
import { looksLikeJwt } from "./claims.js";
import { tokenClaims, type OidcVerifier, type TokenFailureDetails, type TokenFailureReason } from "./oidc-verifier.js";

/** Why a presented password did not authenticate; recorded with the attempt, never the secret itself. */
export type AuthFailureReason =
  /** Access keys: the identity has none, none matches, or the matching one expired. */
  | "no_key"
  | "wrong_key"
  | "expired"
  /** OIDC: the token was refused (see TokenFailureReason). */
  | TokenFailureReason
  /** OIDC: a valid token, but for another identity than the user name the client gave. */
  | "name_mismatch";

export type AuthMethod = "access_key" | "oidc";

export type PasswordCheck =
  | { ok: true; identity: Identity; keyId?: string; expiresUs?: number }
  | { ok: false; reason: AuthFailureReason; method: AuthMethod; details?: Record<string, unknown> };

/**
 * Checks a client's secret: turns a claimed identity name and a presented password into an
 * identity. (Not to be confused with the protocols package's client-side authenticators, which
 * answer a server.)
 * Every protocol that takes a password (Postgres cleartext over TLS now;
 * MySQL, SSH and Kubernetes bearer tokens later) goes through here, so they
 * all accept the same credentials: an access key, or, when identity.oidc is
 * configured, an OIDC access token (anything shaped like a JWT is taken for
 * one; access keys never are).
 */
export class CredentialChecker {
  constructor(
    private readonly accessKeys: AccessKeys,
    /** The verifier for the current config; undefined when OIDC is off. */
    private readonly oidc: () => OidcVerifier | undefined = () => undefined,
  ) {}

  async check(name: string, password: string): Promise<PasswordCheck> {
    const verifier = this.oidc();
    if (verifier && looksLikeJwt(password)) return this.checkToken(verifier, name, password);
    const result = await this.accessKeys.verify(name, password);
    if (result.ok) return { ok: true, identity: { name, method: "access_key" }, keyId: result.keyId };
    return { ok: false, reason: result.reason, method: "access_key" };
  }

  /**
   * An HTTP bearer credential (the Kubernetes listener's `Authorization: Bearer …`), which carries
   * no separate user name: an OIDC access token names its identity itself; an access key is sent
   * as `IDENTITY:KEY` (identity names have no ':'). Undefined `name` in a failure: nothing said who.
   */
  async checkBearer(credential: string): Promise<PasswordCheck & { name?: string }> {
    const verifier = this.oidc();
    if (verifier && looksLikeJwt(credential)) {
      const result = await verifier.verify(credential);
      if (!result.ok) return { ok: false, reason: result.reason, method: "oidc", details: failureDetails(result) };
      const verified = result.token;
      return {
        ok: true,
        name: verified.name,
        identity: { name: verified.name, issuer: verified.issuer, subject: verified.subject, groups: verified.groups, method: "oidc" },
        expiresUs: verified.expiresUs,
      };
    }
    const colon = credential.indexOf(":");
    if (colon <= 0) return { ok: false, reason: "no_key", method: "access_key", details: { message: "expected IDENTITY:ACCESS_KEY or an OIDC access token" } };
    const name = credential.slice(0, colon);
    return { ...(await this.check(name, credential.slice(colon + 1))), name };
  }

  private async checkToken(verifier: OidcVerifier, name: string, token: string): Promise<PasswordCheck> {
    const result = await verifier.verify(token);
    if (!result.ok) return { ok: false, reason: result.reason, method: "oidc", details: failureDetails(result) };
    const verified = result.token;
    if (verified.name !== name) {
      return {
        ok: false,
        reason: "name_mismatch",
        method: "oidc",
        details: {
          message: `the token names identity "${verified.name}" (claim ${verifier.settings.nameClaim}), not "${name}"`,
          tokenIdentity: verified.name,
          issuer: verified.issuer,
          subject: verified.subject,
          // As every other token refusal has it: what the token said about itself.
          claimed: tokenClaims(token),
        },
      };
    }
    return {
      ok: true,
      identity: { name, issuer: verified.issuer, subject: verified.subject, groups: verified.groups, method: "oidc" },
      expiresUs: verified.expiresUs,
    };
  }
}

function failureDetails(failure: TokenFailureDetails): Record<string, unknown> {
  return failure.claimed ? { message: failure.message, claimed: failure.claimed } : { message: failure.message };
}
