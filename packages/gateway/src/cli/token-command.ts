import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { providerFetch } from "../identity/provider-fetch.js";
import { parseCommand, UsageError, write, type CommandContext } from "./command.js";

export const TOKEN_HELP = `Usage: gatehouse token [options]

Gets an access token for this agent from the organization's OIDC provider
with the client credentials grant and prints it, so that

  PGPASSWORD=$(gatehouse token) psql "host=GATEWAY user=AGENT dbname=app sslmode=require"

works (user = the identity the token names): stdout is the token and nothing
else. The token is cached, readable only by you, and reused until 60 s before
it expires, or until half its lifetime when that is sooner. Providers and the
settings each needs: docs/oidc-providers.md.

Options (each also from the environment variable after it):
  --issuer URL              the provider's issuer URL            GATEHOUSE_OIDC_ISSUER
  --client-id ID            this agent's client id               GATEHOUSE_CLIENT_ID
  --client-secret SECRET    its secret (prefer the variable:     GATEHOUSE_CLIENT_SECRET
                            flags are visible to other users)
  --resource URI            RFC 8707 resource indicator          GATEHOUSE_OIDC_RESOURCE
  --audience AUD            an "audience" parameter, for         GATEHOUSE_OIDC_AUDIENCE
                            providers that take one instead
  --scope SCOPES            space-separated scopes               GATEHOUSE_OIDC_SCOPE
  --auth-method METHOD      client_secret_basic (default) or     GATEHOUSE_OIDC_AUTH_METHOD
                            client_secret_post
  --ca FILE                 PEM CA of the provider's certificate GATEHOUSE_OIDC_CA
  --cache-dir DIR           default $XDG_CACHE_HOME/gatehouse/tokens (~/.cache/...)
  --no-cache                always ask the provider; keep nothing
  --json                    print {"accessToken","expiresAt","cached"}
  --exec-credential         print a client.authentication.k8s.io/v1 ExecCredential:
                            kubectl's exec credential plugin (gatehouse kubeconfig
                            writes a kubeconfig that runs it). Without an OIDC
                            provider configured, the credential is the access key
                            in GATEHOUSE_ACCESS_KEY, as IDENTITY:KEY
  --identity NAME           the identity of that access key   GATEHOUSE_IDENTITY`;

const AUTH_METHODS = ["client_secret_basic", "client_secret_post"] as const;
type AuthMethod = (typeof AUTH_METHODS)[number];

export interface TokenRequest {
  issuer: string;
  clientId: string;
  clientSecret: string;
  resource?: string;
  audience?: string;
  scope?: string;
  authMethod?: AuthMethod;
  /** PEM text of the CA for the provider's certificate. */
  ca?: string;
}

export interface AgentToken {
  accessToken: string;
  /** ms since the epoch; null when the provider gave no lifetime (such a token is not cached). */
  expiresAtMs: number | null;
  cached: boolean;
}

export interface TokenDeps {
  /** ms since the epoch; injected so tests can move time. */
  now?: () => number;
  /** Where tokens are cached; null: no cache. */
  cacheDir?: string | null;
}

/** A cached token is renewed this long before it expires (or at half its lifetime, when that is shorter). */
const REFRESH_MARGIN_MS = 60_000;

