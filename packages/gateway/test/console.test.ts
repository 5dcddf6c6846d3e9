import { createHash } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import type { Connector } from "@gatehouse/connector";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { validateConfig } from "../src/config/load.js";
import { GatewayError } from "../src/errors.js";
import { startGateway, type Gateway } from "../src/gateway.js";
import { AccessKeys } from "../src/identity/access-keys.js";
import { createLogger } from "../src/logger.js";
import { jsonLogSink } from "./support/json-logs.js";
import { startLoginIssuer, type LoginIssuer } from "./support/oidc-login-issuer.js";
import { createStoreDatabase, type StoreDatabase } from "./support/store-database.js";
import { startTestConnector } from "./support/test-connector.js";

// The web console's server side with a real store, real Postgres sessions through the gateway and a
// real OpenID provider: sign-in with the admin token and with OIDC (code + PKCE), the rule that a
// person who is not an auditor reads only their own sessions, the CSP of the page, the session
// verification route and the live tail (server-sent events).

const POSTGRES = { host: "127.0.0.1", port: 5432 };
const CONNECTOR_TOKEN = "console-test-token";

let dir: string;
let store: StoreDatabase | undefined;
let gateway: Gateway;
let connector: Connector | undefined;
let issuer: LoginIssuer;
let adminToken = "";
let baseConfig: Record<string, unknown>;
const keys: Record<string, string> = {};
const sessionOf: Record<string, string> = {};
const logs: Array<Record<string, unknown>> = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "gatehouse-console-"));
  issuer = await startLoginIssuer({ alice: { groups: ["dev"] }, carol: { groups: ["dev", "auditors"] } });
  store = await createStoreDatabase("gatehouse_console");
  const config = {
    dataDir: join(dir, "data"),
    store: { url: store.url(), maxConnections: 3 },
    listen: { api: "127.0.0.1:0", postgres: "127.0.0.1:0" },
    identity: { oidc: { issuer: issuer.issuer, audience: "gatehouse", ca: issuer.caFile } },
    console: { auditors: ["auditors"] },
    connectors: [{ name: "dc1", tokenSha256: createHash("sha256").update(CONNECTOR_TOKEN).digest("hex") }],
    connections: [{ name: "pg", protocol: "postgres", connector: "dc1", target: { ...POSTGRES, database: "postgres" }, credential: { user: "postgres" }, allow: [{ identity: "alice" }, { identity: "bob" }] }],
  };
  baseConfig = config;
  gateway = await startGateway(validateConfig(config), { logger: createLogger("info", jsonLogSink(logs)), onAdminTokenGenerated: (token) => (adminToken = token), processMetrics: false, env: { CONSOLE_CLIENT_SECRET: "s3cret-for-the-console" } });
  // The redirect URI names the gateway's port, known only now: a reload sets it (console settings are read per request).
  const redirectUri = `${gateway.apiUrl}/ui/auth/callback`;
  gateway.reload(validateConfig({ ...config, console: { auditors: ["auditors"], oidc: { clientId: issuer.clientId, redirectUri, scopes: ["openid", "groups"] } } }));
  issuer.setRedirectUri(redirectUri);
  const accessKeys = new AccessKeys(gateway.store, () => Date.now() * 1000);
  keys.alice = (await accessKeys.create("alice")).key;
  keys.bob = (await accessKeys.create("bob")).key;
  await accessKeys.close();
  connector = await startTestConnector(gateway.apiUrl, CONNECTOR_TOKEN, `${POSTGRES.host}:${POSTGRES.port}`, logs);
  for (const who of ["alice", "bob"]) {
    const c = client(who, `console-test-${who}`);
    await c.connect();
    await c.query(`select '${who}-was-here'`);
    await c.end();
    sessionOf[who] = (await endedSession(`console-test-${who}`)).id;
  }
}, 60_000);

