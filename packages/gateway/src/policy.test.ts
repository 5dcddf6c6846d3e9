import { describe, expect, it } from "vitest";
import { validateConfig } from "./config/load.js";
import { isAllowed } from "./policy.js";

const config = validateConfig({
  connectors: [{ name: "dc1", tokenSha256: "b".repeat(64) }],
  connections: [
    { name: "app", protocol: "postgres", connector: "dc1", target: { host: "db", port: 5432 }, allow: [{ identity: "agent-1" }, { group: "sre" }] },
    { name: "closed", protocol: "postgres", connector: "dc1", target: { host: "db", port: 5432 } },
  ],
});
const [app, closed] = config.connections;

describe("policy", () => {
  it("allows a named identity and members of a named group", () => {
    expect(isAllowed(app!, { name: "agent-1" })).toBe(true);
    expect(isAllowed(app!, { name: "someone", groups: ["dev", "sre"] })).toBe(true);
  });

  it("denies everyone else, and everyone on a connection with no allow list", () => {
    expect(isAllowed(app!, { name: "agent-2", groups: ["dev"] })).toBe(false);
    expect(isAllowed(app!, { name: "sre" })).toBe(false);
    expect(isAllowed(closed!, { name: "agent-1", groups: ["sre"] })).toBe(false);
  });
});