export async function tokenCommand(ctx: CommandContext, deps: TokenDeps = {}): Promise<number> {
  const { values } = parseCommand(ctx.argv, {
    issuer: { type: "string" },
    "client-id": { type: "string" },
    "client-secret": { type: "string" },
    resource: { type: "string" },
    audience: { type: "string" },
    scope: { type: "string" },
    "auth-method": { type: "string" },
    ca: { type: "string" },
    "cache-dir": { type: "string" },
    "no-cache": { type: "boolean" },
    json: { type: "boolean" },
    "exec-credential": { type: "boolean" },
    identity: { type: "string" },
  });
  if (values.help) {
    write(ctx.stdout, TOKEN_HELP);
    return 0;
  }
  const env = ctx.env;
  const pick = (flag: string | undefined, variable: string) => flag ?? (env[variable] || undefined);
  const issuer = pick(values.issuer, "GATEHOUSE_OIDC_ISSUER");
  const execCredential = values["exec-credential"] === true;
  if (execCredential && !issuer) {
    // An access key needs no provider: the bearer credential is IDENTITY:KEY.
    const identity = pick(values.identity, "GATEHOUSE_IDENTITY");
    const key = env.GATEHOUSE_ACCESS_KEY || undefined;
    if (!identity || !key) {
      throw new UsageError("token --exec-credential needs an OIDC provider (GATEHOUSE_OIDC_ISSUER, GATEHOUSE_CLIENT_ID, GATEHOUSE_CLIENT_SECRET) or an access key: GATEHOUSE_ACCESS_KEY, with --identity NAME or GATEHOUSE_IDENTITY");
    }
    write(ctx.stdout, JSON.stringify(execCredentialOf(`${identity}:${key}`, null)));
    return 0;
  }
  const clientId = pick(values["client-id"], "GATEHOUSE_CLIENT_ID");
  const clientSecret = pick(values["client-secret"], "GATEHOUSE_CLIENT_SECRET");
  if (!issuer) throw new UsageError("token needs the provider: --issuer URL or GATEHOUSE_OIDC_ISSUER");
  if (!clientId) throw new UsageError("token needs a client id: --client-id or GATEHOUSE_CLIENT_ID");
  if (!clientSecret) throw new UsageError("token needs a client secret: GATEHOUSE_CLIENT_SECRET (or --client-secret)");
  const authMethod = pick(values["auth-method"], "GATEHOUSE_OIDC_AUTH_METHOD") ?? "client_secret_basic";
  if (!(AUTH_METHODS as readonly string[]).includes(authMethod)) throw new UsageError(`--auth-method: expected one of ${AUTH_METHODS.join(", ")}`);
  const caFile = pick(values.ca, "GATEHOUSE_OIDC_CA");
  let ca: string | undefined;
  if (caFile) {
    try {
      ca = readFileSync(caFile, "utf8");
    } catch (error) {
      write(ctx.stderr, `gatehouse token: cannot read --ca ${caFile}: ${(error as Error).message}`);
      return 1;
    }
  }

  const request: TokenRequest = { issuer, clientId, clientSecret, authMethod: authMethod as AuthMethod };
  const resource = pick(values.resource, "GATEHOUSE_OIDC_RESOURCE");
  const audience = pick(values.audience, "GATEHOUSE_OIDC_AUDIENCE");
  const scope = pick(values.scope, "GATEHOUSE_OIDC_SCOPE");
  if (resource) request.resource = resource;
  if (audience) request.audience = audience;
  if (scope) request.scope = scope;
  if (ca) request.ca = ca;

  const cacheDir = values["no-cache"] ? null : (values["cache-dir"] ?? deps.cacheDir ?? defaultCacheDir(env));
  let token: AgentToken;
  try {
    token = await agentToken(request, { ...deps, cacheDir });
  } catch (error) {
    write(ctx.stderr, `gatehouse token: ${describeProviderError(error)}`);
    return 1;
  }
  if (execCredential) {
    write(ctx.stdout, JSON.stringify(execCredentialOf(token.accessToken, token.expiresAtMs)));
  } else if (values.json) {
    write(ctx.stdout, JSON.stringify({ accessToken: token.accessToken, expiresAt: token.expiresAtMs === null ? null : new Date(token.expiresAtMs).toISOString(), cached: token.cached }));
  } else {
    write(ctx.stdout, token.accessToken);
  }
  return 0;
}

/**
 * kubectl's exec credential plugin answer (client.authentication.k8s.io/v1). With an expiry,
 * kubectl runs the plugin again once it passes; without one, for every kubectl run.
 */
export function execCredentialOf(token: string, expiresAtMs: number | null) {
  return {
    apiVersion: "client.authentication.k8s.io/v1",
    kind: "ExecCredential",
    status: { token, ...(expiresAtMs === null ? {} : { expirationTimestamp: new Date(expiresAtMs).toISOString().replace(/\.\d{3}Z$/, "Z") }) },
  };
}

