import { randomUUID } from "node:crypto";
import { rmSync } from "node:fs";
import { createServer, type Server } from "node:https";
import type { IncomingMessage, ServerResponse } from "node:http";
import { join } from "node:path";
import { exportJWK, generateKeyPair, importJWK, SignJWT, type JWTPayload } from "jose";
import Provider, { errors, type JWK } from "oidc-provider";
import { issuerTls } from "./issuer-tls.js";

// A real OpenID provider (panva's oidc-provider) for the tests, in-process
// on an HTTPS port 0 with a self-signed certificate: openid-client refuses
// plain-http issuers, and giving the gateway the certificate as its CA
// (identity.oidc.ca) is the path a private provider takes in production.
//
// It issues JWT access tokens (RFC 9068) with the client credentials grant
// for the resource indicator `urn:gatehouse` (the default when the client
// names none), audience `gatehouse`; `urn:other` gets audience `other-api`.
// Each client's groups are in the `groups` claim.

export const RESOURCE = "urn:gatehouse";
export const AUDIENCE = "gatehouse";
export const OTHER_RESOURCE = "urn:other";

export interface TestClient {
  id: string;
  secret: string;
  groups?: string[];
  /** Access token lifetime in seconds (default 600). */
  ttlSeconds?: number;
}

export interface TestIssuer {
  /** https://127.0.0.1:PORT */
  issuer: string;
  /** PEM of the self-signed certificate (its own CA). */
  ca: string;
  /** The same PEM in a file, for identity.oidc.ca and `gatehouse token --ca`. */
  caFile: string;
  /** kids of the keys in the JWKS, the signing key first. */
  kids(): string[];
  /** A client credentials token, fetched the way any client does (POST /token). */
  token(clientId: string, options?: { resource?: string }): Promise<string>;
  /**
   * A new signing key: by default the old one stays published (a graceful
   * rotation); `retireOld` drops it from the JWKS altogether.
   */
  rotateKeys(options?: { retireOld?: boolean }): Promise<void>;
  /**
   * A token signed with the issuer's current signing key, with exactly these
   * claims (for shapes the provider itself would not issue: nbf ahead, no exp...).
   */
  sign(claims: JWTPayload, header?: { kid?: string }): Promise<string>;
  /** How many times the JWKS was fetched (to see the gateway's cache at work). */
  readonly jwksFetches: number;
  /** How many token requests reached the provider (to see `gatehouse token`'s cache at work). */
  readonly tokenRequests: number;
  close(): Promise<void>;
}

export async function startTestIssuer(clients: TestClient[]): Promise<TestIssuer> {
  const { dir, cert, key, caFile } = await issuerTls("gatehouse-oidc-", "gatehouse test issuer");

  let handler: (req: IncomingMessage, res: ServerResponse) => void = (_req, res) => res.writeHead(503).end();
  let jwksFetches = 0;
  let tokenRequests = 0;
  const server: Server = createServer({ cert, key }, (req, res) => {
    if (req.url === "/jwks") jwksFetches += 1;
    if (req.url === "/token") tokenRequests += 1;
    handler(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  const issuer = `https://127.0.0.1:${port}`;

  let keys: JWK[] = [await newKey()];
  const byId = new Map(clients.map((c) => [c.id, c]));

  const build = () => {
    const provider = new Provider(issuer, {
      clients: clients.map((c) => ({
        client_id: c.id,
        client_secret: c.secret,
        grant_types: ["client_credentials"],
        response_types: [],
        redirect_uris: [],
        token_endpoint_auth_method: "client_secret_basic",
      })),
      jwks: { keys },
      features: {
        clientCredentials: { enabled: true },
        devInteractions: { enabled: false },
        resourceIndicators: {
          enabled: true,
          defaultResource: () => RESOURCE,
          useGrantedResource: () => true,
          getResourceServerInfo: (_ctx, indicator, client) => {
            const ttl = byId.get(client.clientId)?.ttlSeconds ?? 600;
            if (indicator === RESOURCE) return { audience: AUDIENCE, scope: "connect", accessTokenFormat: "jwt", accessTokenTTL: ttl };
            if (indicator === OTHER_RESOURCE) return { audience: "other-api", scope: "connect", accessTokenFormat: "jwt", accessTokenTTL: ttl };
            throw new errors.InvalidTarget();
          },
        },
      },
      ttl: { ClientCredentials: (_ctx, _token, client) => byId.get(client.clientId)?.ttlSeconds ?? 600 },
      extraTokenClaims: (_ctx, token) => {
        const groups = byId.get(String((token as { clientId?: string }).clientId))?.groups;
        return groups ? { groups } : undefined;
      },
    });
    const callback = provider.callback();
    handler = (req, res) => void callback(req, res);
  };
  build();

  return {
    issuer,
    ca: cert,
    caFile,
    kids: () => keys.map((k) => k.kid!),
    async token(clientId, options = {}) {
      const client = byId.get(clientId);
      if (!client) throw new Error(`no test client ${clientId}`);
      const body = new URLSearchParams({ grant_type: "client_credentials", resource: options.resource ?? RESOURCE });
      const response = await httpsPost(`${issuer}/token`, body.toString(), {
        authorization: `Basic ${Buffer.from(`${encodeURIComponent(client.id)}:${encodeURIComponent(client.secret)}`).toString("base64")}`,
        "content-type": "application/x-www-form-urlencoded",
      }, cert);
      const parsed = JSON.parse(response) as { access_token?: string; error?: string };
      if (!parsed.access_token) throw new Error(`token request failed: ${response}`);
      return parsed.access_token;
    },
    async rotateKeys(options = {}) {
      const fresh = await newKey();
      keys = options.retireOld ? [fresh] : [fresh, ...keys];
      build();
    },
    async sign(claims, header = {}) {
      const key = keys[0]!;
      return new SignJWT(claims)
        .setProtectedHeader({ alg: "RS256", typ: "at+jwt", kid: header.kid ?? key.kid! })
        .sign(await importJWK(key as Parameters<typeof importJWK>[0], "RS256"));
    },
    get jwksFetches() {
      return jwksFetches;
    },
    get tokenRequests() {
      return tokenRequests;
    },
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function newKey(): Promise<JWK> {
  const { privateKey } = await generateKeyPair("RS256", { extractable: true });
  return { ...(await exportJWK(privateKey)), kid: randomUUID(), alg: "RS256", use: "sig" } as JWK;
}

async function httpsPost(url: string, body: string, headers: Record<string, string>, ca: string): Promise<string> {
  const { request } = await import("node:https");
  return new Promise((resolve, reject) => {
    const req = request(url, { method: "POST", headers, ca }, (res) => {
      let text = "";
      res.setEncoding("utf8").on("data", (chunk: string) => (text += chunk));
      res.once("end", () => resolve(text));
    });
    req.once("error", reject);
    req.end(body);
  });
}
