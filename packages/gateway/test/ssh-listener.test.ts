import { execFile } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer as createHttpServer, type Server as HttpServer } from "node:http";
import { connect as connectTcp, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client, utils, type ConnectConfig } from "ssh2";
import { defaultDialers, type Connector } from "@gatehouse/connector";
import { startSshd, type SshdServer } from "@gatehouse/test-servers";
import type { SessionEvent, SessionRecord } from "@gatehouse/store";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { validateConfig } from "../src/config/load.js";
import { startGateway, type Gateway } from "../src/gateway.js";
import { AccessKeys } from "../src/identity/access-keys.js";
import { createLogger } from "../src/logger.js";
import { sshFingerprint } from "../src/listeners/ssh/host-key.js";
import type { SshKeyLookup } from "../src/listeners/ssh/ssh-auth.js";
import { AUDIENCE, startTestIssuer, type TestIssuer } from "./support/oidc-issuer.js";
import { jsonLogSink } from "./support/json-logs.js";
import { startTestConnector } from "./support/test-connector.js";
import { createStoreDatabase, type StoreDatabase } from "./support/store-database.js";

// The SSH listener end to end in one process: the gateway (its store a fresh database on the local
// Postgres), a real connector with its SSH dialer, a real OpenSSH sshd as the resource, and as
// clients ssh2's Client and the real `ssh` binary, all on port 0.

const CONNECTOR_TOKEN = "ssh-listener-test-token";
/** The connector's SSH dialer comes from its own part of issue 11; the tests that need it wait for it. */
const hasSshDialer = defaultDialers().has("ssh");

let dir: string;
let store: StoreDatabase | undefined;
let gateway: Gateway;
let connector: Connector | undefined;
let sshd: SshdServer;
let issuer: TestIssuer;
let web: HttpServer;
let agentKey: string;
let outsiderKey: string;
/** The agent's registered SSH key (a file the `ssh` binary uses), and one nobody registered. */
let agentKeyFile: string;
let strangerKeyFile: string;
let knownHosts: string;
const logs: Array<Record<string, unknown>> = [];

/** The test's own key registry: what `gatehouse keys add-ssh` stores, as the listener asks it. */
class TestKeys implements SshKeyLookup {
  readonly keys = new Map<string, { id: string; algorithm: string; blob: string }[]>();
  add(identity: string, publicLine: string): void {
    const [algorithm, base64] = publicLine.trim().split(/\s+/) as [string, string];
    this.keys.set(identity, [...(this.keys.get(identity) ?? []), { id: `key-${this.keys.size + 1}`, algorithm, blob: base64 }]);
  }
  async find(identity: string, algorithm: string, blob: Uint8Array) {
    const base64 = Buffer.from(blob).toString("base64");
    const found = (this.keys.get(identity) ?? []).find((k) => k.algorithm === algorithm && k.blob === base64);
    return found ? { id: found.id, fingerprint: sshFingerprint(blob) } : null;
  }
}

