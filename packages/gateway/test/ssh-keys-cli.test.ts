import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import type { Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable, Writable } from "node:stream";
import { promisify } from "node:util";
import { openStore, type Store } from "@gatehouse/store";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApiServer, sshHostKeyView } from "../src/api/http-api.js";
import { keysCommand } from "../src/cli/keys-command.js";
import { sshConfigCommand } from "../src/cli/ssh-config-command.js";
import { UsageError } from "../src/cli/command.js";
import { systemClock } from "../src/clock.js";
import { validateConfig } from "../src/config/load.js";
import { sha256Hex } from "../src/data-dir.js";
import { startGateway, type Gateway } from "../src/gateway.js";
import { AccessKeys } from "../src/identity/access-keys.js";
import { SshKeys } from "../src/identity/ssh-keys.js";
import { createLogger } from "../src/logger.js";
import { ConnectorRegistry } from "../src/tunnel/connector-registry.js";
import { TunnelServer } from "../src/tunnel/tunnel-server.js";
import { sshKeygen, type GeneratedKey } from "./support/ssh-keygen.js";
import { createStoreDatabase, type StoreDatabase } from "./support/store-database.js";

// `gatehouse keys add-ssh / list / revoke` against a real gateway (real Postgres store), and
// `gatehouse ssh-config` whose output the real OpenSSH tools read: `ssh -G` resolves the Host
// block, `ssh-keygen -F` finds the gateway's key in the known_hosts line.

const run = promisify(execFile);
const quiet = new Writable({ write: (_chunk, _encoding, done) => done() });
let dir: string;
let database: StoreDatabase;
let gateway: Gateway;
let adminToken: string;
let ed: GeneratedKey;
let rsa: GeneratedKey;
let dsa: GeneratedKey;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "gatehouse-ssh-keys-cli-"));
  ed = sshKeygen(dir, "agent", "ed25519", { comment: "agent@laptop" });
  rsa = sshKeygen(dir, "agent-rsa", "rsa", { bits: 3072 });
  dsa = sshKeygen(dir, "old", "dsa");
  database = await createStoreDatabase("gatehouse_sshcli");
  gateway = await startGateway(validateConfig({ dataDir: join(dir, "data"), listen: { api: "127.0.0.1:0" }, store: { url: database.url() } }), {
    logger: createLogger("warn", quiet),
    onAdminTokenGenerated: (token) => (adminToken = token),
  });
});

