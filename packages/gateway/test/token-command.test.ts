import { mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { decodeJwt } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tokenCommand } from "../src/cli/token-command.js";
import { UsageError } from "../src/cli/command.js";
import { OidcVerifier, readOidcCa } from "../src/identity/oidc-verifier.js";
import { validateConfig } from "../src/config/load.js";
import { AUDIENCE, OTHER_RESOURCE, startTestIssuer, type TestIssuer } from "./support/oidc-issuer.js";

// `gatehouse token` against a real provider: what it prints is a token the
// gateway accepts; it is cached until shortly before it expires (time is
// injected), per client and request.

let issuer: TestIssuer;
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "gatehouse-token-"));
  issuer = await startTestIssuer([
    { id: "agent-1", secret: "agent-1-secret", groups: ["sre"], ttlSeconds: 300 },
    { id: "agent-2", secret: "agent-2-secret" },
  ]);
});

afterAll(async () => {
  await issuer?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function run(argv: string[], env: Record<string, string> = {}, nowMs?: number) {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = "";
  let err = "";
  stdout.on("data", (chunk: Buffer) => (out += chunk.toString()));
  stderr.on("data", (chunk: Buffer) => (err += chunk.toString()));
  const code = await tokenCommand({ argv, env, stdout, stderr }, nowMs === undefined ? {} : { now: () => nowMs });
  return { code, stdout: out, stderr: err };
}

function envFor(client: string, secret: string, cache = join(dir, "cache")) {
  return { GATEHOUSE_OIDC_ISSUER: issuer.issuer, GATEHOUSE_CLIENT_ID: client, GATEHOUSE_CLIENT_SECRET: secret, GATEHOUSE_OIDC_CA: issuer.caFile, XDG_CACHE_HOME: cache };
}

describe("gatehouse token", () => {
  it("prints an access token the gateway accepts, taking its settings from the environment", async () => {
    const out = await run([], envFor("agent-1", "agent-1-secret"));
    expect(out).toMatchObject({ code: 0, stderr: "" });
    const token = out.stdout.trim();
    expect(out.stdout).toBe(`${token}\n`);
    const settings = validateConfig({ identity: { oidc: { issuer: issuer.issuer, audience: AUDIENCE, ca: issuer.caFile } } }).identity.oidc!;
    const verified = await new OidcVerifier(settings, { clock: () => Date.now() * 1000, ca: readOidcCa(settings)! }).verify(token);
    expect(verified).toMatchObject({ ok: true, token: { name: "agent-1", groups: ["sre"] } });
  });

  it("caches the token (0600) until shortly before it expires", async () => {
    const cache = join(dir, "cache-expiry");
    const env = envFor("agent-1", "agent-1-secret", cache);
    const t0 = Date.now();
    const requests = issuer.tokenRequests;
    const first = await run(["--json"], env, t0);
    const parsed = JSON.parse(first.stdout) as { accessToken: string; expiresAt: string; cached: boolean };
    expect(parsed.cached).toBe(false);
    expect(Date.parse(parsed.expiresAt)).toBe(t0 + 300_000);
    expect(issuer.tokenRequests).toBe(requests + 1);

    const files = readdirSync(join(cache, "gatehouse", "tokens"));
    expect(files).toHaveLength(1);
    expect(statSync(join(cache, "gatehouse", "tokens", files[0]!)).mode & 0o777).toBe(0o600);
    expect(statSync(join(cache, "gatehouse", "tokens")).mode & 0o777).toBe(0o700);

    // 4 minutes later: still more than a minute left, so the same token, and no request.
    const again = await run([], env, t0 + 240_000 - 1000);
    expect(again.stdout.trim()).toBe(parsed.accessToken);
    expect(issuer.tokenRequests).toBe(requests + 1);

    // Within the last minute: a new one.
    const renewed = await run(["--json"], env, t0 + 240_000 + 1000);
    const renewedToken = JSON.parse(renewed.stdout) as { accessToken: string; cached: boolean };
    expect(renewedToken.cached).toBe(false);
    expect(renewedToken.accessToken).not.toBe(parsed.accessToken);
    expect(issuer.tokenRequests).toBe(requests + 2);
  });

  it("keeps tokens of different clients, secrets and resources apart, and --no-cache keeps nothing", async () => {
    const cache = join(dir, "cache-apart");
    const requests = issuer.tokenRequests;
    const a = (await run([], envFor("agent-1", "agent-1-secret", cache))).stdout.trim();
    const b = (await run([], envFor("agent-2", "agent-2-secret", cache))).stdout.trim();
    const other = (await run(["--resource", OTHER_RESOURCE], envFor("agent-1", "agent-1-secret", cache))).stdout.trim();
    expect(decodeJwt(a)).toMatchObject({ sub: "agent-1", aud: AUDIENCE });
    expect(decodeJwt(b)).toMatchObject({ sub: "agent-2", aud: AUDIENCE });
    expect(decodeJwt(other)).toMatchObject({ sub: "agent-1", aud: "other-api" });
    expect(readdirSync(join(cache, "gatehouse", "tokens"))).toHaveLength(3);
    expect(issuer.tokenRequests).toBe(requests + 3);

    const fresh = join(dir, "cache-none");
    await run(["--no-cache"], envFor("agent-1", "agent-1-secret", fresh));
    await run(["--no-cache"], envFor("agent-1", "agent-1-secret", fresh));
    expect(issuer.tokenRequests).toBe(requests + 5);
    expect(() => readdirSync(fresh)).toThrow();
  });

  it("takes flags over the environment", async () => {
    const out = await run(
      ["--issuer", issuer.issuer, "--client-id", "agent-2", "--client-secret", "agent-2-secret", "--ca", issuer.caFile, "--no-cache"],
      { GATEHOUSE_CLIENT_ID: "agent-1", GATEHOUSE_CLIENT_SECRET: "wrong" },
    );
    expect(out.code).toBe(0);
    expect(decodeJwt(out.stdout.trim()).sub).toBe("agent-2");
  });

  it("says what the provider said when it refuses, and exits 1", async () => {
    const out = await run(["--no-cache"], envFor("agent-1", "not-the-secret"));
    expect(out.code).toBe(1);
    expect(out.stdout).toBe("");
    expect(out.stderr).toMatch(/^gatehouse token: the provider refused: invalid_client/);
  });

  it("does not trust the provider's certificate without its CA", async () => {
    const { GATEHOUSE_OIDC_CA: _ca, ...env } = envFor("agent-1", "agent-1-secret");
    const out = await run(["--no-cache"], env);
    expect(out.code).toBe(1);
    expect(out.stderr).toMatch(/certificate/);
  });

  it("is a usage error without an issuer, a client id or a secret", async () => {
    await expect(run([], {})).rejects.toThrow(UsageError);
    await expect(run([], { GATEHOUSE_OIDC_ISSUER: issuer.issuer })).rejects.toThrow(/client id/);
    await expect(run([], { GATEHOUSE_OIDC_ISSUER: issuer.issuer, GATEHOUSE_CLIENT_ID: "x" })).rejects.toThrow(/GATEHOUSE_CLIENT_SECRET/);
    await expect(run(["--auth-method", "private_key_jwt"], envFor("a", "b"))).rejects.toThrow(/--auth-method/);
  });

  it("--exec-credential prints kubectl's ExecCredential: the OIDC token with its expiry, or IDENTITY:KEY from GATEHOUSE_ACCESS_KEY", async () => {
    const oidc = await run(["--exec-credential"], envFor("agent-1", "agent-1-secret"));
    expect(oidc).toMatchObject({ code: 0, stderr: "" });
    const credential = JSON.parse(oidc.stdout) as { apiVersion: string; kind: string; status: { token: string; expirationTimestamp: string } };
    expect(credential).toMatchObject({ apiVersion: "client.authentication.k8s.io/v1", kind: "ExecCredential" });
    expect(credential.status.token.split(".")).toHaveLength(3);
    // RFC 3339 without fractions, as kubectl parses it; in the future.
    expect(credential.status.expirationTimestamp).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    expect(Date.parse(credential.status.expirationTimestamp)).toBeGreaterThan(Date.now());

    const key = await run(["--exec-credential", "--identity", "agent"], { GATEHOUSE_ACCESS_KEY: "gh_secret" });
    expect(JSON.parse(key.stdout)).toEqual({ apiVersion: "client.authentication.k8s.io/v1", kind: "ExecCredential", status: { token: "agent:gh_secret" } });
    await expect(run(["--exec-credential"], { GATEHOUSE_ACCESS_KEY: "gh_secret" })).rejects.toThrow(/GATEHOUSE_IDENTITY/);
  });
});
