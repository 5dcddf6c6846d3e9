import { readFileSync } from "node:fs";
import {
  createRemoteJWKSet,
  customFetch as joseCustomFetch,
  decodeJwt,
  decodeProtectedHeader,
  errors as joseErrors,
  jwtVerify,
  type JWTPayload,
} from "jose";
import type { Clock } from "../clock.js";
import type { OidcConfig } from "../config/schema.js";
import { GatewayError } from "../errors.js";
import type { Logger } from "../logger.js";
import { mapClaims } from "./claims.js";
import { providerFetch, type ProviderFetch } from "./provider-fetch.js";

// Verifies OIDC access tokens (JWTs, RFC 9068) from one issuer: signature
// against the issuer's JWKS (found by discovery, cached, refetched when a
// token names a key the cache lacks: the issuer rotated its keys), issuer,
// audience, expiry and not-before with the configured skew against the
// injected clock. Each refusal has a reason from a closed list, recorded with
// the attempt; the token itself is never kept.

export type TokenFailureReason =
  /** Not a JWT, or not one that parses. */
  | "malformed"
  /** `iss` is not the configured issuer. */
  | "unknown_issuer"
  /** Discovery or the JWKS could not be fetched. */
  | "issuer_unreachable"
  /** The token's `kid` is not in the issuer's JWKS, even after a refetch. */
  | "unknown_key"
  /** The signature does not verify with the issuer's key (tampered, or signed by another key). */
  | "bad_signature"
  /** Signed with an algorithm the gateway does not accept (`none`, HMAC...). */
  | "unsupported_algorithm"
  | "expired"
  | "not_yet_valid"
  | "wrong_audience"
  /** A required claim is missing or of the wrong type (exp, the name claim, the groups claim). */
  | "invalid_claims";

export interface VerifiedToken {
  name: string;
  issuer: string;
  subject: string | null;
  groups: string[];
  /** The token's `exp`, in µs. */
  expiresUs: number;
}

/** What is recorded about a refused token: its unverified claims, never the token. */
export interface TokenFailureDetails {
  message: string;
  /** Claims as the token states them, unverified: who it claims to be. */
  claimed?: { issuer?: string; subject?: string; audience?: string | string[]; expiresAt?: string; kid?: string };
}

export type TokenCheck = { ok: true; token: VerifiedToken } | ({ ok: false; reason: TokenFailureReason } & TokenFailureDetails);

/** Asymmetric signatures only: a JWKS publishes public keys, and HMAC or `none` would let anyone mint tokens. */
const ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA", "Ed25519"];

/** After a failed discovery, attempts within this many ms fail fast instead of asking the provider again. */
const DISCOVERY_RETRY_MS = 5_000;

/** Identifies the gateway to openid-client's discovery; it never authenticates to the provider as a client. */
const DISCOVERY_CLIENT_ID = "gatehouse-gateway";

type KeySet = ReturnType<typeof createRemoteJWKSet>;

export interface OidcVerifierOptions {
  clock: Clock;
  logger?: Logger;
  /** PEM of identity.oidc.ca, already read (see readOidcCa). */
  ca?: string;
}

export class OidcVerifier {
  private readonly fetch: ProviderFetch;
  private keys: Promise<KeySet> | undefined;
  private discoveryFailedAtUs: number | undefined;
  /** JWKS fetches so far: a verify that fetched none and found no key was throttled by the cooldown. */
  private keySetFetches = 0;

  constructor(
    readonly settings: OidcConfig,
    private readonly options: OidcVerifierOptions,
  ) {
    this.fetch = providerFetch(options.ca);
  }

  /** Discovers the issuer's JWKS now (the first token would otherwise wait for it). Never rejects. */
  async warmUp(): Promise<{ ok: true; jwksUri: string } | { ok: false; message: string }> {
    try {
      const keys = await this.keySet();
      return { ok: true, jwksUri: String((keys as KeySet & { jwksUri?: string }).jwksUri ?? "") };
    } catch (error) {
      return { ok: false, message: describeError(error) };
    }
  }