afterAll(async () => {
  await gateway?.close();
  await database?.drop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function cli(command: typeof keysCommand, argv: string[], options: { stdin?: string; api?: string } = {}) {
  let stdout = "";
  let stderr = "";
  const out = new Writable({ write: (chunk: Buffer, _encoding, done) => ((stdout += chunk.toString()), done()) });
  const err = new Writable({ write: (chunk: Buffer, _encoding, done) => ((stderr += chunk.toString()), done()) });
  const env = { GATEHOUSE_GATEWAY_URL: options.api ?? gateway.apiUrl, GATEHOUSE_ADMIN_TOKEN: adminToken };
  const code = await command({ argv, stdout: out, stderr: err, env, ...(options.stdin === undefined ? {} : { stdin: Readable.from([options.stdin]) }) });
  return { code, stdout, stderr };
}

describe("gatehouse keys (SSH public keys)", () => {
  it("registers a .pub file and a key on standard input, printing id and ssh-keygen's fingerprint", async () => {
    const fromFile = await cli(keysCommand, ["add-ssh", "--identity", "copilot-agent", ed.publicPath]);
    expect(fromFile.code).toBe(0);
    expect(fromFile.stdout).toMatch(new RegExp(`^sshk_[0-9a-f]{12} ${ed.fingerprint.replace(/[+/]/g, "\\$&")}\n$`));
    expect(fromFile.stderr).toContain("registered ssh-ed25519 key");
    const fromStdin = await cli(keysCommand, ["add-ssh", "--identity", "copilot-agent", "--json", "-"], { stdin: `${rsa.publicLine}\n` });
    expect(JSON.parse(fromStdin.stdout)).toMatchObject({ identity: "copilot-agent", algorithm: "ssh-rsa", fingerprint: rsa.fingerprint, comment: "agent-rsa@test" });
  });

  it("refuses a second identity claiming the key, and a DSA key, with the gateway's reason", async () => {
    await expect(cli(keysCommand, ["add-ssh", "--identity", "other-agent", ed.publicPath])).rejects.toThrow(
      /409 conflict: the key SHA256:\S+ is already registered for identity copilot-agent/,
    );
    await expect(cli(keysCommand, ["add-ssh", "--identity", "old-agent", dsa.publicPath])).rejects.toThrow(/400 bad_request: publicKey: DSA keys are refused/);
    await expect(cli(keysCommand, ["add-ssh", "--identity", "x", join(dir, "missing.pub")])).rejects.toThrow(UsageError);
    await expect(cli(keysCommand, ["add-ssh", ed.publicPath])).rejects.toThrow(/needs --identity/);
  });

  it("lists SSH keys beside access keys and revokes either kind by id", async () => {
    const access = await cli(keysCommand, ["create", "--identity", "copilot-agent", "--json"]);
    const accessId = (JSON.parse(access.stdout) as { id: string }).id;
    const table = (await cli(keysCommand, ["list", "--identity", "copilot-agent"])).stdout.trim().split("\n");
    expect(table[0]).toMatch(/^ID\s+IDENTITY\s+TYPE\s+CREATED\s+EXPIRES\s+LAST USED\s+FINGERPRINT\s+COMMENT$/);
    expect(table.find((l) => l.startsWith(accessId))).toMatch(/copilot-agent\s+access-key\s/);
    const edRow = table.find((l) => l.includes(ed.fingerprint));
    expect(edRow).toMatch(/^sshk_\S+\s+copilot-agent\s+ssh-ed25519\s.*never\s+-\s+SHA256:\S+\s+agent@laptop$/);
    const listed = JSON.parse((await cli(keysCommand, ["list", "--json"])).stdout) as Array<{ kind: string; id: string; fingerprint?: string }>;
    expect(listed.map((k) => k.kind).sort()).toEqual(["access", "ssh", "ssh"]);
    const sshId = listed.find((k) => k.fingerprint === ed.fingerprint)!.id;

    expect((await cli(keysCommand, ["revoke", sshId])).stdout).toBe(`revoked ${sshId}\n`);
    expect((await cli(keysCommand, ["revoke", accessId])).stdout).toBe(`revoked ${accessId}\n`);
    await expect(cli(keysCommand, ["revoke", sshId])).rejects.toThrow(/404 not_found: no live key/);
    const after = JSON.parse((await cli(keysCommand, ["list", "--json"])).stdout) as Array<{ id: string }>;
    expect(after.map((k) => k.id)).not.toContain(sshId);
    expect(after.map((k) => k.id)).not.toContain(accessId);
    // Revoked, the key may be registered again, by another identity.
    expect((await cli(keysCommand, ["add-ssh", "--identity", "other-agent", ed.publicPath])).code).toBe(0);
  });

  it("says the gateway has no SSH listener when asked for its host key", async () => {
    await expect(cli(sshConfigCommand, ["--connection", "web1", "--identity", "copilot-agent"])).rejects.toThrow(
      /404 not_found: this gateway has no SSH listener \(listen.ssh is not configured\)/,
    );
  });
});

describe("gatehouse ssh-config", () => {
  // The API server as the gateway builds it, given the SSH listener's host key the way the
  // gateway will (the listener itself is built apart): a key made here by ssh-keygen.
  let api: Server;
  let apiUrl: string;
  let store: Store;
  let accessKeys: AccessKeys;
  let sshKeys: SshKeys;
  let hostKey: GeneratedKey;
  const token = "test-admin-token";

  beforeAll(async () => {
    hostKey = sshKeygen(dir, "ssh_host_ed25519_key", "ed25519", { comment: "root@gateway" });
    store = await openStore({ url: database.url(), maxConnections: 2 });
    const config = validateConfig({ dataDir: join(dir, "data-api"), listen: { api: "127.0.0.1:0" } });
    const logger = createLogger("warn", quiet);
    const registry = new ConnectorRegistry();
    accessKeys = new AccessKeys(store, systemClock);
    sshKeys = new SshKeys(store, systemClock);
    const notHere = () => Promise.reject(new Error("not part of this test"));
    api = createApiServer({
      config: () => config,
      store,
      registry,
      tunnel: new TunnelServer({ config: () => config, registry, logger, clock: systemClock }),
      adminTokenSha256: sha256Hex(token),
      accessKeys,
      sshKeys,
      sshHostKey: () => sshHostKeyView(hostKey.publicLine, "0.0.0.0:12222"),
      logger,
      readiness: () => ({ ready: true, body: {} }) as never,
      evidence: { shippedHead: notHere, minRetentionDays: () => 0, signRetention: notHere },
    });
    await new Promise<void>((resolve) => api.listen(0, "127.0.0.1", resolve));
    apiUrl = `http://127.0.0.1:${(api.address() as { port: number }).port}`;
  });

  afterAll(async () => {
    await new Promise((resolve) => api?.close(resolve));
    await accessKeys?.close();
    await sshKeys?.close();
    await store?.close();
  });

  const sshConfig = async (argv: string[]) => {
    let stdout = "";
    const out = new Writable({ write: (chunk: Buffer, _encoding, done) => ((stdout += chunk.toString()), done()) });
    const code = await sshConfigCommand({ argv, stdout: out, stderr: quiet, env: { GATEHOUSE_GATEWAY_URL: apiUrl, GATEHOUSE_ADMIN_TOKEN: token } });
    return { code, stdout };
  };

  /** What ssh itself makes of the config for `alias`: `ssh -G` prints the resolved options. */
  async function resolved(configText: string, alias: string): Promise<Map<string, string>> {
    const file = join(dir, `ssh_config_${alias}`);
    writeFileSync(file, `${configText}\n`);
    const { stdout } = await run("ssh", ["-G", "-F", file, alias]);
    return new Map(stdout.split("\n").filter(Boolean).map((line) => [line.slice(0, line.indexOf(" ")), line.slice(line.indexOf(" ") + 1)]));
  }

  /** Whether `ssh-keygen -F NAME` finds the host key in the known_hosts text, and the line it finds. */
  async function knownHostsLookup(knownHosts: string, name: string): Promise<string | undefined> {
    const file = join(dir, `known_hosts_${name.replace(/\W/g, "_")}`);
    writeFileSync(file, `${knownHosts}\n`);
    const found = await run("ssh-keygen", ["-F", name, "-f", file]).then(
      (r) => r.stdout,
      () => undefined,
    );
    return found?.split("\n").find((l) => l !== "" && !l.startsWith("#"));
  }

  it("prints a Host block ssh resolves to the gateway, as IDENTITY@CONNECTION, and a known_hosts line ssh-keygen finds", async () => {
    const { code, stdout } = await sshConfig(["--connection", "web1", "--identity", "copilot-agent", "--gateway", "GW.example.com:2222"]);
    expect(code).toBe(0);
    const [configText, knownHostsPart] = stdout.split("# known_hosts");
    const options = await resolved(configText!, "web1");
    expect(options.get("hostname")).toBe("gw.example.com");
    expect(options.get("port")).toBe("2222");
    expect(options.get("user")).toBe("copilot-agent@web1");
    expect(options.get("stricthostkeychecking")).toBe("true");
    const knownHosts = knownHostsPart!.split("\n").filter((l) => l !== "" && !l.startsWith(" (add") && !l.startsWith("#") && !l.includes("add to"));
    expect(knownHosts).toHaveLength(1);
    const found = await knownHostsLookup(knownHosts[0]!, "[gw.example.com]:2222");
    expect(found).toBe(`[gw.example.com]:2222 ${hostKey.publicLine.split(" ").slice(0, 2).join(" ")}`);
    expect(stdout).toContain(hostKey.fingerprint);
  });

  it("defaults the address to the listener's port on the API's host, and takes --host and --key", async () => {
    const { stdout } = await sshConfig(["--connection", "db-shell", "--identity", "sre", "--host", "prod-db", "--key", "~/.ssh/id_gatehouse", "--json"]);
    const answer = JSON.parse(stdout) as { config: string; knownHosts: string; fingerprint: string };
    expect(answer.fingerprint).toBe(hostKey.fingerprint);
    const options = await resolved(answer.config, "prod-db");
    expect([options.get("hostname"), options.get("port"), options.get("user")]).toEqual(["127.0.0.1", "12222", "sre@db-shell"]);
    expect(options.get("identityfile")).toMatch(/\/\.ssh\/id_gatehouse$/);
    expect(options.get("identitiesonly")).toBe("yes");
    expect(await knownHostsLookup(answer.knownHosts, "[127.0.0.1]:12222")).toBeDefined();
    // A host that is not the gateway's is not vouched for by the line.
    expect(await knownHostsLookup(answer.knownHosts, "[127.0.0.1]:22")).toBeUndefined();
  });

  it("writes a port-22 gateway's line under the bare host name", async () => {
    const { stdout } = await sshConfig(["--connection", "web1", "--identity", "a", "--gateway", "bastion.internal", "--json"]);
    const answer = JSON.parse(stdout) as { config: string; knownHosts: string };
    expect((await resolved(answer.config, "web1")).get("port")).toBe("22");
    expect(await knownHostsLookup(answer.knownHosts, "bastion.internal")).toBeDefined();
  });

  it("refuses names ssh_config cannot hold before asking the gateway", async () => {
    await expect(sshConfig(["--identity", "a"])).rejects.toThrow(/needs --connection/);
    await expect(sshConfig(["--connection", "web 1", "--identity", "a"])).rejects.toThrow(/--connection: "web 1" cannot be written/);
    await expect(sshConfig(["--connection", "web1", "--host", "web*", "--identity", "a"])).rejects.toThrow(/--host/);
    await expect(sshConfig(["--connection", "web1", "--identity", "a", "--gateway", "gw:99999"])).rejects.toThrow(/--gateway: expected HOST:PORT/);
  });
});
