import { describe, expect, it } from "vitest";
import { loginNames } from "./login-names.js";

describe("mysql login names", () => {
  it("without `#`: the user is the identity, the database the connection", () => {
    expect(loginNames("agent", "app")).toEqual({ identity: "agent", connection: "app", database: undefined });
    expect(loginNames("agent", undefined)).toEqual({ identity: "agent", connection: undefined, database: undefined });
  });

  it("IDENTITY#CONNECTION: the database, if any, is the resource's initial database", () => {
    expect(loginNames("agent#app", undefined)).toEqual({ identity: "agent", connection: "app", database: undefined });
    expect(loginNames("agent#app", "shop")).toEqual({ identity: "agent", connection: "app", database: "shop" });
  });

  it("splits at the last `#`, so identities may hold `@` and `#`", () => {
    expect(loginNames("ann@example.com#app", undefined)).toEqual({ identity: "ann@example.com", connection: "app", database: undefined });
    expect(loginNames("team#1#app", "x")).toEqual({ identity: "team#1", connection: "app", database: "x" });
  });

  it("an empty part stays empty (refused later as an unknown connection or a failed login), never falls back", () => {
    expect(loginNames("agent#", "app")).toEqual({ identity: "agent", connection: "", database: "app" });
    expect(loginNames("#app", undefined)).toEqual({ identity: "", connection: "app", database: undefined });
  });
});
