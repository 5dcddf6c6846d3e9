import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConnectorError } from "./errors.js";
import { parseConnectorSettings, type ConnectorSettings } from "./settings.js";

const PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "gatehouse-settings-"));
  await writeFile(join(dir, "token"), "file-token\n");
  await writeFile(join(dir, "ca.pem"), PEM);
  await writeFile(join(dir, "not-a-ca.pem"), "hello");
  await writeFile(
    join(dir, "connector.yaml"),
    [
      "gateway: https://gw.example.com/base/",
      "name: dc1",
      "tokenFile: token", // relative to the file
      "allow:",
      "  - db.internal:5432",
      "  - '[fd00::/8]:*'",
      "ca: ca.pem",
      "drainTimeout: 5",
      "dialTimeout: 2.5",
      "logLevel: debug",
    ].join("\n"),
  );
  await writeFile(join(dir, "unknown-key.yaml"), "gateway: https://gw\nallowList: ['*:*']\ndrainTimeout: soon\n");
  await writeFile(join(dir, "list.yaml"), "- a\n- b\n");
  await writeFile(join(dir, "mistyped.yaml"), "gateway: https://gw\nname: 5\nallow: { db: 5432 }\ndialTimeout: [1]\nca: null\n");
  await writeFile(join(dir, "spaced-token"), "sec ret\n");
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const BASE = ["--gateway", "https://gw.example.com", "--name", "dc1", "--token", "t0k", "--allow", "db:5432"];

function problemsOf(argv: string[], env: NodeJS.ProcessEnv = {}): string[] {
  try {
    parseConnectorSettings(argv, env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConnectorError);
    expect((err as ConnectorError).code).toBe("CONFIG_INVALID");
    return [...(err as ConnectorError).problems];
  }
  throw new Error("expected the settings to be refused");
}

