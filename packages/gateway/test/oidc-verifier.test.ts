import { PassThrough } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "../src/logger.js";
import { decodeJwt } from "jose";
import { validateConfig } from "../src/config/load.js";
import type { OidcConfig } from "../src/config/schema.js";
import { OidcVerifier, readOidcCa } from "../src/identity/oidc-verifier.js";
import { AUDIENCE, OTHER_RESOURCE, startTestIssuer, type TestIssuer } from "./support/oidc-issuer.js";

// The verifier against a real OpenID provider (oidc-provider over HTTPS with
// its own CA): discovery, the JWKS and its refresh on rotation, and every
// reason a token is refused. The gateway's clock is injected, so expiry is
// tested by moving it rather than by waiting.

let issuer: TestIssuer;
let other: TestIssuer;

beforeAll(async () => {
  [issuer, other] = await Promise.all([
    startTestIssuer([
      { id: "agent-1", secret: "agent-1-secret", groups: ["sre", "db-readers"] },
      { id: "agent-2", secret: "agent-2-secret" },
    ]),
    startTestIssuer([{ id: "agent-1", secret: "elsewhere" }]),
  ]);
});

afterAll(async () => {
  await Promise.all([issuer?.close(), other?.close()]);
});

function settings(overrides: Partial<OidcConfig> = {}): OidcConfig {
  const config = validateConfig({ identity: { oidc: { issuer: issuer.issuer, audience: AUDIENCE, ca: issuer.caFile, jwksRefreshCooldownMs: 0, ...overrides } } });
  return config.identity.oidc!;
}

function verifier(options: { settings?: OidcConfig; nowMs?: () => number; logger?: ReturnType<typeof createLogger> } = {}): OidcVerifier {
  const s = options.settings ?? settings();
  const now = options.nowMs ?? Date.now;
  return new OidcVerifier(s, { clock: () => now() * 1000, ca: readOidcCa(s)!, ...(options.logger ? { logger: options.logger } : {}) });
}

/** A debug-level logger whose JSON lines are kept in `lines`. */
function capturingLogger() {
  const lines: Array<{ level: number; msg: string; [key: string]: unknown }> = [];
  const out = new PassThrough();
  out.setEncoding("utf8").on("data", (text: string) => {
    for (const line of text.split("\n").filter(Boolean)) lines.push(JSON.parse(line) as (typeof lines)[number]);
  });
  return { logger: createLogger("debug", out), lines };
}