/** The cached token when it has time left, else a new one from the provider (cached in turn). */
export async function agentToken(request: TokenRequest, deps: TokenDeps = {}): Promise<AgentToken> {
  const now = deps.now ?? Date.now;
  const file = deps.cacheDir ? join(deps.cacheDir, `${cacheKey(request)}.json`) : undefined;
  if (file) {
    const cached = readCached(file);
    if (cached && cached.expiresAtMs - refreshMargin(cached) > now()) {
      return { accessToken: cached.accessToken, expiresAtMs: cached.expiresAtMs, cached: true };
    }
  }
  const obtainedAtMs = now();
  const response = await requestToken(request);
  const expiresIn = response.expires_in;
  const expiresAtMs = typeof expiresIn === "number" && expiresIn > 0 ? obtainedAtMs + expiresIn * 1000 : null;
  if (file && expiresAtMs !== null) writeCached(file, { accessToken: response.access_token, obtainedAtMs, expiresAtMs });
  return { accessToken: response.access_token, expiresAtMs, cached: false };
}

async function requestToken(request: TokenRequest): Promise<{ access_token: string; expires_in?: number }> {
  // Loaded here: the other commands need not load openid-client.
  const client = await import("openid-client");
  const issuer = new URL(request.issuer);
  const auth = request.authMethod === "client_secret_post" ? client.ClientSecretPost(request.clientSecret) : client.ClientSecretBasic(request.clientSecret);
  const configuration = await client.discovery(issuer, request.clientId, undefined, auth, {
    [client.customFetch]: providerFetch(request.ca) as unknown as typeof fetch,
    ...(issuer.protocol === "http:" ? { execute: [client.allowInsecureRequests] } : {}),
  });
  const parameters: Record<string, string> = {};
  if (request.resource) parameters.resource = request.resource;
  if (request.audience) parameters.audience = request.audience;
  if (request.scope) parameters.scope = request.scope;
  return client.clientCredentialsGrant(configuration, parameters);
}

interface CachedToken {
  accessToken: string;
  obtainedAtMs: number;
  expiresAtMs: number;
}

function refreshMargin(token: CachedToken): number {
  return Math.min(REFRESH_MARGIN_MS, (token.expiresAtMs - token.obtainedAtMs) / 2);
}

/** One cache file per provider, client, secret and request, so a new secret or resource never reuses an old token. */
function cacheKey(request: TokenRequest): string {
  const secret = createHash("sha256").update(request.clientSecret).digest("hex");
  const parts = [request.issuer, request.clientId, secret, request.resource ?? "", request.audience ?? "", request.scope ?? "", request.authMethod ?? ""];
  return createHash("sha256").update(JSON.stringify(parts)).digest("hex").slice(0, 40);
}

function readCached(file: string): CachedToken | undefined {
  try {
    const parsed = JSON.parse(readFileSync(file, "utf8")) as Partial<CachedToken>;
    if (typeof parsed.accessToken !== "string" || typeof parsed.expiresAtMs !== "number" || typeof parsed.obtainedAtMs !== "number") return undefined;
    return parsed as CachedToken;
  } catch {
    // Missing or unreadable: ask the provider.
    return undefined;
  }
}

function writeCached(file: string, token: CachedToken): void {
  try {
    const dir = join(file, "..");
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const temp = `${file}.${process.pid}.tmp`;
    writeFileSync(temp, JSON.stringify(token), { mode: 0o600 });
    renameSync(temp, file);
  } catch {
    // A cache that cannot be written only costs the next call a request.
  }
}

function defaultCacheDir(env: NodeJS.ProcessEnv): string {
  return join(env.XDG_CACHE_HOME || join(env.HOME || homedir(), ".cache"), "gatehouse", "tokens");
}

/** The provider's own error code and description when it gave them (invalid_client...), else the cause. */
function describeProviderError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  // A token error response has error/error_description; a 401 with a WWW-Authenticate challenge carries them in the challenge.
  const challenge = Array.isArray(error.cause) ? (error.cause[0] as { parameters?: Record<string, unknown> } | undefined)?.parameters : undefined;
  const { error: code, error_description: description } = (challenge ?? error) as { error?: unknown; error_description?: unknown };
  if (typeof code === "string") return `the provider refused: ${code}${typeof description === "string" ? ` (${description})` : ""}`;
  const cause = error.cause instanceof Error ? `: ${error.cause.message}` : "";
  return `${error.message}${cause}`;
}
