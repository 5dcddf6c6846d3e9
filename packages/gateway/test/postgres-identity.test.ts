import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decodeJwt } from "jose";
import type { SessionEvent, SessionRecord } from "@gatehouse/store";
import { reloadConfig } from "../src/cli/gateway-command.js";
import { validateConfig } from "../src/config/load.js";
import { startGateway, type Gateway } from "../src/gateway.js";
import { AccessKeys } from "../src/identity/access-keys.js";
import { createLogger } from "../src/logger.js";
import { AUDIENCE, OTHER_RESOURCE, startTestIssuer, type TestIssuer } from "./support/oidc-issuer.js";

// The whole gateway in-process (embedded store, Postgres listener with its
// generated certificate) and a real OpenID provider; node-postgres connects
// with an OIDC access token as its password. No connector is running, so an
// attempt that passes authentication and policy ends "connector
// unavailable" (08006): that is how these tests see it got through. The
// e2e test (e2e/test/identity.test.ts) runs the same path to a real server.

let issuer: TestIssuer;
let other: TestIssuer;
let gateway: Gateway;
let dir: string;
let nowMs: number | undefined;
const logLines: Array<Record<string, unknown>> = [];

function rawConfig(overrides: { allowOnApp?: unknown[]; disabled?: string[] } = {}) {
  return {
    dataDir: join(dir, "data"),
    listen: { api: "127.0.0.1:0", postgres: "127.0.0.1:0" },
    identity: {
      oidc: { issuer: issuer.issuer, audience: AUDIENCE, ca: issuer.caFile, jwksRefreshCooldownMs: 0 },
      disabled: overrides.disabled ?? ["agent-banned"],
    },
    connectors: [{ name: "dc1", tokenSha256: "a".repeat(64) }],
    connections: [
      {
        name: "app",
        protocol: "postgres",
        connector: "dc1",
        target: { host: "127.0.0.1", port: 5432 },
        allow: overrides.allowOnApp ?? [{ group: "sre" }, { identity: "agent-keyed" }, { identity: "agent-banned" }],
      },
      {
        name: "temp",
        protocol: "postgres",
        connector: "dc1",
        target: { host: "127.0.0.1", port: 5432 },
        allow: [{ identity: "agent-2", until: "2026-01-01T00:00:00Z" }, { identity: "agent-3", until: "2999-01-01T00:00:00Z" }],
      },
    ],
  };
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "gatehouse-identity-"));
  [issuer, other] = await Promise.all([
    startTestIssuer([
      { id: "agent-1", secret: "s1", groups: ["sre"] },
      { id: "agent-2", secret: "s2", groups: ["dev"] },
      { id: "agent-3", secret: "s3" },
      { id: "agent-banned", secret: "s4", groups: ["sre"] },
    ]),
    startTestIssuer([{ id: "agent-1", secret: "other", groups: ["sre"] }]),
  ]);
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString("utf8").split("\n").filter(Boolean)) logLines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  gateway = await startGateway(validateConfig(rawConfig()), {
    logger: createLogger("info", sink),
    clock: () => (nowMs ?? Date.now()) * 1000,
  });
});

