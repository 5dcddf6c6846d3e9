import { randomUUID } from "node:crypto";
import { rmSync } from "node:fs";
import { createServer, type Server } from "node:https";
import type { IncomingMessage, ServerResponse } from "node:http";
import { join } from "node:path";
import { exportJWK, generateKeyPair } from "jose";
import Provider, { type JWK } from "oidc-provider";
import { issuerTls } from "./issuer-tls.js";

// A real OpenID provider (panva's oidc-provider) for people signing in to the console: the
// authorization code flow with PKCE required, a public client, on HTTPS port 0 with a self-signed
// certificate (given to the gateway as identity.oidc.ca). Its login page is skipped: whoever
// `signInAs` names is logged in and consents at once, so a test drives the real redirects and token
// exchange without a form. Each account's groups are in the ID token's `groups` claim.

export interface LoginIssuer {
  issuer: string;
  caFile: string;
  ca: string;
  /** The console's client; its redirect URI is set with `setRedirectUri` once the gateway listens. */
  clientId: string;
  setRedirectUri(uri: string): void;
  /** Makes the console's client confidential with this secret (HTTP Basic at the token endpoint), or public again. */
  setClientSecret(secret: string | undefined): void;
  /** Who the next sign-in logs in as. */
  signInAs(account: string): void;
  close(): Promise<void>;
}

export async function startLoginIssuer(accounts: Record<string, { groups: string[] }>): Promise<LoginIssuer> {
  const { dir, cert, key: tlsKey, caFile } = await issuerTls("gatehouse-oidc-login-", "gatehouse test login issuer");

  let handler: (req: IncomingMessage, res: ServerResponse) => void = (_req, res) => res.writeHead(503).end();
  const server: Server = createServer({ cert, key: tlsKey }, (req, res) => handler(req, res));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  const issuer = `https://127.0.0.1:${port}`;
  const { privateKey } = await generateKeyPair("RS256", { extractable: true });
  const key = { ...(await exportJWK(privateKey)), kid: randomUUID(), alg: "RS256", use: "sig" } as JWK;
  const clientId = "gatehouse-console";
  let account = Object.keys(accounts)[0] ?? "nobody";

  let redirectUri = "http://127.0.0.1:1/ui/auth/callback";
  let clientSecret: string | undefined;
  const build = () => {
    const client = clientSecret === undefined ? { token_endpoint_auth_method: "none" as const } : { client_secret: clientSecret, token_endpoint_auth_method: "client_secret_basic" as const };
    const provider = new Provider(issuer, {
      clients: [{ client_id: clientId, grant_types: ["authorization_code"], response_types: ["code"], redirect_uris: [redirectUri], ...client }],
      jwks: { keys: [key] },
      pkce: { required: () => true },
      claims: { openid: ["sub"], profile: ["name"], email: ["email"], groups: ["groups"] },
      conformIdTokenClaims: false,
      cookies: { keys: ["gatehouse-test-cookie-key"] },
      features: { devInteractions: { enabled: false } },
      findAccount: (_ctx, sub) => ({ accountId: sub, claims: () => ({ sub, name: sub, email: `${sub}@example.com`, groups: accounts[sub]?.groups ?? [] }) }),
    });
    const callback = provider.callback();
    handler = (req, res) => {
      if (req.url?.startsWith("/interaction/")) {
        void (async () => {
          try {
            const details = await provider.interactionDetails(req, res);
            const grant = new provider.Grant({ accountId: account, clientId });
            grant.addOIDCScope(String(details.params.scope ?? "openid"));
            const grantId = await grant.save();
            await provider.interactionFinished(req, res, { login: { accountId: account }, consent: { grantId } }, { mergeWithLastSubmission: false });
          } catch (error) {
            res.writeHead(500).end(String(error));
          }
        })();
        return;
      }
      void callback(req, res);
    };
  };
  build();

  return {
    issuer,
    ca: cert,
    caFile,
    clientId,
    setRedirectUri: (uri) => {
      redirectUri = uri;
      build();
    },
    setClientSecret: (secret) => {
      clientSecret = secret;
      build();
    },
    signInAs: (name) => (account = name),
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
