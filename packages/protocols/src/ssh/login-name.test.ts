import { describe, expect, it } from "vitest";
import { parseSshLoginName } from "./login-name.js";

describe("ssh login names", () => {
  it("splits IDENTITY@CONNECTION at the last @", () => {
    expect(parseSshLoginName("copilot-agent@web1")).toEqual({ ok: true, identity: "copilot-agent", connection: "web1" });
    expect(parseSshLoginName("alice@example.com@web1")).toEqual({ ok: true, identity: "alice@example.com", connection: "web1" });
  });

  it("splits IDENTITY#CONNECTION at the last #, even with @ in the identity", () => {
    expect(parseSshLoginName("agent#db-1")).toEqual({ ok: true, identity: "agent", connection: "db-1" });
    expect(parseSshLoginName("alice@example.com#web1")).toEqual({ ok: true, identity: "alice@example.com", connection: "web1" });
  });

  it("refuses a name without a connection, saying how to write one", () => {
    const bare = parseSshLoginName("agent");
    expect(bare.ok).toBe(false);
    expect(!bare.ok && bare.message).toMatch(/IDENTITY@CONNECTION/);
    expect(parseSshLoginName("agent@").ok).toBe(false);
    expect(parseSshLoginName("@web1").ok).toBe(false);
    expect(parseSshLoginName("").ok).toBe(false);
  });
});