afterAll(async () => {
  await gateway?.close();
  await Promise.all([issuer?.close(), other?.close()]);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

interface PgError extends Error {
  code?: string;
}

let attempt = 0;

/** Connects as `user` with `password`; returns the error the gateway answered with, and the application name used. */
async function connect(user: string, password: string, options: { database?: string; ssl?: boolean } = {}): Promise<{ error: PgError; application: string }> {
  const application = `identity-test-${++attempt}`;
  const client = new pg.Client({
    host: gateway.postgres!.host,
    port: gateway.postgres!.port,
    user,
    password,
    database: options.database ?? "app",
    application_name: application,
    ssl: options.ssl === false ? false : { rejectUnauthorized: false },
    connectionTimeoutMillis: 10_000,
  });
  client.on("error", () => undefined);
  try {
    await client.connect();
  } catch (error) {
    return { error: error as PgError, application };
  } finally {
    await client.end().catch(() => undefined);
  }
  throw new Error("the connection was accepted (no connector runs in this test)");
}

/** The ended session of one attempt, with its events. */
async function sessionOf(application: string): Promise<SessionRecord & { events: SessionEvent[] }> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const found = (await gateway.store.sessions.list({ limit: 1000 })).find((s) => s.clientApplication === application && s.endedUs !== null);
    if (found) {
      const full = await gateway.store.sessions.get(found.id);
      if (full && full.events.length > 0 && full.events.length >= full.session.eventCount) return { ...full.session, events: full.events };
    }
    if (Date.now() > deadline) throw new Error(`no ended session for ${application}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function refusedAuth(user: string, token: string) {
  const { error, application } = await connect(user, token);
  expect(error).toMatchObject({ code: "28P01", message: `password authentication failed for user "${user}"` });
  const recorded = await sessionOf(application);
  expect(recorded).toMatchObject({ identity: { name: user }, connection: "app", endReason: "auth_failed" });
  expect(recorded.events).toHaveLength(1);
  // The record says why, and never holds the token itself.
  expect(JSON.stringify(recorded)).not.toContain(token.split(".")[2]!);
  return recorded.events[0]!;
}

describe("Postgres with OIDC access tokens", () => {
  it("accepts a token as the password over TLS; the session names the identity, its issuer, subject and groups", async () => {
    const token = await issuer.token("agent-1");
    const { error, application } = await connect("agent-1", token);
    expect(error).toMatchObject({ code: "08006" });
    const recorded = await sessionOf(application);
    expect(recorded).toMatchObject({
      identity: { name: "agent-1", method: "oidc", issuer: issuer.issuer, subject: "agent-1", groups: ["sre"] },
      connection: "app",
      endReason: "connector_unavailable",
    });
    expect(logLines.find((l) => l.msg === "oidc issuer discovered")).toMatchObject({ issuer: issuer.issuer, jwksUri: `${issuer.issuer}/jwks` });
  });

  it("refuses a token for another identity than the user name given", async () => {
    const event = await refusedAuth("agent-2", await issuer.token("agent-1"));
    expect(event).toMatchObject({ kind: "auth_failed", outcome: "error", details: { reason: "name_mismatch", method: "oidc", tokenIdentity: "agent-1" } });
    // The same `claimed` block as every other token refusal.
    expect(event.details).toMatchObject({ claimed: { issuer: issuer.issuer, subject: "agent-1", audience: AUDIENCE, expiresAt: expect.any(String), kid: expect.any(String) } });
  });

  it("refuses an expired token (the gateway's clock moved past exp and the skew)", async () => {
    const token = await issuer.token("agent-1");
    nowMs = decodeJwt(token).exp! * 1000 + 61_000;
    try {
      const event = await refusedAuth("agent-1", token);
      expect(event.details).toMatchObject({ reason: "expired", method: "oidc", claimed: { issuer: issuer.issuer, subject: "agent-1" } });
    } finally {
      nowMs = undefined;
    }
  });

  it("refuses a wrong audience, a tampered signature and another issuer, each recorded with its reason", async () => {
    const wrongAudience = await refusedAuth("agent-1", await issuer.token("agent-1", { resource: OTHER_RESOURCE }));
    expect(wrongAudience.details).toMatchObject({ reason: "wrong_audience", claimed: { audience: "other-api" } });

    const [header, payload, signature] = (await issuer.token("agent-2")).split(".") as [string, string, string];
    const claims = JSON.parse(Buffer.from(payload, "base64url").toString()) as Record<string, unknown>;
    const forged = `${header}.${Buffer.from(JSON.stringify({ ...claims, sub: "agent-1", groups: ["sre"] })).toString("base64url")}.${signature}`;
    expect((await refusedAuth("agent-1", forged)).details).toMatchObject({ reason: "bad_signature", claimed: { subject: "agent-1" } });

    const foreign = await refusedAuth("agent-1", await other.token("agent-1"));
    expect(foreign.details).toMatchObject({ reason: "unknown_issuer", claimed: { issuer: other.issuer } });
  });

  it("accepts a token signed with a rotated key, without a restart", async () => {
    await issuer.rotateKeys();
    const token = await issuer.token("agent-1");
    expect(issuer.kids()[0]).toBe(JSON.parse(Buffer.from(token.split(".")[0]!, "base64url").toString()).kid);
    const { error, application } = await connect("agent-1", token);
    expect(error).toMatchObject({ code: "08006" });
    expect(await sessionOf(application)).toMatchObject({ identity: { name: "agent-1", method: "oidc" }, endReason: "connector_unavailable" });
  });

  it("takes no token over plaintext: the client is told tokens need TLS, the record says a token was refused for lack of it", async () => {
    const token = await issuer.token("agent-1");
    const { error, application } = await connect("agent-1", token, { ssl: false });
    expect(error).toMatchObject({ code: "28P01", message: 'password authentication failed for user "agent-1"' });
    expect((error as PgError & { hint?: string }).hint).toMatch(/OIDC access token is accepted only over TLS \(sslmode=require\)/);
    const recorded = await sessionOf(application);
    // Unauthenticated: named after what the client claimed, never as if a key had been accepted.
    expect(recorded.identity).toMatchObject({ name: "agent-1", method: null });
    expect(recorded.events[0]).toMatchObject({ kind: "auth_failed", details: { reason: "token_needs_tls", method: "scram-sha-256" } });
  });

  it("still takes access keys, over TLS and plaintext", async () => {
    const { key } = await new AccessKeys(gateway.store, () => Date.now() * 1000).create("agent-keyed");
    for (const ssl of [true, false]) {
      const { error, application } = await connect("agent-keyed", key, { ssl });
      expect(error).toMatchObject({ code: "08006" });
      expect(await sessionOf(application)).toMatchObject({ identity: { name: "agent-keyed", method: "access_key" }, endReason: "connector_unavailable" });
    }
  });
});

describe("policy for token identities", () => {
  async function denied(user: string, database: string) {
    const { error, application } = await connect(user, await issuer.token(user), { database });
    expect(error).toMatchObject({ code: "28000" });
    const recorded = await sessionOf(application);
    expect(recorded).toMatchObject({ identity: { name: user, method: "oidc" }, connection: database, endReason: "denied" });
    return { error, event: recorded.events[0]! };
  }

  it("allows by group, and denies an identity none of whose groups is allowed", async () => {
    const { error, event } = await denied("agent-2", "app");
    expect(error.message).toBe('identity "agent-2" is not allowed to use connection "app"');
    expect(event).toMatchObject({ kind: "denied", details: { code: "denied", reason: "not_allowed" } });
  });

  it("denies a disabled identity even in an allowed group", async () => {
    const { error, event } = await denied("agent-banned", "app");
    expect(error.message).toBe('identity "agent-banned" is disabled');
    expect(event.details).toMatchObject({ reason: "identity_disabled" });
  });

  it("denies once an entry's until has passed, and allows before", async () => {
    const { error, event } = await denied("agent-2", "temp");
    expect(error.message).toContain("its access ended at 2026-01-01T00:00:00Z");
    expect(event.details).toMatchObject({ reason: "grant_expired" });
    const { error: through } = await connect("agent-3", await issuer.token("agent-3"), { database: "temp" });
    expect(through).toMatchObject({ code: "08006" });
  });
});

describe("config reload", () => {
  it("applies a new policy to new sessions; a broken file is rejected and the old config stays", async () => {
    const file = join(dir, "gatehouse.yaml");
    const logger = createLogger("info", new Writable({ write: (chunk: Buffer, _e, done) => (pushLines(chunk), done()) }));
    const before = gateway.config();

    expect((await connect("agent-2", await issuer.token("agent-2"))).error).toMatchObject({ code: "28000" });

    writeFileSync(file, JSON.stringify(rawConfig({ allowOnApp: [{ group: "sre" }, { identity: "agent-2" }] })));
    expect(reloadConfig(gateway, file, logger)).toBe(true);
    expect(reloaded.at(-1)).toMatchObject({ msg: "config reloaded", restartNeeded: [] });
    expect((await connect("agent-2", await issuer.token("agent-2"))).error).toMatchObject({ code: "08006" });
    expect(gateway.config()).not.toBe(before);

    const good = gateway.config();
    writeFileSync(file, JSON.stringify({ ...rawConfig(), connections: [{ name: "app", protocol: "postgress", allow: [{ identiy: "x" }] }] }));
    expect(reloadConfig(gateway, file, logger)).toBe(false);
    const rejected = reloaded.at(-1)!;
    expect(rejected).toMatchObject({ msg: "config reload rejected; the running config stays", level: 50 });
    expect(rejected.problems).toEqual(
      expect.arrayContaining([
        'connections[0].protocol: expected one of "tcp", "postgres", "mysql", "ssh", "kubernetes"',
        "connections[0].connector: required",
        "connections[0].allow[0].identiy: unknown key",
      ]),
    );
    expect(gateway.config()).toBe(good);
    expect((await connect("agent-2", await issuer.token("agent-2"))).error).toMatchObject({ code: "08006" });

    // An unreadable CA for the issuer is caught at reload too.
    writeFileSync(file, JSON.stringify({ ...rawConfig(), identity: { oidc: { issuer: issuer.issuer, audience: AUDIENCE, ca: join(dir, "missing.pem") } } }));
    expect(reloadConfig(gateway, file, logger)).toBe(false);
    expect(reloaded.at(-1)!.problems).toEqual([expect.stringMatching(/^identity\.oidc\.ca: cannot use /)]);
    expect(gateway.config()).toBe(good);

    // Settings bound at start are named, and the rest of the new config still applies.
    writeFileSync(file, JSON.stringify({ ...rawConfig(), listen: { api: "127.0.0.1:0", postgres: "127.0.0.1:1" } }));
    expect(reloadConfig(gateway, file, logger)).toBe(true);
    expect(reloaded.filter((l) => l.msg === "config reloaded, but these settings change only when the gateway restarts").at(-1)).toMatchObject({ restartNeeded: ["listen.postgres"] });
    expect((await connect("agent-2", await issuer.token("agent-2"))).error).toMatchObject({ code: "28000" });
  });
});

const reloaded: Array<Record<string, unknown>> = [];
function pushLines(chunk: Buffer): void {
  for (const line of chunk.toString("utf8").split("\n").filter(Boolean)) reloaded.push(JSON.parse(line) as Record<string, unknown>);
}
