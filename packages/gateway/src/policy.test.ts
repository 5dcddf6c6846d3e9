import { describe, expect, it } from "vitest";
import { validateConfig } from "./config/load.js";
import { decide, Policy } from "./policy.js";

const NOW = Date.parse("2026-06-01T12:00:00Z") * 1000;

const raw = {
  identity: { disabled: ["agent-gone"] },
  connectors: [{ name: "dc1", tokenSha256: "b".repeat(64) }],
  connections: [
    {
      name: "app",
      protocol: "postgres",
      connector: "dc1",
      target: { host: "db", port: 5432 },
      allow: [{ identity: "agent-1" }, { group: "sre" }, { identity: "agent-gone" }, { identity: "ci@example.com" }],
    },
    { name: "closed", protocol: "postgres", connector: "dc1", target: { host: "db", port: 5432 } },
    {
      name: "temporary",
      protocol: "postgres",
      connector: "dc1",
      target: { host: "db", port: 5432 },
      allow: [
        { identity: "contractor", until: "2026-05-31T23:59:59Z" },
        { identity: "intern", until: "2026-06-01T14:00:00+02:00" },
        { identity: "visitor", until: "2026-12-31T00:00:00Z" },
        { group: "oncall", until: "2026-01-01T00:00:00Z" },
        { group: "oncall-now", until: "2026-06-02T00:00:00Z" },
        { identity: "twice", until: "2026-01-01T00:00:00Z" },
        { group: "everyone" },
      ],
    },
  ],
};
const config = validateConfig(raw);
const [app, closed, temporary] = config.connections;

describe("policy", () => {
  it("allows a named identity and members of a named group, and says which entry did", () => {
    expect(decide(config, app!, { name: "agent-1" }, NOW)).toEqual({ allowed: true, entry: { identity: "agent-1" } });
    expect(decide(config, app!, { name: "someone", groups: ["dev", "sre"] }, NOW)).toEqual({ allowed: true, entry: { group: "sre" } });
    expect(decide(config, app!, { name: "ci@example.com" }, NOW).allowed).toBe(true);
  });

  it("denies everyone else, and everyone on a connection with no allow list", () => {
    expect(decide(config, app!, { name: "agent-2", groups: ["dev"] }, NOW)).toEqual({
      allowed: false,
      reason: "not_allowed",
      message: 'identity "agent-2" is not allowed to use connection "app"',
    });
    // A group's name is not an identity's, nor the other way round.
    expect(decide(config, app!, { name: "sre" }, NOW).allowed).toBe(false);
    expect(decide(config, app!, { name: "x", groups: ["agent-1"] }, NOW).allowed).toBe(false);
    expect(decide(config, closed!, { name: "agent-1", groups: ["sre"] }, NOW)).toMatchObject({ allowed: false, reason: "not_allowed" });
  });

  it("denies a disabled identity even where an entry names it or its group", () => {
    expect(decide(config, app!, { name: "agent-gone" }, NOW)).toEqual({ allowed: false, reason: "identity_disabled", message: 'identity "agent-gone" is disabled' });
    expect(decide(config, app!, { name: "agent-gone", groups: ["sre"] }, NOW)).toMatchObject({ allowed: false, reason: "identity_disabled" });
  });

  it("honours until: an entry grants access up to (not at) its instant, zones included", () => {
    expect(decide(config, temporary!, { name: "contractor" }, NOW)).toEqual({
      allowed: false,
      reason: "grant_expired",
      message: 'identity "contractor" is not allowed to use connection "temporary" (its access ended at 2026-05-31T23:59:59Z)',
    });
    // 14:00+02:00 is 12:00Z: NOW itself, so the entry has just ended.
    expect(decide(config, temporary!, { name: "intern" }, NOW)).toMatchObject({ allowed: false, reason: "grant_expired" });
    expect(decide(config, temporary!, { name: "intern" }, NOW - 1).allowed).toBe(true);
    expect(decide(config, temporary!, { name: "visitor" }, NOW)).toEqual({ allowed: true, entry: { identity: "visitor", until: "2026-12-31T00:00:00Z" } });
    expect(decide(config, temporary!, { name: "x", groups: ["oncall"] }, NOW)).toMatchObject({ allowed: false, reason: "grant_expired" });
    expect(decide(config, temporary!, { name: "x", groups: ["oncall", "oncall-now"] }, NOW)).toMatchObject({ allowed: true, entry: { group: "oncall-now" } });
  });

  it("lets a live entry win over an expired one for the same identity", () => {
    expect(decide(config, temporary!, { name: "twice", groups: ["everyone"] }, NOW)).toEqual({ allowed: true, entry: { group: "everyone" } });
  });

  it("Policy decides against the config and clock it is given now", () => {
    let current = config;
    let now = NOW;
    const policy = new Policy(() => current, () => now);
    expect(policy.decide(app!, { name: "agent-9" }).allowed).toBe(false);
    current = validateConfig({ ...raw, identity: { disabled: ["agent-1"] } });
    expect(policy.decide(app!, { name: "agent-1" })).toMatchObject({ allowed: false, reason: "identity_disabled" });
    now = Date.parse("2027-01-01T00:00:00Z") * 1000;
    expect(policy.decide(temporary!, { name: "visitor" })).toMatchObject({ allowed: false, reason: "grant_expired" });
  });
});