afterAll(async () => {
  await connector?.stop();
  await gateway?.close({ graceMs: 0 });
  await store?.drop();
  await issuer?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function client(identity: string, application: string): pg.Client {
  const c = new pg.Client({ ...gateway.postgres!, user: identity, password: keys[identity], database: "pg", ssl: false, application_name: application, connectionTimeoutMillis: 10_000 });
  c.on("error", () => undefined);
  return c;
}

async function endedSession(application: string): Promise<{ id: string }> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const found = (await gateway.store.sessions.list({ limit: 100 })).find((s) => s.clientApplication === application && s.endedUs !== null);
    if (found) return found;
    if (Date.now() > deadline) throw new Error(`no ended session of ${application}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

/** A request to the gateway as a browser would send it, with `cookie` and extra headers. */
async function call(method: string, path: string, options: { cookie?: string; headers?: Record<string, string>; body?: unknown } = {}): Promise<Answer> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.cookie) headers.cookie = options.cookie;
  if (options.body !== undefined) headers["content-type"] = "application/json";
  const response = await fetch(`${gateway.apiUrl}${path}`, { method, headers, redirect: "manual", ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }) });
  const text = await response.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.status, headers: Object.fromEntries(response.headers), text, json };
}

const CSRF = { "x-gatehouse-console": "1" };

async function adminCookie(): Promise<string> {
  const answer = await fetch(`${gateway.apiUrl}/ui/auth/token`, { method: "POST", headers: { ...CSRF, "content-type": "application/json" }, body: JSON.stringify({ token: adminToken }) });
  expect(answer.status).toBe(200);
  return sessionCookie(answer.headers.getSetCookie());
}

function sessionCookie(setCookies: readonly string[]): string {
  const line = setCookies.find((c) => c.startsWith("gatehouse_console="));
  if (!line) throw new Error(`no console cookie in ${JSON.stringify(setCookies)}`);
  return line.split(";")[0]!;
}

/**
 * A browser's OIDC sign-in: from the console's start link through the provider (its cookies kept
 * per host, as a browser would) back to the gateway's callback; the console cookie it ends with.
 */
async function oidcSignIn(account: string): Promise<string> {
  issuer.signInAs(account);
  const jars = new Map<string, Map<string, string>>();
  let url = new URL(`${gateway.apiUrl}/ui/auth/oidc/start`);
  for (let hop = 0; hop < 20; hop++) {
    const jar = jars.get(url.host) ?? new Map<string, string>();
    jars.set(url.host, jar);
    const { status, headers } = await rawGet(url, [...jar].map(([k, v]) => `${k}=${v}`).join("; "));
    const setCookies = ([] as string[]).concat(headers["set-cookie"] ?? []);
    for (const line of setCookies) {
      const [pair = ""] = line.split(";");
      const eq = pair.indexOf("=");
      const expired = /max-age=0|expires=thu, 01 jan 1970/i.test(line);
      if (expired) jar.delete(pair.slice(0, eq));
      else jar.set(pair.slice(0, eq), pair.slice(eq + 1));
    }
    if (url.pathname === "/ui/auth/callback") {
      expect(status).toBe(302);
      expect(headers.location).toBe("/ui/#/sessions");
      const console = setCookies.find((c) => c.startsWith("gatehouse_console="))!;
      expect(console).toMatch(/HttpOnly/);
      expect(console).toMatch(/SameSite=Strict/);
      return sessionCookie(setCookies);
    }
    if (status < 300 || status >= 400 || typeof headers.location !== "string") throw new Error(`the sign-in stopped at ${url.href} with ${status}`);
    url = new URL(headers.location, url);
  }
  throw new Error("too many redirects");
}

function rawGet(url: URL, cookie: string): Promise<{ status: number; headers: Record<string, string | string[] | undefined> }> {
  return new Promise((resolve, reject) => {
    const headers = cookie ? { cookie } : {};
    const done = (res: import("node:http").IncomingMessage) => {
      res.resume();
      res.once("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers }));
    };
    const req = url.protocol === "https:" ? httpsRequest(url, { headers, ca: issuer.ca }, done) : httpRequest(url, { headers }, done);
    req.once("error", reject);
    req.end();
  });
}

describe("the page", () => {
  it("is served at /ui with a strict Content-Security-Policy and no inline script", async () => {
    const redirect = await call("GET", "/ui");
    expect(redirect.status).toBe(302);
    const page = await call("GET", "/ui/");
    expect(page.status).toBe(200);
    const csp = String(page.headers["content-security-policy"]);
    expect(csp).toContain("default-src 'self'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toMatch(/unsafe-eval/);
    expect(csp).not.toMatch(/script-src[^;]*unsafe-inline/);
    expect(page.headers["x-content-type-options"]).toBe("nosniff");
    expect(page.headers["x-frame-options"]).toBe("DENY");
    // Every script is a file from /ui/assets.
    const scripts = [...page.text.matchAll(/<script([^>]*)>([\s\S]*?)<\/script>/g)];
    expect(scripts.length).toBeGreaterThan(0);
    for (const [, attrs, body] of scripts) {
      expect(attrs).toMatch(/src="\/ui\/assets\//);
      expect(body!.trim()).toBe("");
    }
    const asset = /src="(\/ui\/assets\/[^"]+\.js)"/.exec(page.text)![1]!;
    const js = await call("GET", asset);
    expect(js.status).toBe(200);
    expect(js.headers["content-type"]).toMatch(/^text\/javascript/);
    expect((await call("GET", "/ui/../package.json")).status).toBe(404);
  });
});

describe("signed out", () => {
  it("gets no data: the API answers 401 and /ui/auth/me names nobody", async () => {
    expect((await call("GET", "/api/v1/sessions")).status).toBe(401);
    expect((await call("GET", `/api/v1/sessions/${sessionOf.alice}`)).status).toBe(401);
    expect((await call("GET", `/api/v1/sessions/${sessionOf.alice}/live`)).status).toBe(401);
    expect((await call("GET", "/api/v1/sessions", { cookie: "gatehouse_console=forged" })).status).toBe(401);
    const me = await call("GET", "/ui/auth/me");
    expect(me.json).toEqual({ me: null, oidc: true });
  });
});

describe("sign-in with the admin token", () => {
  it("refuses a wrong token and a request without the console's header", async () => {
    expect((await call("POST", "/ui/auth/token", { headers: CSRF, body: { token: "not-it" } })).status).toBe(401);
    expect((await call("POST", "/ui/auth/token", { body: { token: adminToken } })).status).toBe(403);
  });

  it("sets an HttpOnly SameSite=Strict cookie that reads everything until sign-out", async () => {
    const answer = await fetch(`${gateway.apiUrl}/ui/auth/token`, { method: "POST", headers: { ...CSRF, "content-type": "application/json" }, body: JSON.stringify({ token: adminToken }) });
    expect(answer.status).toBe(200);
    const line = answer.headers.getSetCookie().find((c) => c.startsWith("gatehouse_console="))!;
    expect(line).toMatch(/HttpOnly/);
    expect(line).toMatch(/SameSite=Strict/);
    expect(line).toMatch(/Path=\//);
    const cookie = sessionCookie(answer.headers.getSetCookie());
    const me = await call("GET", "/ui/auth/me", { cookie });
    expect(me.json.me).toMatchObject({ name: "admin", method: "admin_token", auditor: true });
    const list = await call("GET", "/api/v1/sessions", { cookie });
    expect(list.status).toBe(200);
    expect(list.json.sessions.map((s: { identity: { name: string } }) => s.identity.name).sort()).toEqual(["alice", "bob"]);
    // A change through the cookie needs the console's header (CSRF), and then works as the admin.
    expect((await call("POST", "/api/v1/keys", { cookie, body: { identity: "dave" } })).status).toBe(403);
    expect((await call("POST", "/api/v1/keys", { cookie, headers: CSRF, body: { identity: "dave" } })).status).toBe(201);
    // The bearer token keeps working beside it.
    expect((await call("GET", "/api/v1/sessions", { headers: { authorization: `Bearer ${adminToken}` } })).status).toBe(200);

    expect((await call("POST", "/ui/auth/sign-out", { cookie })).status).toBe(403);
    const out = await call("POST", "/ui/auth/sign-out", { cookie, headers: CSRF });
    expect(out.status).toBe(200);
    expect(String(out.headers["set-cookie"])).toMatch(/Max-Age=0/);
    expect((await call("GET", "/api/v1/sessions", { cookie })).status).toBe(401);
  });
});

describe("sign-in with OIDC (authorization code + PKCE)", () => {
  it("a person who is not an auditor reads only their own sessions", async () => {
    const cookie = await oidcSignIn("alice");
    const me = await call("GET", "/ui/auth/me", { cookie });
    expect(me.json.me).toEqual({ name: "alice", method: "oidc", auditor: false, groups: ["dev"] });

    const list = await call("GET", "/api/v1/sessions", { cookie });
    expect(list.status).toBe(200);
    expect(list.json.sessions.map((s: { identity: { name: string } }) => s.identity.name)).toEqual(["alice"]);
    const events = await call("GET", "/api/v1/events?q=was-here", { cookie });
    expect(events.json.events.map((e: { command: string }) => e.command)).toEqual(["select 'alice-was-here'"]);
    expect((await call("GET", "/api/v1/events?identity=bob", { cookie })).status).toBe(403);
    expect((await call("GET", "/api/v1/sessions?identity=bob", { cookie })).status).toBe(403);

    const own = await call("GET", `/api/v1/sessions/${sessionOf.alice}`, { cookie });
    expect(own.status).toBe(200);
    expect(own.json.events.some((e: { command?: string }) => e.command === "select 'alice-was-here'")).toBe(true);

    // Bob's session, by id, in every form: as if it did not exist.
    for (const suffix of ["", "/verify", "/live", "/chunks", "/streams/first", "/streams/first?format=jsonl"]) {
      const answer = await call("GET", `/api/v1/sessions/${sessionOf.bob}${suffix}`, { cookie });
      expect(answer.status, suffix).toBe(404);
      expect(answer.text).not.toContain("bob-was-here");
    }
    expect((await call("GET", "/api/v1/evidence", { cookie })).status).toBe(403);
    expect((await call("GET", "/api/v1/keys", { cookie })).status).toBe(403);
    expect((await call("POST", "/api/v1/keys", { cookie, headers: CSRF, body: { identity: "alice" } })).status).toBe(403);
    expect((await call("GET", "/api/v1/connectors", { cookie })).status).toBe(200);
  });

  it("a member of console.auditors reads every session, but not the keys", async () => {
    const cookie = await oidcSignIn("carol");
    const me = await call("GET", "/ui/auth/me", { cookie });
    expect(me.json.me).toMatchObject({ name: "carol", auditor: true });
    const list = await call("GET", "/api/v1/sessions", { cookie });
    expect(list.json.sessions.map((s: { identity: { name: string } }) => s.identity.name).sort()).toEqual(["alice", "bob"]);
    const bob = await call("GET", `/api/v1/sessions/${sessionOf.bob}`, { cookie });
    expect(bob.status).toBe(200);
    expect((await call("GET", "/api/v1/keys", { cookie })).status).toBe(403);
  });

  it("works with a confidential client too (console.oidc.clientSecret, HTTP Basic at the token endpoint)", async () => {
    const redirectUri = `${gateway.apiUrl}/ui/auth/callback`;
    const oidc = { clientId: issuer.clientId, redirectUri, scopes: ["openid", "groups"] };
    issuer.setClientSecret("s3cret-for-the-console");
    try {
      gateway.reload(validateConfig({ ...baseConfig, console: { auditors: ["auditors"], oidc: { ...oidc, clientSecret: "env:CONSOLE_CLIENT_SECRET" } } }));
      const cookie = await oidcSignIn("alice");
      expect((await call("GET", "/ui/auth/me", { cookie })).json.me).toMatchObject({ name: "alice", method: "oidc" });
    } finally {
      issuer.setClientSecret(undefined);
      gateway.reload(validateConfig({ ...baseConfig, console: { auditors: ["auditors"], oidc } }));
    }
  });

  it("refuses a callback this browser did not start", async () => {
    const answer = await call("GET", "/ui/auth/callback?code=x&state=y", { cookie: "gatehouse_console_login=z" });
    expect(answer.status).toBe(302);
    expect(String(answer.headers.location)).toMatch(/signin_error=/);
    expect(answer.headers["set-cookie"] ?? "").not.toMatch(/gatehouse_console=/);
  });
});

describe("verification on view", () => {
  it("says a session's chain and seal verify", async () => {
    const cookie = await adminCookie();
    const verdict = await call("GET", `/api/v1/sessions/${sessionOf.alice}/verify`, { cookie });
    expect(verdict.status).toBe(200);
    expect(verdict.json).toMatchObject({ ok: true, open: false });
    expect(verdict.json.keyId).toMatch(/\S/);
  });
});

describe("verification on view, of an edited record", () => {
  it("says plainly that it does not verify, and where", async () => {
    const cookie = await adminCookie();
    // Someone with the store's owner role edits a statement after the fact.
    const db = new pg.Client({ connectionString: store!.url() });
    await db.connect();
    try {
      const edited = await db.query("update events set command = 'select 1' where session_id = $1 and command like '%bob-was-here%'", [sessionOf.bob]);
      expect(edited.rowCount).toBe(1);
    } finally {
      await db.end();
    }
    const verdict = await call("GET", `/api/v1/sessions/${sessionOf.bob}/verify`, { cookie });
    expect(verdict.status).toBe(200);
    expect(verdict.json).toMatchObject({ ok: false, failure: { reason: "edited" } });
    expect(verdict.json.failure.seq).toBeGreaterThan(0);
  });
});

describe("live tail", () => {
  it("delivers a statement of an open session as a server-sent event within a second", async () => {
    const cookie = await adminCookie();
    const c = client("alice", "console-test-live");
    await c.connect();
    try {
      let open: { id: string } | undefined;
      const deadline = Date.now() + 10_000;
      while (!open) {
        open = (await gateway.store.sessions.list({ limit: 100 })).find((s) => s.clientApplication === "console-test-live" && s.endedUs === null);
        if (!open && Date.now() > deadline) throw new Error("the open session did not reach the store");
        if (!open) await new Promise((resolve) => setTimeout(resolve, 50));
      }
      const controller = new AbortController();
      const response = await fetch(`${gateway.apiUrl}/api/v1/sessions/${open.id}/live`, { headers: { cookie }, signal: controller.signal });
      expect(response.status).toBe(200);
      expect(response.headers.get("content-type")).toMatch(/^text\/event-stream/);
      const reader = response.body!.getReader();
      let text = "";
      const until = async (pattern: RegExp, ms: number) => {
        const stop = Date.now() + ms;
        while (!pattern.test(text)) {
          const left = stop - Date.now();
          if (left <= 0) throw new Error(`no ${pattern} in ${ms} ms; got ${text}`);
          const chunk = await Promise.race([reader.read(), new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), left))]);
          if (chunk?.value) text += new TextDecoder().decode(chunk.value);
          if (chunk?.done) break;
        }
      };
      await until(/event: session/, 5_000);
      const sent = Date.now();
      await c.query("select 'live-tail-42'");
      await until(/live-tail-42/, 3_000);
      expect(Date.now() - sent).toBeLessThan(1_000);
      const line = text.split("\n").find((l) => l.startsWith("data: ") && l.includes("live-tail-42"))!;
      expect(JSON.parse(line.slice(6))).toMatchObject({ kind: "query", command: "select 'live-tail-42'", outcome: "ok" });
      controller.abort();
    } finally {
      await c.end();
    }
  });
});

describe("console settings", () => {
  it("name the key of a mistake", () => {
    const problems = (raw: unknown) => {
      try {
        validateConfig(raw);
        return [];
      } catch (error) {
        return (error as GatewayError).problems ?? [];
      }
    };
    expect(problems({ console: { oidc: { clientId: "c", redirectUri: "https://gw.example/ui/auth/callback" } } })).toContain("console.oidc: needs identity.oidc (the issuer people sign in at)");
    expect(problems({ identity: { oidc: { issuer: "https://idp.example", audience: "g" } }, console: { oidc: { clientId: "c", redirectUri: "https://gw.example/elsewhere" } } }).join("\n")).toMatch(/^console\.oidc\.redirectUri: /m);
    expect(problems({ console: { auditor: ["x"] } })).toContain("console.auditor: unknown key");
    expect(problems({ console: { sessionTtlMinutes: 0 } }).join("\n")).toMatch(/^console\.sessionTtlMinutes: /m);
  });
});