  async verify(token: string): Promise<TokenCheck> {
    let claimed: JWTPayload;
    let kid: string | undefined;
    try {
      claimed = decodeJwt(token);
      kid = decodeProtectedHeader(token).kid;
    } catch (error) {
      return { ok: false, reason: "malformed", message: describeError(error) };
    }
    const about = claimedOf(claimed, kid);
    if (claimed.iss !== this.settings.issuer) {
      return { ok: false, reason: "unknown_issuer", message: `the token's issuer is not ${this.settings.issuer}`, claimed: about };
    }

    let keys: KeySet;
    try {
      keys = await this.keySet();
    } catch (error) {
      return { ok: false, reason: "issuer_unreachable", message: describeError(error), claimed: about };
    }

    let payload: JWTPayload;
    const fetchesBefore = this.keySetFetches;
    try {
      ({ payload } = await jwtVerify(token, keys, {
        issuer: this.settings.issuer,
        audience: this.settings.audience,
        algorithms: ALGORITHMS,
        clockTolerance: this.settings.clockSkewSeconds,
        currentDate: new Date(Math.floor(this.options.clock() / 1000)),
        requiredClaims: ["exp"],
      }));
    } catch (error) {
      const reason = failureReason(error);
      if (reason === "unknown_key" && this.keySetFetches === fetchesBefore && keys.coolingDown) {
        // Why a genuine rotation can be refused for a while: the last refresh was too recent.
        this.options.logger?.debug(
          { issuer: this.settings.issuer, kid: kid ?? null, cooldownMs: this.settings.jwksRefreshCooldownMs },
          "oidc key set refresh throttled: unknown key id within jwksRefreshCooldownMs of the last refresh",
        );
      }
      return { ok: false, reason, message: describeError(error), claimed: about };
    }

    const mapped = mapClaims(payload, this.settings);
    if (!mapped.ok) return { ok: false, reason: "invalid_claims", message: mapped.message, claimed: about };
    return {
      ok: true,
      token: { ...mapped.claims, issuer: this.settings.issuer, expiresUs: (payload.exp ?? 0) * 1_000_000 },
    };
  }

  /** The issuer's key set, discovering its jwks_uri on first use (and again after a failure, past a pause). */
  private keySet(): Promise<KeySet> {
    if (this.keys) return this.keys;
    const now = this.options.clock();
    if (this.discoveryFailedAtUs !== undefined && now - this.discoveryFailedAtUs < DISCOVERY_RETRY_MS * 1000) {
      return Promise.reject(new Error(`discovery of ${this.settings.issuer} failed moments ago; retrying shortly`));
    }
    const keys = this.discover().then(
      (jwksUri) => {
        this.options.logger?.info({ issuer: this.settings.issuer, jwksUri }, "oidc issuer discovered");
        const set = createRemoteJWKSet(new URL(jwksUri), {
          timeoutDuration: this.settings.requestTimeoutMs,
          cooldownDuration: this.settings.jwksRefreshCooldownMs,
          cacheMaxAge: this.settings.jwksMaxAgeMs,
          [joseCustomFetch]: (url: string, init: Parameters<ProviderFetch>[1]) => this.fetchKeySet(url, init),
        });
        return Object.assign(set, { jwksUri });
      },
      (error: unknown) => {
        this.keys = undefined;
        this.discoveryFailedAtUs = this.options.clock();
        this.options.logger?.warn({ issuer: this.settings.issuer, err: error }, "oidc discovery failed");
        throw error;
      },
    );
    this.keys = keys;
    return keys;
  }

  /** Every JWKS (re)fetch goes through here: counted, and logged at debug with what came back. */
  private async fetchKeySet(url: string, init: Parameters<ProviderFetch>[1]): Promise<Response> {
    this.keySetFetches++;
    const response = await this.fetch(url, init);
    this.options.logger?.debug({ issuer: this.settings.issuer, jwksUri: url, status: response.status }, "oidc key set refreshed");
    return response;
  }

  /** The issuer's jwks_uri, from its discovery document (openid-client checks the document names the same issuer). */
  private async discover(): Promise<string> {
    // Loaded on first use: the CLI's other commands need not load openid-client.
    const client = await import("openid-client");
    const issuer = new URL(this.settings.issuer);
    const configuration = await client.discovery(issuer, DISCOVERY_CLIENT_ID, undefined, client.None(), {
      [client.customFetch]: this.fetch as unknown as typeof fetch,
      timeout: Math.ceil(this.settings.requestTimeoutMs / 1000),
      ...(issuer.protocol === "http:" ? { execute: [client.allowInsecureRequests] } : {}),
    });
    const jwksUri = configuration.serverMetadata().jwks_uri;
    if (!jwksUri) throw new Error(`the discovery document of ${this.settings.issuer} has no jwks_uri`);
    return jwksUri;
  }
}

