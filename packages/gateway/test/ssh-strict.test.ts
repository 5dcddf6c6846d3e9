import { createHash } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "ssh2";
import { type Connector } from "@gatehouse/connector";
import { startSshd, type SshdServer } from "@gatehouse/test-servers";
import { afterAll, beforeAll, expect, it } from "vitest";
import { validateConfig } from "../src/config/load.js";
import { startGateway, type Gateway } from "../src/gateway.js";
import { AccessKeys } from "../src/identity/access-keys.js";
import { createLogger } from "../src/logger.js";
import { jsonLogSink } from "./support/json-logs.js";
import { startTestConnector } from "./support/test-connector.js";
import { createStoreDatabase, type StoreDatabase } from "./support/store-database.js";
import { startTcpProxy, type TcpProxy } from "./support/tcp-proxy.js";

// Strict recording on an SSH terminal: every chunk the client types is durable in the journal
// before sshd sees it. With the store cut off (a blackholed proxy) and a small journal, typing
// fills the journal; the shell is then stopped with the reason on the channel's stderr, and the
// session's record, shipped once the store is back, says why the shell ended.

const TOKEN = "ssh-strict-test-token";
let dir: string;
let store: StoreDatabase;
let proxy: TcpProxy;
let sshd: SshdServer;
let gateway: Gateway;
let connector: Connector;
let key: string;
const logs: Array<Record<string, unknown>> = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "gatehouse-ssh-strict-"));
  store = await createStoreDatabase("gatehouse_ssh_strict");
  proxy = await startTcpProxy({ host: "127.0.0.1", port: Number(new URL(store.url()).port || 5432) });
  sshd = await startSshd();
  gateway = await startGateway(
    validateConfig({
      dataDir: join(dir, "data"),
      store: { url: store.url({ host: "127.0.0.1", port: proxy.port }), maxConnections: 2 },
      listen: { api: "127.0.0.1:0", ssh: "127.0.0.1:0" },
      recording: { mode: "strict", journal: { segmentBytes: 16 * 1024, maxBytes: 64 * 1024 } },
      connectors: [{ name: "dc1", tokenSha256: createHash("sha256").update(TOKEN).digest("hex") }],
      connections: [
        {
          name: "web1",
          protocol: "ssh",
          connector: "dc1",
          target: { host: sshd.host, port: sshd.port, hostKey: sshd.hostKeyLine },
          credential: { user: sshd.user, privateKey: `file:${sshd.clientKeyPath}` },
          allow: [{ identity: "agent" }],
        },
      ],
    }),
    { logger: createLogger("debug", jsonLogSink(logs)) },
  );
  key = (await new AccessKeys(gateway.store, () => Date.now() * 1000).create("agent")).key;
  connector = await startTestConnector(gateway.apiUrl, TOKEN, `${sshd.host}:${sshd.port}`, logs);
}, 60_000);

afterAll(async () => {
  await connector?.stop();
  proxy?.restore();
  await gateway?.close({ graceMs: 0 });
  await proxy?.close();
  await sshd?.stop();
  await store?.drop();
  rmSync(dir, { recursive: true, force: true });
});

it("a shell whose typing the journal can no longer hold is stopped with the reason on stderr, and the record says so", async () => {
  const client = await new Promise<Client>((resolve, reject) => {
    const c = new Client();
    c.on("ready", () => resolve(c));
    c.on("error", reject);
    c.connect({ host: "127.0.0.1", port: gateway.ssh!.port, username: "agent@web1", password: key, hostVerifier: () => true, readyTimeout: 10_000 });
  });
  const ended = await new Promise<{ stdout: string; stderr: string; code: number | null; typed: number }>((resolve, reject) => {
    client.shell({ term: "xterm", rows: 24, cols: 80 }, (error, channel) => {
      if (error) return reject(error);
      let stdout = "";
      let stderr = "";
      let code: number | null = null;
      let typed = 0;
      let timer: NodeJS.Timeout | undefined;
      channel.on("data", (d: Buffer) => {
        stdout += d.toString();
        // The shell answered while the store was there; now the store goes away and typing goes on.
        if (!timer && stdout.includes("before-outage")) {
          proxy.blackhole();
          timer = setInterval(() => {
            typed++;
            channel.write(`: ${"x".repeat(2000)}\n`);
          }, 10);
        }
      });
      channel.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
      channel.on("exit", (c: number | null) => (code = c));
      channel.on("close", () => {
        clearInterval(timer);
        resolve({ stdout, stderr, code, typed });
      });
      channel.write("echo before-$((1+1))-outage; echo before-outage\n");
    });
  });
  client.end();
  expect(ended.stderr).toMatch(/gatehouse: the gateway cannot record this session \(.*\); the shell was stopped/);
  expect(ended.code).toBe(1);
  // It took typing (2 KiB a line, its echo stored too, in a 64 KiB journal of 16 KiB segments), not the first line.
  expect(ended.typed).toBeGreaterThan(3);
  proxy.restore();
  const deadline = Date.now() + 20_000;
  for (;;) {
    const [session] = (await gateway.store.sessions.list({ limit: 10 })).filter((s) => s.protocol === "ssh" && s.endedUs !== null);
    const full = session && (await gateway.store.sessions.get(session.id));
    const shell = full?.events.find((e) => e.kind === "shell");
    if (full && full.events.length >= full.session.eventCount && shell) {
      expect(shell.outcome).toBe("error");
      expect(JSON.stringify(shell.details)).toMatch(/journal/i);
      break;
    }
    if (Date.now() > deadline) throw new Error("the session's record did not reach the store after it came back");
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}, 60_000);