describe("parseConnectorSettings", () => {
  it("reads flags, appends the tunnel path and applies the defaults", () => {
    const s: ConnectorSettings = parseConnectorSettings(BASE, {});
    expect(s.gatewayUrl.href).toBe("wss://gw.example.com/v1/tunnel");
    expect(s.name).toBe("dc1");
    expect(s.token).toBe("t0k");
    expect(s.allow.rules.map((r) => r.source)).toEqual(["db:5432"]);
    expect(s.gatewayCa).toBeNull();
    expect(s.drainTimeoutMs).toBe(30_000);
    expect(s.dialTimeoutMs).toBe(10_000);
    expect(s.logLevel).toBe("info");
    expect(s.backoff).toEqual({ baseMs: 500, capMs: 30_000, resetAfterMs: 60_000 });
  });

  it("reads GATEHOUSE_* variables and hands the environment on for credentials", () => {
    const env = {
      GATEHOUSE_GATEWAY_URL: "wss://gw:8443/",
      GATEHOUSE_CONNECTOR_NAME: "dc2",
      GATEHOUSE_CONNECTOR_TOKEN: "env-token",
      GATEHOUSE_ALLOW: "db:5432, 10.0.0.0/8:*",
      GATEHOUSE_DRAIN_TIMEOUT: "0",
      GATEHOUSE_LOG_LEVEL: "warn",
      APP_PW: "x",
    };
    const s = parseConnectorSettings([], env);
    expect(s.gatewayUrl.href).toBe("wss://gw:8443/v1/tunnel");
    expect(s.name).toBe("dc2");
    expect(s.token).toBe("env-token");
    expect(s.allow.rules.map((r) => r.source)).toEqual(["db:5432", "10.0.0.0/8:*"]);
    expect(s.drainTimeoutMs).toBe(0);
    expect(s.logLevel).toBe("warn");
    expect(s.credentialEnv.APP_PW).toBe("x");
  });

  it("reads the YAML config file, resolving its paths relative to it", () => {
    const s = parseConnectorSettings(["--config", join(dir, "connector.yaml")], {});
    expect(s.gatewayUrl.href).toBe("wss://gw.example.com/base/v1/tunnel");
    expect(s.token).toBe("file-token");
    expect(s.allow.rules.map((r) => r.source)).toEqual(["db.internal:5432", "[fd00::/8]:*"]);
    expect(s.gatewayCa).toBe(PEM);
    expect(s.drainTimeoutMs).toBe(5000);
    expect(s.dialTimeoutMs).toBe(2500);
    expect(s.logLevel).toBe("debug");
  });

  it("ranks flags over variables over the file, option by option", () => {
    const env = {
      GATEHOUSE_CONNECTOR_CONFIG: join(dir, "connector.yaml"),
      GATEHOUSE_CONNECTOR_NAME: "from-env",
      GATEHOUSE_ALLOW: "env-host:1",
      GATEHOUSE_CONNECTOR_TOKEN: "env-token",
    };
    const s = parseConnectorSettings(["--allow", "flag-a:1", "--allow", "flag-b:2,flag-c:3"], env);
    expect(s.name).toBe("from-env");
    expect(s.allow.rules.map((r) => r.source)).toEqual(["flag-a:1", "flag-b:2", "flag-c:3"]);
    // The env token beats the file's tokenFile: the token is one choice, decided by the highest layer.
    expect(s.token).toBe("env-token");
    expect(s.gatewayUrl.pathname).toBe("/base/v1/tunnel");
    expect(s.drainTimeoutMs).toBe(5000);
  });

  it("takes several gateways: --gateway repeated, commas in the variable, a list in the file", () => {
    const flags = parseConnectorSettings(["--gateway", "https://gw-a.example.com", "--gateway", "wss://gw-b.example.com:8443,https://gw-a.example.com", ...BASE.slice(2)], {});
    expect(flags.gatewayUrls.map((u) => u.href)).toEqual(["wss://gw-a.example.com/v1/tunnel", "wss://gw-b.example.com:8443/v1/tunnel"]);
    expect(flags.gatewayUrl.href).toBe("wss://gw-a.example.com/v1/tunnel");
    expect(flags.resolveIntervalMs).toBe(30_000);
    const env = parseConnectorSettings(BASE.slice(2), { GATEHOUSE_GATEWAY_URL: "https://a, https://b", GATEHOUSE_RESOLVE_INTERVAL: "0" });
    expect(env.gatewayUrls.map((u) => u.href)).toEqual(["wss://a/v1/tunnel", "wss://b/v1/tunnel"]);
    expect(env.resolveIntervalMs).toBe(0);
    const file = join(dir, "gateways.yaml");
    writeFileSync(file, "gateway:\n  - https://gw-1.internal\n  - https://gw-2.internal\nresolveInterval: 5\n");
    const fromFile = parseConnectorSettings(["--config", file, ...BASE.slice(2)], {});
    expect(fromFile.gatewayUrls.map((u) => u.href)).toEqual(["wss://gw-1.internal/v1/tunnel", "wss://gw-2.internal/v1/tunnel"]);
    expect(fromFile.resolveIntervalMs).toBe(5_000);
    expect(problemsOf(["--gateway", "https://ok", "--gateway", "ftp://bad", ...BASE.slice(2)])).toEqual([
      "--gateway: unsupported scheme ftp: (use https:// or wss://)",
    ]);
  });

  it("reads --token-file and trims its newline", () => {
    const argv = [...BASE.slice(0, 4), "--token-file", join(dir, "token"), "--allow", "*:*"];
    expect(parseConnectorSettings(argv, {}).token).toBe("file-token");
  });

  it.each([
    ["http://localhost:8009", "ws://localhost:8009/v1/tunnel"],
    ["ws://127.0.0.1:8009/", "ws://127.0.0.1:8009/v1/tunnel"],
    ["ws://[::1]:8009", "ws://[::1]:8009/v1/tunnel"],
    ["https://gw/v1/tunnel", "wss://gw/v1/tunnel"],
    ["wss://gw/prefix//", "wss://gw/prefix/v1/tunnel"],
  ])("turns gateway %s into %s", (gateway, tunnel) => {
    const argv = ["--gateway", gateway, ...BASE.slice(2)];
    expect(parseConnectorSettings(argv, {}).gatewayUrl.href).toBe(tunnel);
  });

  it.each([
    ["ws://gw.example.com", /--gateway: ws:\/\/ is unencrypted and only allowed to a loopback host; use wss:\/\//],
    ["http://10.0.0.1:8009", /--gateway: http:\/\/ is unencrypted/],
    ["ftp://gw", /unsupported scheme ftp:/],
    ["gw.example.com", /is not a URL/],
    ["https://user:pw@gw", /must not carry credentials/],
    ["https://gw/?x=1", /query or fragment/],
  ])("refuses gateway %s", (gateway, why) => {
    const problems = problemsOf(["--gateway", gateway, ...BASE.slice(2)]);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(why);
  });

  it("lists every missing option by flag, variable and key", () => {
    const problems = problemsOf([]);
    expect(problems).toEqual([
      '--gateway / GATEHOUSE_GATEWAY_URL / "gateway" in the config file is required',
      '--name / GATEHOUSE_CONNECTOR_NAME / "name" in the config file is required',
      expect.stringMatching(/connector token is required: --token \/ GATEHOUSE_CONNECTOR_TOKEN/),
      '--allow / GATEHOUSE_ALLOW / "allow" in the config file is required',
    ]);
  });

  it("names the variable or flag of a bad value", () => {
    const env = { GATEHOUSE_DRAIN_TIMEOUT: "soon", GATEHOUSE_LOG_LEVEL: "loud", GATEHOUSE_ALLOW: "db" };
    const problems = problemsOf([...BASE.slice(0, 6), "--name", "bad name!", "--dial-timeout", "0"], env);
    expect(problems).toEqual([
      expect.stringMatching(/^--name: "bad name!" must be/),
      expect.stringMatching(/^GATEHOUSE_ALLOW: allow entry "db": expected host:port/),
      'GATEHOUSE_DRAIN_TIMEOUT: "soon" is not a number of seconds',
      "--dial-timeout: must be more than 0",
      expect.stringMatching(/^GATEHOUSE_LOG_LEVEL: "loud" is not one of fatal, error/),
    ]);
  });

  it("names unknown and mistyped config-file keys", () => {
    const problems = problemsOf(["--config", join(dir, "unknown-key.yaml")]);
    const file = join(dir, "unknown-key.yaml");
    expect(problems).toContain(`"allowList" in ${file}: unknown key (known: gateway, name, token, tokenFile, allow, ca, drainTimeout, dialTimeout, resolveInterval, logLevel)`);
    expect(problems).toContain(`"drainTimeout" in ${file}: "soon" is not a number of seconds`);
    expect(problemsOf(["--config", join(dir, "list.yaml")])[0]).toMatch(/expected a mapping/);
    expect(problemsOf([], { GATEHOUSE_CONNECTOR_CONFIG: join(dir, "nope.yaml") })[0]).toMatch(
      /^GATEHOUSE_CONNECTOR_CONFIG: cannot read .*nope\.yaml \(ENOENT\)/,
    );
  });

  it("names each mistyped config-file key, and the file's other keys still count (gateway is not missing)", () => {
    const file = join(dir, "mistyped.yaml");
    expect(problemsOf(["--config", file, "--token", "t"])).toEqual([
      `"name" in ${file}: expected a string`,
      `"allow" in ${file}: expected a list of "host:port" strings`,
      `"dialTimeout" in ${file}: expected a number of seconds`,
      '--name / GATEHOUSE_CONNECTOR_NAME / "name" in the config file is required',
      '--allow / GATEHOUSE_ALLOW / "allow" in the config file is required',
    ]);
  });

  it("refuses a token file holding a token with spaces, naming the file but not the token", () => {
    const problems = problemsOf([...BASE.slice(0, 4), "--token-file", join(dir, "spaced-token"), "--allow", "*:*"]);
    expect(problems).toEqual([`--token-file: ${join(dir, "spaced-token")}: the token must be non-empty printable ASCII without spaces`]);
    expect(problems.join()).not.toContain("sec ret");
  });

  it("refuses an allow-list of only commas", () => {
    expect(problemsOf([...BASE.slice(0, 6), "--allow", " , "])).toEqual([
      "--allow: the allow-list is empty; list the targets this connector may reach (or '*:*')",
    ]);
  });

  it("refuses a token given twice, an unreadable token file and a bad CA, never echoing the token", () => {
    expect(problemsOf([...BASE, "--token-file", join(dir, "token")])).toEqual([
      "--token and --token-file: give the token one way, not both",
    ]);
    expect(problemsOf([...BASE.slice(0, 4), "--token-file", join(dir, "missing"), "--allow", "*:*"])[0]).toMatch(
      /^--token-file: cannot read .*missing \(ENOENT\)/,
    );
    const spaced = problemsOf([...BASE.slice(0, 4), "--token", "sec ret", "--allow", "*:*"]);
    expect(spaced).toEqual(["--token: the token must be non-empty printable ASCII without spaces"]);
    expect(problemsOf([...BASE, "--ca", join(dir, "not-a-ca.pem")])[0]).toMatch(/--ca: .*holds no PEM certificate/);
  });

  it("reports unknown flags and stray arguments in parseArgs' words", () => {
    expect(problemsOf([...BASE, "--gatway", "x"])[0]).toMatch(/Unknown option '--gatway'/);
    expect(problemsOf([...BASE, "extra"])[0]).toMatch(/Unexpected argument 'extra'/);
  });

  it("treats an empty variable as unset", () => {
    expect(parseConnectorSettings(BASE, { GATEHOUSE_LOG_LEVEL: "" }).logLevel).toBe("info");
  });
});
