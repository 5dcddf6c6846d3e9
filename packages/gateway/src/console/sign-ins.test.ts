import { mkdtempSync, rmSync, statSync } from "node:fs";
import type { IncomingMessage } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ApiError } from "../api/json.js";
import { scopeRequest } from "./record-scope.js";
import { ADMIN_VIEWER, consoleCookieKey, cookie, COOKIE_KEY_FILE, csrfSafe, REVOKED_FILE, setCookie, SignIns, type Viewer } from "./sign-ins.js";

const request = (headers: Record<string, string>, method = "GET") => ({ headers, method }) as unknown as IncomingMessage;

describe("console sign-ins", () => {
  it("last console.sessionTtlMinutes on the injected clock, and end at sign-out", () => {
    let now = 1_000_000_000_000;
    const signIns = new SignIns(Buffer.alloc(32, 7), () => 60_000, () => now);
    const alice: Viewer = { name: "alice", method: "oidc", auditor: false, groups: [] };
    const id = signIns.create(alice);
    const withCookie = request({ cookie: `other=1; gatehouse_console=${id}` });
    expect(signIns.viewerOf(withCookie)).toEqual(alice);
    now += 59_999_000;
    expect(signIns.viewerOf(withCookie)).toEqual(alice);
    now += 1_000;
    expect(signIns.viewerOf(withCookie)).toBeUndefined();
    const again = signIns.create(alice);
    signIns.end(request({ cookie: `gatehouse_console=${again}` }));
    expect(signIns.viewerOf(request({ cookie: `gatehouse_console=${again}` }))).toBeUndefined();
    expect(signIns.viewerOf(request({ cookie: "gatehouse_console=made-up" }))).toBeUndefined();
  });

  it("are signed: another key, an edited claim or a made-up cookie is nobody", () => {
    const now = () => 1_000_000_000_000;
    const signIns = new SignIns(Buffer.alloc(32, 1), () => 60_000, now);
    const alice: Viewer = { name: "alice", method: "oidc", auditor: false, groups: ["dev"] };
    const value = signIns.create(alice);
    // Another process of the same gateway (same key) takes it; a gateway with another key does not.
    expect(new SignIns(Buffer.alloc(32, 1), () => 60_000, now).viewerOf(request({ cookie: `gatehouse_console=${value}` }))).toEqual(alice);
    expect(new SignIns(Buffer.alloc(32, 2), () => 60_000, now).viewerOf(request({ cookie: `gatehouse_console=${value}` }))).toBeUndefined();
    const [, payload, mac] = value.split(".");
    const claims = JSON.parse(Buffer.from(payload!, "base64url").toString("utf8")) as Record<string, unknown>;
    const forged = Buffer.from(JSON.stringify({ ...claims, a: true, n: "mallory" })).toString("base64url");
    expect(signIns.viewerOf(request({ cookie: `gatehouse_console=v1.${forged}.${mac}` }))).toBeUndefined();
  });

  it("a sign-out is refused by every process sharing the data directory, and after a restart", () => {
    const dir = mkdtempSync(join(tmpdir(), "gatehouse-console-revoked-"));
    try {
      const now = () => 1_000_000_000_000;
      const file = join(dir, REVOKED_FILE);
      const worker0 = new SignIns(Buffer.alloc(32, 3), () => 60_000, now, file);
      const worker1 = new SignIns(Buffer.alloc(32, 3), () => 60_000, now, file);
      const alice: Viewer = { name: "alice", method: "oidc", auditor: false, groups: [] };
      const value = worker0.create(alice);
      const bob = worker0.create({ ...alice, name: "bob" });
      const withCookie = request({ cookie: `gatehouse_console=${value}` });
      expect(worker1.viewerOf(withCookie)).toEqual(alice);
      worker0.end(withCookie);
      expect(worker0.viewerOf(withCookie)).toBeUndefined();
      expect(worker1.viewerOf(withCookie)).toBeUndefined();
      expect(new SignIns(Buffer.alloc(32, 3), () => 60_000, now, file).viewerOf(withCookie)).toBeUndefined();
      // Only that sign-in: another one goes on.
      expect(worker1.viewerOf(request({ cookie: `gatehouse_console=${bob}` }))?.name).toBe("bob");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("share one key per data directory, made once however many workers start together", () => {
    const dir = mkdtempSync(join(tmpdir(), "gatehouse-console-key-"));
    try {
      const keys = Array.from({ length: 5 }, () => consoleCookieKey(dir));
      expect(keys[0]!.length).toBe(32);
      for (const key of keys) expect(key.equals(keys[0]!)).toBe(true);
      expect(statSync(join(dir, COOKIE_KEY_FILE)).mode & 0o777).toBe(0o600);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("cookies are HttpOnly, SameSite and Secure over TLS", () => {
    expect(setCookie("a", "b", { secure: true, sameSite: "Strict", path: "/", maxAge: 60 })).toBe("a=b; Path=/; HttpOnly; SameSite=Strict; Max-Age=60; Secure");
    expect(cookie(request({ cookie: "x=1;  a = b ; c=d" }), "a")).toBe("b");
  });

  it("a cookie request that changes anything needs the console's header", () => {
    expect(csrfSafe(request({}, "GET"))).toBe(true);
    expect(csrfSafe(request({}, "POST"))).toBe(false);
    expect(csrfSafe(request({ "x-gatehouse-console": "1" }, "DELETE"))).toBe(true);
  });
});

describe("record scope", () => {
  const store = {
    sessions: {
      get: async (id: string) => (id === "s-bob" ? { session: { identity: { name: "bob" } }, events: [] } : id === "s-alice" ? { session: { identity: { name: "alice" } }, events: [] } : null),
    },
  } as unknown as Parameters<typeof scopeRequest>[3];
  const alice: Viewer = { name: "alice", method: "oidc", auditor: false, groups: ["dev"] };
  const carol: Viewer = { name: "carol", method: "oidc", auditor: true, groups: ["auditors"] };
  const code = async (viewer: Viewer, path: string, method = "GET") => {
    try {
      await scopeRequest(viewer, method, new URL(path, "http://gw"), store);
      return "ok";
    } catch (error) {
      return (error as ApiError).code;
    }
  };

  it("narrows a non-auditor's lists to their identity and hides other identities' sessions", async () => {
    const url = new URL("http://gw/api/v1/sessions?protocol=postgres");
    await scopeRequest(alice, "GET", url, store);
    expect(url.searchParams.get("identity")).toBe("alice");
    expect(await code(alice, "/api/v1/events?identity=bob")).toBe("forbidden");
    expect(await code(alice, "/api/v1/sessions/s-alice/verify")).toBe("ok");
    for (const suffix of ["", "/live", "/verify", "/chunks", "/streams/1"]) expect(await code(alice, `/api/v1/sessions/s-bob${suffix}`)).toBe("not_found");
    expect(await code(alice, "/api/v1/sessions/nope")).toBe("not_found");
    expect(await code(alice, "/api/v1/evidence")).toBe("forbidden");
    expect(await code(alice, "/api/v1/connectors")).toBe("ok");
  });

  it("lets an auditor read every session but change nothing, and the admin do anything", async () => {
    expect(await code(carol, "/api/v1/sessions/s-bob")).toBe("ok");
    expect(await code(carol, "/api/v1/evidence")).toBe("ok");
    expect(await code(carol, "/api/v1/keys")).toBe("forbidden");
    expect(await code(carol, "/api/v1/keys", "POST")).toBe("forbidden");
    expect(await code(ADMIN_VIEWER, "/api/v1/keys", "POST")).toBe("ok");
  });
});
