import { describe, expect, it } from "vitest";
import { claimAt, looksLikeJwt, mapClaims, MAX_GROUPS } from "./claims.js";

const defaults = { nameClaim: "sub", groupsClaim: "groups" };

describe("claim mapping", () => {
  it("names the identity by sub and lists groups from an array (the defaults)", () => {
    expect(mapClaims({ sub: "agent-1", groups: ["sre", "dev"] }, defaults)).toEqual({ ok: true, claims: { name: "agent-1", subject: "agent-1", groups: ["sre", "dev"] } });
  });

  it("uses the configured claims: client_id names it, the subject is still recorded", () => {
    const result = mapClaims({ sub: "0oa1b2c3", client_id: "copilot-agent", roles: "db-read  db-write,ops" }, { nameClaim: "client_id", groupsClaim: "roles" });
    expect(result).toEqual({ ok: true, claims: { name: "copilot-agent", subject: "0oa1b2c3", groups: ["db-read", "db-write", "ops"] } });
  });

  it("reaches into nested objects (Keycloak) and prefers a claim whose own name has dots (Auth0)", () => {
    const payload = { sub: "a", realm_access: { roles: ["admin"] }, "https://example.com/groups": ["x"], https: { "//example": 1 } };
    expect(claimAt(payload, "realm_access.roles")).toEqual(["admin"]);
    expect(claimAt(payload, "https://example.com/groups")).toEqual(["x"]);
    expect(claimAt(payload, "realm_access.missing")).toBeUndefined();
    expect(claimAt(payload, "sub.length")).toBeUndefined();
    expect(claimAt({ a: [{ b: 1 }] }, "a.0.b")).toBeUndefined();
    expect(mapClaims(payload, { nameClaim: "sub", groupsClaim: "realm_access.roles" })).toMatchObject({ ok: true, claims: { groups: ["admin"] } });
  });

  it("has no groups when the claim is missing, drops non-strings and duplicates, and caps the count", () => {
    expect(mapClaims({ sub: "a" }, defaults)).toMatchObject({ ok: true, claims: { groups: [] } });
    expect(mapClaims({ sub: "a", groups: null }, defaults)).toMatchObject({ ok: true, claims: { groups: [] } });
    expect(mapClaims({ sub: "a", groups: ["x", 3, "", "x", { y: 1 }, "z"] }, defaults)).toMatchObject({ ok: true, claims: { groups: ["x", "z"] } });
    const many = Array.from({ length: MAX_GROUPS + 10 }, (_, i) => `g${i}`);
    const mapped = mapClaims({ sub: "a", groups: many }, defaults);
    expect(mapped.ok && mapped.claims.groups).toHaveLength(MAX_GROUPS);
  });

  it("refuses a token without a usable name, or with groups of the wrong type", () => {
    expect(mapClaims({ client_id: "x" }, defaults)).toEqual({ ok: false, message: 'the token has no string claim "sub" to name the identity' });
    expect(mapClaims({ sub: "" }, defaults).ok).toBe(false);
    expect(mapClaims({ sub: 42 } as never, defaults).ok).toBe(false);
    expect(mapClaims({ sub: "a", groups: { sre: true } }, defaults)).toEqual({ ok: false, message: 'the token\'s "groups" claim is neither a list nor a string' });
    expect(mapClaims({ sub: "a", groups: 7 }, defaults).ok).toBe(false);
  });

  it("tells a JWT from an access key", () => {
    expect(looksLikeJwt("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln")).toBe(true);
    expect(looksLikeJwt("eyJhbGciOiJub25lIn0.eyJzdWIiOiJhIn0.")).toBe(true);
    expect(looksLikeJwt("ghk_3q2-7hTtwx0aV8pWk1cW1Xk6tFQmJ0m9r4YqVb2nL5c")).toBe(false);
    expect(looksLikeJwt("eyJ.only-two")).toBe(false);
    expect(looksLikeJwt("eyJa.b.c.d")).toBe(false);
    expect(looksLikeJwt("eyJa.b.c with space")).toBe(false);
    expect(looksLikeJwt("")).toBe(false);
  });
});