/** Reads identity.oidc.ca, if set; a GatewayError names the key when the file cannot be read. */
export function readOidcCa(settings: OidcConfig | undefined): string | undefined {
  if (settings?.ca === undefined) return undefined;
  try {
    const pem = readFileSync(settings.ca, "utf8");
    if (!pem.includes("-----BEGIN CERTIFICATE-----")) throw new Error("no PEM certificate in it");
    return pem;
  } catch (cause) {
    throw new GatewayError("CONFIG_INVALID", `identity.oidc.ca: cannot use ${settings.ca}`, {
      cause,
      problems: [`identity.oidc.ca: cannot use ${settings.ca}: ${(cause as Error).message}`],
    });
  }
}

/**
 * The verifier for the current config's identity.oidc (undefined when OIDC
 * is off), built anew only when that section changes, so a reload that leaves
 * it alone keeps the discovered issuer and the cached keys.
 */
export function currentOidcVerifier(settings: () => OidcConfig | undefined, options: Omit<OidcVerifierOptions, "ca">): () => OidcVerifier | undefined {
  let built: { key: string; verifier: OidcVerifier } | undefined;
  return () => {
    const current = settings();
    if (!current) return (built = undefined);
    const key = JSON.stringify(current);
    if (built?.key !== key) {
      const ca = readOidcCa(current);
      built = { key, verifier: new OidcVerifier(current, { ...options, ...(ca === undefined ? {} : { ca }) }) };
    }
    return built.verifier;
  };
}

function failureReason(error: unknown): TokenFailureReason {
  if (!(error instanceof joseErrors.JOSEError)) return "issuer_unreachable";
  switch (error.code) {
    case joseErrors.JWTExpired.code:
      return "expired";
    case joseErrors.JWTClaimValidationFailed.code: {
      const { claim, reason } = error as joseErrors.JWTClaimValidationFailed;
      if (claim === "aud") return "wrong_audience";
      if (claim === "nbf" && reason === "check_failed") return "not_yet_valid";
      if (claim === "iss") return "unknown_issuer";
      return "invalid_claims";
    }
    case joseErrors.JWSSignatureVerificationFailed.code:
      return "bad_signature";
    case joseErrors.JWKSNoMatchingKey.code:
    case joseErrors.JWKSMultipleMatchingKeys.code:
      return "unknown_key";
    case joseErrors.JOSEAlgNotAllowed.code:
    case joseErrors.JOSENotSupported.code:
      return "unsupported_algorithm";
    case joseErrors.JWTInvalid.code:
    case joseErrors.JWSInvalid.code:
      return "malformed";
    case joseErrors.JWKSTimeout.code:
    case joseErrors.JWKSInvalid.code:
    default:
      // Anything else comes from fetching or parsing the issuer's key set.
      return "issuer_unreachable";
  }
}

/** What a token claims about itself (issuer, subject, audience, expiry, key id), cut to sane sizes, for the record. */
export function tokenClaims(token: string): NonNullable<TokenFailureDetails["claimed"]> {
  try {
    return claimedOf(decodeJwt(token), decodeProtectedHeader(token).kid);
  } catch {
    return {};
  }
}

function claimedOf(payload: JWTPayload, kid: string | undefined): NonNullable<TokenFailureDetails["claimed"]> {
  const claimed: NonNullable<TokenFailureDetails["claimed"]> = {};
  if (typeof payload.iss === "string") claimed.issuer = payload.iss.slice(0, 512);
  if (typeof payload.sub === "string") claimed.subject = payload.sub.slice(0, 512);
  if (typeof payload.aud === "string") claimed.audience = payload.aud.slice(0, 512);
  else if (Array.isArray(payload.aud)) claimed.audience = payload.aud.filter((a) => typeof a === "string").slice(0, 10);
  if (typeof payload.exp === "number" && Number.isFinite(payload.exp)) {
    const at = new Date(payload.exp * 1000);
    if (!Number.isNaN(at.getTime())) claimed.expiresAt = at.toISOString();
  }
  if (kid !== undefined) claimed.kid = kid.slice(0, 256);
  return claimed;
}

function describeError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause instanceof Error ? `: ${error.cause.message}` : "";
  return `${error.message}${cause}`;
}
