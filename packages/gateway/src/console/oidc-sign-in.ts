import { createHash, randomBytes } from "node:crypto";
import type { Clock } from "../clock.js";
import type { ConsoleConfig, OidcConfig } from "../config/schema.js";
import { GatewayError } from "../errors.js";
import { mapClaims } from "../identity/claims.js";
import { readOidcCa } from "../identity/oidc-verifier.js";
import { providerFetch } from "../identity/provider-fetch.js";
import type { Viewer } from "./sign-ins.js";

// People sign in to the console with OIDC's authorization code flow and PKCE (RFC 7636), at the
// issuer of identity.oidc, with the console's own client (console.oidc). Their identity is the ID
// token's identity.oidc.nameClaim, the same claim that names an agent's token, so "own sessions" are
// the sessions recorded under that name; their groups come from console.groupsClaim.

/** A sign-in started and not yet finished: at most this long (ms) at the provider. */
const PENDING_MS = 10 * 60_000;
const MAX_PENDING = 1_000;

interface Pending {
  verifier: string;
  nonce: string;
  startedUs: number;
}

type Client = typeof import("openid-client");
type Configuration = import("openid-client").Configuration;

export class OidcSignIn {
  private readonly pending = new Map<string, Pending>();
  private configuration: Promise<Configuration> | undefined;
  private configuredFor: string | undefined;

  constructor(
    private readonly settings: () => { oidc: OidcConfig | undefined; console: ConsoleConfig },
    private readonly clientSecret: () => string | undefined,
    private readonly clock: Clock,
  ) {}

  get enabled(): boolean {
    const { oidc, console } = this.settings();
    return oidc !== undefined && console.oidc !== undefined;
  }

  /** The provider's authorization URL for a new sign-in, and its `state` (kept in a cookie too). */
  async start(): Promise<{ url: string; state: string }> {
    const client = await import("openid-client");
    const configuration = await this.discover(client);
    const consoleOidc = this.settings().console.oidc!;
    this.sweep();
    while (this.pending.size >= MAX_PENDING) this.pending.delete(this.pending.keys().next().value!);
    const state = randomBytes(24).toString("base64url");
    const verifier = client.randomPKCECodeVerifier();
    const nonce = client.randomNonce();
    this.pending.set(state, { verifier, nonce, startedUs: this.clock() });
    const scopes = new Set(["openid", ...consoleOidc.scopes]);
    const url = client.buildAuthorizationUrl(configuration, {
      redirect_uri: consoleOidc.redirectUri,
      scope: [...scopes].join(" "),
      code_challenge: await client.calculatePKCECodeChallenge(verifier),
      code_challenge_method: "S256",
      state,
      nonce,
    });
    return { url: url.href, state };
  }

  /**
   * Finishes a sign-in at the callback: `callbackUrl` as the provider sent the browser back, and
   * the state from the browser's cookie (it must be the one in the URL: this browser started it).
   */
  async finish(callbackUrl: URL, cookieState: string | undefined): Promise<Viewer> {
    const state = callbackUrl.searchParams.get("state");
    if (!state || !cookieState || state !== cookieState) throw new GatewayError("OIDC_SIGN_IN_FAILED", "the sign-in was not started from this browser (state does not match)");
    const pending = this.pending.get(state);
    this.pending.delete(state);
    if (!pending || this.clock() - pending.startedUs > PENDING_MS * 1000) throw new GatewayError("OIDC_SIGN_IN_FAILED", "the sign-in took too long or was already used; start again");
    const client = await import("openid-client");
    const configuration = await this.discover(client);
    const { oidc, console: consoleSettings } = this.settings();
    // The URL the provider redirected to, on the configured redirect URI (the gateway may sit behind a proxy).
    const redirect = new URL(consoleSettings.oidc!.redirectUri);
    redirect.search = callbackUrl.search;
    let claims: Record<string, unknown> | undefined;
    try {
      const tokens = await client.authorizationCodeGrant(configuration, redirect, { pkceCodeVerifier: pending.verifier, expectedState: state, expectedNonce: pending.nonce, idTokenExpected: true });
      claims = tokens.claims() as Record<string, unknown> | undefined;
    } catch (cause) {
      throw new GatewayError("OIDC_SIGN_IN_FAILED", `the provider's answer was refused: ${(cause as Error).message}`, { cause });
    }
    if (!claims) throw new GatewayError("OIDC_SIGN_IN_FAILED", "the provider returned no ID token");
    const mapped = mapClaims(claims, { nameClaim: oidc!.nameClaim, groupsClaim: consoleSettings.groupsClaim });
    if (!mapped.ok) throw new GatewayError("OIDC_SIGN_IN_FAILED", mapped.message);
    const auditors = new Set(consoleSettings.auditors);
    return { name: mapped.claims.name, method: "oidc", groups: mapped.claims.groups, auditor: mapped.claims.groups.some((g) => auditors.has(g)) };
  }

  private discover(client: Client): Promise<Configuration> {
    const { oidc, console: consoleSettings } = this.settings();
    if (!oidc || !consoleSettings.oidc) return Promise.reject(new GatewayError("OIDC_SIGN_IN_FAILED", "console.oidc is not configured"));
    const secret = this.clientSecret();
    const key = JSON.stringify([oidc, consoleSettings.oidc, secret === undefined ? null : createHash("sha256").update(secret).digest("hex")]);
    if (this.configuration && this.configuredFor === key) return this.configuration;
    const ca = readOidcCa(oidc);
    const issuer = new URL(oidc.issuer);
    const configuration = client
      .discovery(issuer, consoleSettings.oidc.clientId, secret === undefined ? undefined : { client_secret: secret }, secret === undefined ? client.None() : client.ClientSecretBasic(secret), {
        [client.customFetch]: providerFetch(ca) as unknown as typeof fetch,
        timeout: Math.ceil(oidc.requestTimeoutMs / 1000),
        ...(issuer.protocol === "http:" ? { execute: [client.allowInsecureRequests] } : {}),
      })
      .catch((error: unknown) => {
        this.configuration = undefined;
        throw new GatewayError("OIDC_SIGN_IN_FAILED", `discovery of ${oidc.issuer} failed: ${(error as Error).message}`, { cause: error });
      });
    this.configuration = configuration;
    this.configuredFor = key;
    return configuration;
  }

  private sweep(): void {
    const now = this.clock();
    for (const [state, p] of this.pending) if (now - p.startedUs > PENDING_MS * 1000) this.pending.delete(state);
  }
}
