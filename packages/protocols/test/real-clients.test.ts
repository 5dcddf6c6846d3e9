/**
 * `ClientHandshake` against the real `mariadb` command-line client: the login the gateway's
 * listener will run, with sequence ids and packets a real client accepts.
 */
import { execFile, execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { Capability } from "../src/mysql/constants.js";
import { nativePasswordVerifier } from "../src/mysql/auth/native-password.js";
import { AFTER_LOGIN_MESSAGE, startHandshakeServer, type Decide } from "./helpers/mysql-gateway.js";

const run = promisify(execFile);

const CAPS =
  Capability.CLIENT_LONG_PASSWORD |
  Capability.CLIENT_LONG_FLAG |
  Capability.CLIENT_CONNECT_WITH_DB |
  Capability.CLIENT_PROTOCOL_41 |
  Capability.CLIENT_TRANSACTIONS |
  Capability.CLIENT_SECURE_CONNECTION |
  Capability.CLIENT_MULTI_STATEMENTS |
  Capability.CLIENT_MULTI_RESULTS |
  Capability.CLIENT_PLUGIN_AUTH |
  Capability.CLIENT_CONNECT_ATTRS |
  Capability.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA;

const KEY = "gk_test_key-1";

/** The `mariadb` client's combined output and exit status. */
async function mariadb(port: number, args: string[]): Promise<{ code: number; output: string }> {
  try {
    const { stdout, stderr } = await run("mariadb", ["-h127.0.0.1", `-P${port}`, "--connect-timeout=5", ...args], { timeout: 15_000 });
    return { code: 0, output: stdout + stderr };
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === "number" ? e.code : -1, output: `${e.stdout ?? ""}${e.stderr ?? ""}` };
  }
}

const native: Decide = (event, hs) => {
  if (event.type === "login") return hs.checkNativePassword(event.user === "copilot-agent" ? [nativePasswordVerifier(KEY)] : []);
  if (event.type === "authenticated") return hs.complete();
  if (event.type === "authenticationFailed") return hs.fail({ errno: 1045, sqlState: "28000", message: "Access denied for user 'copilot-agent'" });
  return undefined;
};

describe("ClientHandshake with the mariadb client", () => {
  it("logs in with mysql_native_password: identity and connection name arrive, the first command follows", async () => {
    await using server = await startHandshakeServer({ serverVersion: "5.5.5-10.11.19-MariaDB-gatehouse", capabilities: CAPS }, native);
    const result = await mariadb(server.port, ["-ucopilot-agent", `-p${KEY}`, "-Dapp", "-e", "SELECT 1"]);
    expect(result.output).toContain(AFTER_LOGIN_MESSAGE);
    expect(server.errors).toEqual([]);
    const login = server.events[0]!.find((e) => e.type === "login");
    expect(login).toMatchObject({ user: "copilot-agent", database: "app", tls: false });
    expect(login?.type === "login" && login.attributes.some(([k]) => k === "_client_name")).toBe(true);
    expect(server.events[0]!.map((e) => e.type)).toContain("authenticated");
  });

  it("a wrong key gets 1045/28000 as the client shows it", async () => {
    await using server = await startHandshakeServer({ serverVersion: "8.0.36-gatehouse", capabilities: CAPS }, native);
    const result = await mariadb(server.port, ["-ucopilot-agent", "-pwrong", "-e", "SELECT 1"]);
    expect(result.code).not.toBe(0);
    expect(result.output).toContain("ERROR 1045 (28000)");
    expect(server.errors).toEqual([]);
  });

  it.each([
    ["mysql_native_password", "mysql_clear_password (AuthSwitchRequest)"],
    ["caching_sha2_password", "caching_sha2_password full authentication (AuthMoreData 0x04)"],
  ])("over TLS, a greeting naming %s gets the password in cleartext via %s", async (greetingPlugin, _via) => {
    const dir = mkdtempSync(join(tmpdir(), "gh-mysql-tls-"));
    execFileSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem"), "-subj", "/CN=localhost", "-days", "1"], { stdio: "ignore" });
    const passwords: string[] = [];
    await using server = await startHandshakeServer(
      { serverVersion: "8.0.36-gatehouse", capabilities: CAPS | Capability.CLIENT_SSL, authPluginName: greetingPlugin },
      (event, hs) => {
        if (event.type === "login") return hs.requestPassword();
        if (event.type === "password") {
          passwords.push(event.password);
          return hs.complete();
        }
        return undefined;
      },
      { key: readFileSync(join(dir, "key.pem")), cert: readFileSync(join(dir, "cert.pem")) },
    );
    const result = await mariadb(server.port, ["--ssl", "--ssl-verify-server-cert=0", "-ucopilot-agent", `-p${KEY}`, "-Dapp", "-e", "SELECT 1"]);
    expect(result.output).toContain(AFTER_LOGIN_MESSAGE);
    expect(server.errors).toEqual([]);
    expect(server.events[0]!.map((e) => e.type)).toEqual(["sslRequest", "login", "password"]);
    expect(server.events[0]![1]).toMatchObject({ tls: true, user: "copilot-agent", database: "app" });
    expect(passwords).toEqual([KEY]);
    expect(server.events[0]![1]).toMatchObject({ authPluginName: greetingPlugin });
  });
});