function keyFile(name: string): { path: string; publicLine: string } {
  const pair = utils.generateKeyPairSync("ed25519");
  const path = join(dir, name);
  writeFileSync(path, pair.private, { mode: 0o600 });
  return { path, publicLine: pair.public };
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "gatehouse-ssh-listener-"));
  store = await createStoreDatabase("gatehouse_ssh");
  issuer = await startTestIssuer([{ id: "agent", secret: "s1" }]);
  sshd = await startSshd();
  web = createHttpServer((_req, res) => res.end("hello through the forward\n"));
  await new Promise<void>((resolve) => web.listen(0, "127.0.0.1", resolve));
  const webPort = (web.address() as AddressInfo).port;
  const keys = new TestKeys();
  const agent = keyFile("agent_ed25519");
  agentKeyFile = agent.path;
  keys.add("agent", agent.publicLine);
  strangerKeyFile = keyFile("stranger_ed25519").path;
  const sshConnection = (name: string, extra: Record<string, unknown> = {}) => ({
    name,
    protocol: "ssh",
    connector: "dc1",
    target: { host: sshd.host, port: sshd.port, hostKey: sshd.hostKeyLine },
    credential: { user: sshd.user, privateKey: `file:${sshd.clientKeyPath}` },
    allow: [{ identity: "agent" }],
    ...extra,
  });
  gateway = await startGateway(
    validateConfig({
      dataDir: join(dir, "data"),
      store: { url: store.url(), maxConnections: 2 },
      listen: { api: "127.0.0.1:0", ssh: "127.0.0.1:0" },
      identity: { oidc: { issuer: issuer.issuer, audience: AUDIENCE, ca: issuer.caFile } },
      recording: { ssh: { execOutputBytes: 64 } },
      connectors: [{ name: "dc1", tokenSha256: createHash("sha256").update(CONNECTOR_TOKEN).digest("hex") }],
      connections: [sshConnection("web1"), sshConnection("noforward", { allowPortForwarding: false })],
    }),
    { logger: createLogger("debug", jsonLogSink(logs)), sshKeys: keys },
  );
  knownHosts = join(dir, "known_hosts");
  writeFileSync(knownHosts, `[127.0.0.1]:${gateway.ssh!.port} ${gateway.sshHostKey!.publicLine}\n`);
  const accessKeys = new AccessKeys(gateway.store, () => Date.now() * 1000);
  agentKey = (await accessKeys.create("agent")).key;
  outsiderKey = (await accessKeys.create("outsider")).key;
  if (hasSshDialer) {
    connector = await startTestConnector(gateway.apiUrl, CONNECTOR_TOKEN, `${sshd.host}:${sshd.port},127.0.0.1:${webPort}`, logs);
  }
  (globalThis as { webPort?: number }).webPort = webPort;
}, 60_000);

afterAll(async () => {
  await connector?.stop();
  await gateway?.close({ graceMs: 0 });
  await sshd?.stop();
  await issuer?.close();
  web?.close();
  await store?.drop();
  rmSync(dir, { recursive: true, force: true });
});

type Recorded = SessionRecord & { events: SessionEvent[] };

/** The sessions recorded since `since` (µs) that match, once ended and complete in the store. */
async function recorded(match: (s: Recorded) => boolean, since: number, timeoutMs = 10_000): Promise<Recorded> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    for (const s of await gateway.store.sessions.list({ limit: 1000 })) {
      if (s.startedUs < since || s.endedUs === null || s.protocol !== "ssh") continue;
      const full = await gateway.store.sessions.get(s.id);
      if (!full || full.events.length < full.session.eventCount) continue;
      const candidate = { ...full.session, events: full.events };
      if (match(candidate)) return candidate;
    }
    if (Date.now() > deadline) throw new Error("no such recorded ssh session");
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const nowUs = () => Date.now() * 1000;

/** An ssh2 client logged in to the gateway; rejects with the client's error. */
function login(config: Partial<ConnectConfig> & { username: string }): Promise<Client> {
  return new Promise((resolve, reject) => {
    const client = new Client();
    client.on("ready", () => resolve(client));
    client.on("error", reject);
    client.connect({ host: "127.0.0.1", port: gateway.ssh!.port, readyTimeout: 10_000, hostVerifier: (key: Buffer) => sshFingerprint(key) === gateway.sshHostKey!.fingerprint, ...config });
  });
}

/** Runs a command over an ssh2 client: its stdout, stderr and exit code. */
function exec(client: Client, command: string, options: Record<string, unknown> = {}): Promise<{ stdout: string; stderr: string; code: number | null }> {
  return new Promise((resolve, reject) => {
    client.exec(command, options, (error, channel) => {
      if (error) return reject(error);
      let stdout = "";
      let stderr = "";
      let code: number | null = null;
      channel.on("data", (d: Buffer) => (stdout += d.toString()));
      channel.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
      channel.on("exit", (c: number | null) => (code = c));
      channel.on("close", () => resolve({ stdout, stderr, code }));
    });
  });
}

/** The real `ssh` binary against the gateway, pinned to its host key; never reads the machine's ssh config. */
function ssh(user: string, args: string[], keyPath = agentKeyFile): Promise<{ stdout: string; stderr: string; code: number }> {
  const base = ["-F", "/dev/null", "-p", String(gateway.ssh!.port), "-o", `UserKnownHostsFile=${knownHosts}`, "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none", "-i", keyPath];
  return new Promise((resolve) => {
    execFile("ssh", [...base, ...args.slice(0, -1), `${user}@127.0.0.1`, ...args.slice(-1)], { timeout: 20_000 }, (error, stdout, stderr) => {
      resolve({ stdout, stderr, code: error ? (typeof error.code === "number" ? error.code : -1) : 0 });
    });
  });
}

