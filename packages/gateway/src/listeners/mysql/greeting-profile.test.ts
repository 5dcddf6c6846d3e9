import { Capability, encodeDialResult, decodeDialResult } from "@gatehouse/protocols/mysql";
import { describe, expect, it } from "vitest";
import { GreetingProfiles } from "./greeting-profile.js";

const maria = decodeDialResult(
  encodeDialResult({
    serverVersion: "5.5.5-10.11.19-MariaDB",
    serverCapabilities: 0xf7fe_fffe & ~Capability.CLIENT_DEPRECATE_EOF,
    serverMariadbCapabilities: 0x1d,
    characterSet: 45,
    capabilities: 0,
    mariadbCapabilities: 0,
    statusFlags: 2,
    connectionId: 9,
    authPlugin: "mysql_native_password",
    tls: false,
  }),
);

describe("greeting profiles", () => {
  it("before any dial: the configured version and a conservative set that never claims compression or TLS", () => {
    const greeting = new GreetingProfiles().greeting(["a"], "8.0.36-gatehouse");
    expect(greeting.serverVersion).toBe("8.0.36-gatehouse");
    expect(greeting.capabilities & Capability.CLIENT_COMPRESS).toBe(0);
    expect(greeting.capabilities & Capability.CLIENT_SSL).toBe(0);
    expect(greeting.capabilities & Capability.CLIENT_CONNECT_WITH_DB).not.toBe(0);
  });

  it("the known resources' version when they agree; the fallback when they differ; capabilities conservative until all are known", () => {
    const profiles = new GreetingProfiles();
    profiles.learn("a", maria);
    expect(profiles.greeting(["a"], "fallback").serverVersion).toBe("5.5.5-10.11.19-MariaDB");
    // "b" not known yet: the version "a" showed, capabilities within the conservative set and what "a" has.
    const partial = profiles.greeting(["a", "b"], "fallback");
    expect(partial.serverVersion).toBe("5.5.5-10.11.19-MariaDB");
    expect(partial.capabilities & Capability.CLIENT_FOUND_ROWS).not.toBe(0);
    expect(partial.capabilities & Capability.CLIENT_SESSION_TRACK).toBe(0);
    expect(profiles.greeting(["a"], "fallback").capabilities & Capability.CLIENT_SESSION_TRACK).not.toBe(0);
    profiles.learn("b", { ...maria, serverVersion: "8.0.36", serverCapabilities: maria.serverCapabilities | Capability.CLIENT_DEPRECATE_EOF });
    const mixed = profiles.greeting(["a", "b"], "fallback");
    expect(mixed.serverVersion).toBe("fallback");
    expect(mixed.capabilities & Capability.CLIENT_DEPRECATE_EOF).toBe(0);
    expect(mixed.capabilities & Capability.CLIENT_COMPRESS).toBe(0);
    expect(mixed.capabilities & Capability.CLIENT_QUERY_ATTRIBUTES).toBe(0);
  });
});