describe("OIDC access token verification", () => {
  it("accepts a JWT access token and maps sub and groups", async () => {
    const token = await issuer.token("agent-1");
    const result = await verifier().verify(token);
    expect(result).toEqual({
      ok: true,
      token: { name: "agent-1", subject: "agent-1", issuer: issuer.issuer, groups: ["sre", "db-readers"], expiresUs: decodeJwt(token).exp! * 1_000_000 },
    });
  });

  it("names the identity by the configured claim, with no groups when the token has none", async () => {
    const result = await verifier({ settings: settings({ nameClaim: "client_id" }) }).verify(await issuer.token("agent-2"));
    expect(result).toMatchObject({ ok: true, token: { name: "agent-2", groups: [] } });
  });

  it("refuses an expired token (by the injected clock), within the skew still accepting it", async () => {
    const token = await issuer.token("agent-1");
    const exp = decodeJwt(token).exp! * 1000;
    const skewMs = 60_000;
    expect((await verifier({ nowMs: () => exp + skewMs - 1000 }).verify(token)).ok).toBe(true);
    const refused = await verifier({ nowMs: () => exp + skewMs + 1000 }).verify(token);
    expect(refused).toMatchObject({ ok: false, reason: "expired", claimed: { issuer: issuer.issuer, subject: "agent-1", expiresAt: new Date(exp).toISOString() } });
    // With no skew allowed, one second past exp is too late.
    expect(await verifier({ settings: settings({ clockSkewSeconds: 0 }), nowMs: () => exp + 1000 }).verify(token)).toMatchObject({ ok: false, reason: "expired" });
  });

  it("refuses a token not yet valid (nbf ahead, past the skew)", async () => {
    const now = Math.floor(Date.now() / 1000);
    const token = await issuer.sign({ iss: issuer.issuer, aud: AUDIENCE, sub: "agent-1", iat: now, nbf: now + 600, exp: now + 1200 });
    expect(await verifier().verify(token)).toMatchObject({ ok: false, reason: "not_yet_valid" });
    expect((await verifier({ nowMs: () => (now + 590) * 1000 }).verify(token)).ok).toBe(true);
  });

  it("refuses a token for another audience", async () => {
    const token = await issuer.token("agent-1", { resource: OTHER_RESOURCE });
    expect(decodeJwt(token).aud).toBe("other-api");
    expect(await verifier().verify(token)).toMatchObject({ ok: false, reason: "wrong_audience", claimed: { audience: "other-api", subject: "agent-1" } });
    // ...which is accepted where that audience is the configured one (or one of them).
    expect((await verifier({ settings: settings({ audience: ["other-api", AUDIENCE] }) }).verify(token)).ok).toBe(true);
  });

  it("refuses a tampered token: claims changed under the issuer's signature", async () => {
    const token = await issuer.token("agent-2");
    const [header, payload, signature] = token.split(".") as [string, string, string];
    const claims = JSON.parse(Buffer.from(payload, "base64url").toString()) as Record<string, unknown>;
    const forged = `${header}.${Buffer.from(JSON.stringify({ ...claims, sub: "agent-1", groups: ["admins"] })).toString("base64url")}.${signature}`;
    expect(await verifier().verify(forged)).toMatchObject({ ok: false, reason: "bad_signature", claimed: { subject: "agent-1" } });
    // A flipped bit in the signature itself.
    const bit = signature[10] === "A" ? "B" : "A";
    expect(await verifier().verify(`${header}.${payload}.${signature.slice(0, 10)}${bit}${signature.slice(11)}`)).toMatchObject({ ok: false, reason: "bad_signature" });
  });

  it("refuses a token from another issuer, and one signed by another issuer's key under this issuer's name", async () => {
    const foreign = await other.token("agent-1");
    expect(await verifier().verify(foreign)).toMatchObject({ ok: false, reason: "unknown_issuer", claimed: { issuer: other.issuer } });
    const now = Math.floor(Date.now() / 1000);
    const impostor = await other.sign({ iss: issuer.issuer, aud: AUDIENCE, sub: "agent-1", iat: now, exp: now + 600 }, { kid: issuer.kids()[0]! });
    expect(await verifier().verify(impostor)).toMatchObject({ ok: false, reason: "bad_signature" });
  });

  it("refuses what is not a signed JWT with the issuer's algorithms", async () => {
    const now = Math.floor(Date.now() / 1000);
    const claims = Buffer.from(JSON.stringify({ iss: issuer.issuer, aud: AUDIENCE, sub: "agent-1", exp: now + 600 })).toString("base64url");
    const none = `${Buffer.from(JSON.stringify({ alg: "none" })).toString("base64url")}.${claims}.`;
    expect(await verifier().verify(none)).toMatchObject({ ok: false, reason: "unsupported_algorithm" });
    const hmac = `${Buffer.from(JSON.stringify({ alg: "HS256", kid: issuer.kids()[0] })).toString("base64url")}.${claims}.c2ln`;
    expect(await verifier().verify(hmac)).toMatchObject({ ok: false, reason: "unsupported_algorithm" });
    expect(await verifier().verify("eyJub3Q.a.jwt")).toMatchObject({ ok: false, reason: "malformed" });
  });

  it("refuses a token without exp, or without the name claim", async () => {
    const now = Math.floor(Date.now() / 1000);
    expect(await verifier().verify(await issuer.sign({ iss: issuer.issuer, aud: AUDIENCE, sub: "agent-1", iat: now }))).toMatchObject({ ok: false, reason: "invalid_claims" });
    const noName = await issuer.sign({ iss: issuer.issuer, aud: AUDIENCE, iat: now, exp: now + 600 });
    expect(await verifier().verify(noName)).toMatchObject({ ok: false, reason: "invalid_claims", message: 'the token has no string claim "sub" to name the identity' });
  });

  it("follows a key rotation without a restart: a new kid refetches the JWKS once", async () => {
    const v = verifier();
    expect((await v.verify(await issuer.token("agent-1"))).ok).toBe(true);
    const fetchesBefore = issuer.jwksFetches;
    expect((await v.verify(await issuer.token("agent-1"))).ok).toBe(true);
    expect(issuer.jwksFetches).toBe(fetchesBefore); // cached

    const oldToken = await issuer.token("agent-1");
    await issuer.rotateKeys();
    const newToken = await issuer.token("agent-1");
    expect(decodeJwt(newToken).sub).toBe("agent-1");
    expect(await v.verify(newToken)).toMatchObject({ ok: true, token: { name: "agent-1" } });
    expect(issuer.jwksFetches).toBe(fetchesBefore + 1);
    // The old key is still published: tokens it signed stay good until they expire.
    expect((await v.verify(oldToken)).ok).toBe(true);

    // Once the issuer retires the old key, its tokens are refused after the next refetch.
    await issuer.rotateKeys({ retireOld: true });
    expect((await v.verify(await issuer.token("agent-1"))).ok).toBe(true);
    expect(await v.verify(oldToken)).toMatchObject({ ok: false, reason: "unknown_key" });
  });

  it("does not refetch the JWKS for every unknown kid within the cooldown, and logs refreshes and throttled ones at debug", async () => {
    const { logger, lines } = capturingLogger();
    const v = verifier({ settings: settings({ jwksRefreshCooldownMs: 60_000 }), logger });
    expect((await v.verify(await issuer.token("agent-1"))).ok).toBe(true);
    const fetches = issuer.jwksFetches;
    const now = Math.floor(Date.now() / 1000);
    for (let i = 0; i < 5; i++) {
      const token = await issuer.sign({ iss: issuer.issuer, aud: AUDIENCE, sub: "x", iat: now, exp: now + 60 }, { kid: `made-up-${i}` });
      expect(await v.verify(token)).toMatchObject({ ok: false, reason: "unknown_key" });
    }
    expect(issuer.jwksFetches).toBe(fetches);
    await new Promise((r) => setImmediate(r));
    const refreshed = lines.filter((l) => l.msg === "oidc key set refreshed");
    expect(refreshed).toEqual([expect.objectContaining({ level: 20, issuer: issuer.issuer, status: 200 })]);
    const throttled = lines.filter((l) => l.msg.startsWith("oidc key set refresh throttled"));
    expect(throttled.map((l) => [l.level, l.kid, l.cooldownMs])).toEqual([0, 1, 2, 3, 4].map((i) => [20, `made-up-${i}`, 60_000]));
  });

  it("without a cooldown, an unknown kid refreshes the key set (logged at debug) and nothing is throttled", async () => {
    const { logger, lines } = capturingLogger();
    const v = verifier({ logger });
    expect((await v.verify(await issuer.token("agent-1"))).ok).toBe(true);
    const now = Math.floor(Date.now() / 1000);
    const token = await issuer.sign({ iss: issuer.issuer, aud: AUDIENCE, sub: "x", iat: now, exp: now + 60 }, { kid: "made-up" });
    expect(await v.verify(token)).toMatchObject({ ok: false, reason: "unknown_key" });
    await new Promise((r) => setImmediate(r));
    expect(lines.filter((l) => l.msg === "oidc key set refreshed")).toHaveLength(2);
    expect(lines.some((l) => l.msg.startsWith("oidc key set refresh throttled"))).toBe(false);
  });

  it("says when the issuer cannot be reached, or is not trusted", async () => {
    const gone = await startTestIssuer([{ id: "a", secret: "s" }]);
    const token = await gone.token("a");
    const s = validateConfig({ identity: { oidc: { issuer: gone.issuer, audience: AUDIENCE, ca: gone.caFile, requestTimeoutMs: 1000 } } }).identity.oidc!;
    const ca = readOidcCa(s)!;
    await gone.close();
    expect(await new OidcVerifier(s, { clock: () => Date.now() * 1000, ca }).verify(token)).toMatchObject({ ok: false, reason: "issuer_unreachable" });

    // Without its CA, the issuer's self-signed certificate is not trusted.
    const untrusted = new OidcVerifier(settings({ ca: undefined }), { clock: () => Date.now() * 1000 });
    const refused = await untrusted.verify(await issuer.token("agent-1"));
    expect(refused).toMatchObject({ ok: false, reason: "issuer_unreachable" });
    expect(JSON.stringify(refused)).toMatch(/certificate/);
  });

  it("names identity.oidc.ca when the file cannot be used", () => {
    expect(() => readOidcCa(settings({ ca: "/nonexistent/ca.pem" }))).toThrow(expect.objectContaining({ code: "CONFIG_INVALID", problems: [expect.stringMatching(/^identity\.oidc\.ca: cannot use \/nonexistent\/ca\.pem/)] }));
  });
});