describe("ssh listener: authentication refusals (no resource reached)", () => {
  it("refuses a wrong access key and an unknown identity, recording each", async () => {
    const since = nowUs();
    await expect(login({ username: "agent@web1", password: "gh_wrong" })).rejects.toThrow(/authentication methods failed/);
    const wrong = await recorded((s) => s.identity.name === "agent" && s.events.some((e) => e.kind === "auth_failed"), since);
    expect(wrong.connection).toBe("web1");
    expect(wrong.events.find((e) => e.kind === "auth_failed")!.details).toMatchObject({ reason: "wrong_key", sshMethod: "password" });
    await expect(login({ username: "nobody@web1", password: agentKey })).rejects.toThrow(/authentication methods failed/);
    const unknown = await recorded((s) => s.identity.name === "nobody", since);
    expect(unknown.events.find((e) => e.kind === "auth_failed")!.details).toMatchObject({ reason: "no_key" });
  });

  it("refuses a user name that names no connection, saying so in the record", async () => {
    const since = nowUs();
    await expect(login({ username: "agent", password: agentKey })).rejects.toThrow(/authentication methods failed/);
    const refused = await recorded((s) => s.identity.name === "agent" && s.connection === "", since);
    expect(refused.events.find((e) => e.kind === "auth_failed")!.details).toMatchObject({ reason: "no_connection" });
  });

  it("refuses a key no identity registered (the real ssh client), recording its fingerprint", async () => {
    const since = nowUs();
    const result = await ssh("agent@web1", ["true"], strangerKeyFile);
    expect(result.code).toBe(255);
    expect(result.stderr).toMatch(/Permission denied/);
    const stranger = (await new Promise<string>((resolve, reject) =>
      execFile("ssh-keygen", ["-l", "-E", "sha256", "-f", strangerKeyFile], (e, out) => (e ? reject(e) : resolve(out.split(/\s+/)[1]!))),
    )) as string;
    const refused = await recorded((s) => s.events.some((e) => e.kind === "auth_failed" && (e.details as { reason?: string }).reason === "unknown_key"), since);
    expect(refused.identity.name).toBe("agent");
    expect((refused.events.find((e) => e.kind === "auth_failed")!.details as { fingerprints: string[] }).fingerprints).toContain(stranger);
  });

  it("survives garbage before and after the version exchange, and still serves the next client", async () => {
    const send = (bytes: Buffer) =>
      new Promise<string>((resolve) => {
        const socket = connectTcp(gateway.ssh!.port, "127.0.0.1");
        let got = "";
        socket.on("data", (d) => (got += d.toString("latin1")));
        socket.on("error", () => undefined);
        socket.on("close", () => resolve(got));
        socket.write(bytes);
        setTimeout(() => socket.destroy(), 500);
      });
    const greetings = await Promise.all([
      send(randomBytes(4096)),
      send(Buffer.concat([Buffer.from("SSH-2.0-fuzz\r\n"), randomBytes(4096)])),
      send(Buffer.concat([Buffer.from("SSH-2.0-fuzz\r\n"), Buffer.from([0, 0, 0, 12, 4, 20]), randomBytes(64)])),
      send(Buffer.from("GET / HTTP/1.1\r\nHost: x\r\n\r\n")),
    ]);
    // Each got the gateway's own version line before it was dropped.
    for (const greeting of greetings) expect(greeting).toMatch(/^SSH-2\.0-gatehouse/);
    await expect(login({ username: "agent@web1", password: "gh_still_wrong" })).rejects.toThrow(/authentication methods failed/);
  });
});

