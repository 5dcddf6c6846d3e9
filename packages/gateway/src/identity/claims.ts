import type { JWTPayload } from "jose";

// Turning a verified token's claims into an identity: which claim names it,
// which lists its groups. Providers differ: Okta and Entra put groups in an
// array, some send a space-separated string, Keycloak nests roles
// (realm_access.roles), Auth0 namespaces custom claims with a URL (dots in
// the claim's own name).

/** At most this many groups are kept from a token, so one token cannot bloat every record. */
export const MAX_GROUPS = 256;

export interface MappedClaims {
  name: string;
  subject: string | null;
  groups: string[];
}

export type ClaimsResult = { ok: true; claims: MappedClaims } | { ok: false; message: string };

/**
 * The value of `path` in `payload`: the claim of that exact name when there
 * is one (an Auth0-style "https://example.com/groups"), else the dotted path
 * into nested objects ("realm_access.roles").
 */
export function claimAt(payload: Record<string, unknown>, path: string): unknown {
  if (Object.hasOwn(payload, path)) return payload[path];
  let value: unknown = payload;
  for (const part of path.split(".")) {
    if (typeof value !== "object" || value === null || Array.isArray(value) || !Object.hasOwn(value, part)) return undefined;
    value = (value as Record<string, unknown>)[part];
  }
  return value;
}

export function mapClaims(payload: JWTPayload, settings: { nameClaim: string; groupsClaim: string }): ClaimsResult {
  const name = claimAt(payload, settings.nameClaim);
  if (typeof name !== "string" || name === "") {
    return { ok: false, message: `the token has no string claim "${settings.nameClaim}" to name the identity` };
  }
  const raw = claimAt(payload, settings.groupsClaim);
  let groups: string[];
  if (raw === undefined || raw === null) groups = [];
  else if (Array.isArray(raw)) groups = raw.filter((g): g is string => typeof g === "string" && g !== "");
  else if (typeof raw === "string") groups = raw.split(/[\s,]+/).filter(Boolean);
  else return { ok: false, message: `the token's "${settings.groupsClaim}" claim is neither a list nor a string` };
  return {
    ok: true,
    claims: { name, subject: typeof payload.sub === "string" ? payload.sub : null, groups: [...new Set(groups)].slice(0, MAX_GROUPS) },
  };
}

/** A compact JWS: three base64url parts, the first a JSON object (so it starts with "eyJ"). */
export function looksLikeJwt(text: string): boolean {
  return /^eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/.test(text);
}
