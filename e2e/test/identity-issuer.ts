import { generateKeyPairSync, randomUUID } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import { createServer } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Provider, { errors, type JWK } from "oidc-provider";
import { generate } from "selfsigned";

// The organization's OpenID provider for the identity e2e test: panva's
// oidc-provider in the test process, over HTTPS (port 0) with a self-signed
// certificate that the gateway and `gatehouse token` are given as their CA.
// Client credentials only; JWT access tokens for the resource `urn:gatehouse`
// (audience `gatehouse`, the default) or `urn:other` (audience `other-api`);
// each client's groups in the `groups` claim.

export const AUDIENCE = "gatehouse";
export const OTHER_RESOURCE = "urn:other";

export interface IssuerClient {
  id: string;
  secret: string;
  groups?: string[];
  /** Access token lifetime in seconds (default 600). */
  ttlSeconds?: number;
}

export interface Issuer {
  issuer: string;
  caFile: string;
  /** A new signing key; the old one stays published. */
  rotateKeys(): void;
  close(): Promise<void>;
}

export async function startIssuer(clients: IssuerClient[]): Promise<Issuer> {
  const dir = mkdtempSync(join(tmpdir(), "gatehouse-e2e-oidc-"));
  const tls = await generate([{ name: "commonName", value: "gatehouse e2e issuer" }], {
    keyType: "ec",
    curve: "P-256",
    algorithm: "sha256",
    notBeforeDate: new Date(Date.now() - 60_000),
    notAfterDate: new Date(Date.now() + 86_400_000),
    extensions: [
      { name: "basicConstraints", cA: true },
      { name: "keyUsage", digitalSignature: true, keyCertSign: true },
      { name: "extKeyUsage", serverAuth: true },
      { name: "subjectAltName", altNames: [{ type: 2, value: "localhost" }, { type: 7, ip: "127.0.0.1" }] },
    ],
  });
  const caFile = join(dir, "issuer-ca.pem");
  writeFileSync(caFile, tls.cert);

  let handler: (req: IncomingMessage, res: ServerResponse) => void = (_req, res) => res.writeHead(503).end();
  const server = createServer({ cert: tls.cert, key: tls.private }, (req, res) => handler(req, res));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const issuer = `https://127.0.0.1:${(server.address() as { port: number }).port}`;
  const byId = new Map(clients.map((c) => [c.id, c]));
  let keys: JWK[] = [signingKey()];

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
          defaultResource: () => `urn:${AUDIENCE}`,
          useGrantedResource: () => true,
          getResourceServerInfo: (_ctx, indicator, client) => {
            const ttl = byId.get(client.clientId)?.ttlSeconds ?? 600;
            if (indicator === `urn:${AUDIENCE}`) return { audience: AUDIENCE, scope: "connect", accessTokenFormat: "jwt", accessTokenTTL: ttl };
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
    caFile,
    rotateKeys() {
      keys = [signingKey(), ...keys];
      build();
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

function signingKey(): JWK {
  const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  return { ...(privateKey.export({ format: "jwk" }) as JWK), kid: randomUUID(), alg: "RS256", use: "sig" };
}