describe.runIf(hasSshDialer)("ssh listener: through the connector to a real sshd", () => {
  it("runs a command with the real ssh client: stdout, stderr, exit code; recorded as exec", async () => {
    const since = nowUs();
    const result = await ssh("agent@web1", ["echo out; echo err >&2; exit 3"]);
    expect(result.stdout).toBe("out\n");
    expect(result.stderr).toContain("err\n");
    expect(result.code).toBe(3);
    const session = await recorded((s) => s.identity.name === "agent" && s.events.some((e) => e.kind === "exec"), since);
    expect(session.identity.method).toBe("ssh_key");
    const event = session.events.find((e) => e.kind === "exec")!;
    expect(event.command).toBe("echo out; echo err >&2; exit 3");
    expect(event.outcome).toBe("error");
    expect(event.details).toMatchObject({ exitStatus: 3, bytesOut: 8, outputTruncated: false });
    expect((event.details as { output: string }).output).toContain("out\n");
    expect(session.events.map((e) => e.kind)).toEqual(expect.arrayContaining(["connect", "exec", "disconnect"]));
  });

  it("runs a command whose client sent EOF before the gateway answered its exec (ssh HOST cmd </dev/null)", async () => {
    const client = await login({ username: "agent@web1", password: agentKey });
    // EOF right behind the exec request, as OpenSSH sends it when its stdin is /dev/null: the answer
    // waits for the journal and the connector, so it always comes after this EOF.
    const proto = (client as unknown as { _protocol: { exec(c: number, cmd: string, w: boolean): void; channelEOF(c: number): void } })._protocol;
    const sendExec = proto.exec.bind(proto);
    proto.exec = (chan, command, wantReply) => {
      sendExec(chan, command, wantReply);
      proto.channelEOF(chan);
    };
    const result = await exec(client, "cat; echo after-eof");
    client.end();
    expect(result).toMatchObject({ stdout: "after-eof\n", code: 0 });
  });

  it("takes an access key as password and an OIDC token as keyboard-interactive answer", async () => {
    const since = nowUs();
    const withKey = await login({ username: "agent@web1", password: agentKey });
    expect(await exec(withKey, "echo $((6*7))")).toMatchObject({ stdout: "42\n", code: 0 });
    withKey.end();
    const token = await issuer.token("agent");
    const withToken = await login({ username: "agent@web1", tryKeyboard: true, authHandler: [{ type: "keyboard-interactive", username: "agent@web1", prompt: (_n: string, _i: string, _l: string, _p: unknown, finish: (answers: string[]) => void) => finish([token]) }] as never });
    expect(await exec(withToken, "printf %s hi")).toMatchObject({ stdout: "hi", code: 0 });
    withToken.end();
    const viaToken = await recorded((s) => s.identity.method === "oidc" && s.events.some((e) => e.kind === "exec"), since);
    expect(viaToken.identity.name).toBe("agent");
  });

  it("keeps exec output up to recording.ssh.execOutputBytes, marked truncated", async () => {
    const since = nowUs();
    const client = await login({ username: "agent@web1", password: agentKey });
    const result = await exec(client, "head -c 1000 /dev/zero | tr '\\0' x");
    client.end();
    expect(result.stdout).toHaveLength(1000);
    const event = (await recorded((s) => s.events.some((e) => e.kind === "exec" && e.command?.startsWith("head")), since)).events.find((e) => e.kind === "exec")!;
    expect(event.details).toMatchObject({ bytesOut: 1000, outputTruncated: true, output: "x".repeat(64) });
  });

  it("tells an identity the connection does not allow why, on stderr, and records it denied", async () => {
    const since = nowUs();
    const client = await login({ username: "outsider@web1", password: outsiderKey });
    const result = await exec(client, "true");
    client.end();
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/gatehouse: access denied/);
    const session = await recorded((s) => s.identity.name === "outsider", since);
    expect(session.events.map((e) => e.kind)).toContain("denied");
  });

  it("forwards a port with ssh -L where allowed, and refuses it where not", async () => {
    const webPort = (globalThis as { webPort?: number }).webPort!;
    const since = nowUs();
    const client = await login({ username: "agent@web1", password: agentKey });
    const body = await new Promise<string>((resolve, reject) => {
      client.forwardOut("127.0.0.1", 50000, "127.0.0.1", webPort, (error, channel) => {
        if (error) return reject(error);
        let got = "";
        channel.on("data", (d: Buffer) => (got += d.toString()));
        channel.on("close", () => resolve(got));
        channel.end("GET / HTTP/1.0\r\nHost: x\r\n\r\n");
      });
    });
    client.end();
    expect(body).toContain("hello through the forward");
    const forward = (await recorded((s) => s.events.some((e) => e.kind === "port_forward"), since)).events.find((e) => e.kind === "port_forward")!;
    expect(forward.details).toMatchObject({ destination: `127.0.0.1:${webPort}` });
    expect((forward.details as { bytesOut: number }).bytesOut).toBeGreaterThan(20);

    const closed = await login({ username: "agent@noforward", password: agentKey });
    await expect(
      new Promise((resolve, reject) => closed.forwardOut("127.0.0.1", 50000, "127.0.0.1", webPort, (error) => (error ? reject(error) : resolve(undefined)))),
    ).rejects.toThrow();
    closed.end();
    const denied = await recorded((s) => s.connection === "noforward" && s.events.some((e) => e.kind === "denied"), since);
    expect(denied.events.find((e) => e.kind === "denied")!.details).toMatchObject({ request: "direct-tcpip", destination: `127.0.0.1:${webPort}` });
  });

  it("refuses agent forwarding and remote forwarding, recording each as denied", async () => {
    const since = nowUs();
    const client = await login({ username: "agent@web1", password: agentKey, agent: "/nonexistent-agent.sock" });
    const result = await exec(client, "echo still-runs", { agentForward: true }).catch((e: Error) => ({ stdout: "", stderr: e.message, code: null }));
    await expect(new Promise((resolve, reject) => client.forwardIn("127.0.0.1", 0, (error) => (error ? reject(error) : resolve(undefined))))).rejects.toThrow();
    client.end();
    expect(result.stdout === "still-runs\n" || /agent/i.test(result.stderr)).toBe(true);
    const session = await recorded((s) => s.events.filter((e) => e.kind === "denied").length >= 2, since);
    const requests = session.events.filter((e) => e.kind === "denied").map((e) => (e.details as { request: string }).request);
    expect(requests).toEqual(expect.arrayContaining(["auth-agent-req@openssh.com", "tcpip-forward"]));
  });

  it("relays window changes and signals, answers stray channel requests, and keeps serving", async () => {
    const since = nowUs();
    const client = await login({ username: "agent@web1", password: agentKey });
    const result = await new Promise<{ stdout: string; code: number | null }>((resolve, reject) => {
      // The signal is sent once the shell has set its trap; `wait` returns early when it arrives.
      client.exec("trap 'echo got-usr1' USR1; sleep 5 & wait; read line; echo got $line; stty size", { pty: { term: "xterm", rows: 24, cols: 80 } }, (error, channel) => {
        if (error) return reject(error);
        let stdout = "";
        let code: number | null = null;
        channel.on("data", (d: Buffer) => (stdout += d.toString()));
        channel.on("exit", (c: number | null) => (code = c));
        channel.on("close", () => resolve({ stdout, code }));
        // Requests a client may send at any time on a running channel: a second exec, a pty, an env, a subsystem.
        const proto = (client as unknown as { _protocol: { exec(c: number, cmd: string, w: boolean): void; env(c: number, k: string, v: string, w: boolean): void; subsystem(c: number, n: string, w: boolean): void } })._protocol;
        const id = (channel as unknown as { outgoing: { id: number } }).outgoing.id;
        proto.exec(id, "rm -rf /tmp/never", true);
        proto.env(id, "LATE", "1", true);
        proto.subsystem(id, "nonsense", true);
        channel.setWindow(40, 100, 0, 0);
        // ssh2's client sends only the signals RFC 4254 §6.10 names (no WINCH).
        setTimeout(() => channel.signal("USR1"), 700);
        setTimeout(() => channel.write("hello\n"), 1000);
      });
    });
    client.end();
    expect(result.stdout).toContain("got-usr1");
    expect(result.stdout).toContain("got hello");
    expect(result.stdout).toContain("40 100");
    expect(result.code).toBe(0);
    const session = await recorded((s) => s.events.some((e) => e.kind === "exec" && e.command?.startsWith("trap ")), since);
    expect(session.events.filter((e) => e.kind === "exec")).toHaveLength(1);
    expect(session.events.find((e) => e.kind === "signal")?.command).toBe("USR1");
    expect(session.events.find((e) => e.kind === "exec")!.details).toMatchObject({ pty: { term: "xterm", rows: 24, cols: 80 }, exitStatus: 0 });
    const again = await login({ username: "agent@web1", password: agentKey });
    expect(await exec(again, "echo alive")).toMatchObject({ stdout: "alive\n" });
    again.end();
  });
});
