import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, request, Agent, type Server } from "node:https";
import type { IncomingHttpHeaders } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Connector } from "@gatehouse/connector";
import { generate } from "selfsigned";
import WebSocket, { WebSocketServer } from "ws";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { validateConfig } from "../src/config/load.js";
import { startGateway, type Gateway } from "../src/gateway.js";
import { AccessKeys } from "../src/identity/access-keys.js";
import { createLogger } from "../src/logger.js";
import { jsonLogSink } from "./support/json-logs.js";
import { startTestConnector } from "./support/test-connector.js";
import { createStoreDatabase, type StoreDatabase } from "./support/store-database.js";
import { startTcpProxy, type TcpProxy } from "./support/tcp-proxy.js";
import { AUDIENCE, startTestIssuer, type TestIssuer } from "./support/oidc-issuer.js";

// The Kubernetes listener against a small HTTPS server standing in for the API server (the real
// kubectl runs against e2e's faithful one in e2e/test/kubectl.test.ts): what the cluster is sent
// (its own credential and the identity, never the client's), that bodies and responses stream, and
// strict recording — with the store cut off and a small journal, a request the journal cannot hold
// is answered 503 and never reaches the cluster.

const TOKEN = "kube-listener-test-token";
let dir: string;
let store: StoreDatabase;
let proxy: TcpProxy;
let api: Server;
let apiPort: number;
const seen: Array<{ method: string; url: string; headers: IncomingHttpHeaders; bodyBytes: number }> = [];
let gateway: Gateway;
let connector: Connector;
let key: string;
let ca: string;
let issuer: TestIssuer;
const logs: Array<Record<string, unknown>> = [];
let execStdinBytes = 0;
const agent = new Agent({ keepAlive: true });

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "gatehouse-kube-listener-"));
  issuer = await startTestIssuer([{ id: "robot", secret: "robot-secret", groups: ["sre", "oncall"] }]);
  store = await createStoreDatabase("gatehouse_kube_listener");
  proxy = await startTcpProxy({ host: "127.0.0.1", port: Number(new URL(store.url()).port || 5432) });
  const pems = await generate([{ name: "commonName", value: "kube-apiserver" }], {
    keyType: "ec",
    curve: "P-256",
    algorithm: "sha256",
    extensions: [{ name: "subjectAltName", altNames: [{ type: 2, value: "localhost" }, { type: 7, ip: "127.0.0.1" }] }],
  } as Parameters<typeof generate>[1]);
  // The stand-in API server: records what it was sent; /big answers N bytes; /echo sends the body back.
  api = createServer({ cert: pems.cert, key: pems.private }, (req, res) => {
    let bodyBytes = 0;
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => {
      bodyBytes += c.length;
      if (req.url?.startsWith("/echo")) chunks.push(c);
    });
    req.on("end", () => {
      seen.push({ method: req.method!, url: req.url!, headers: req.headers, bodyBytes });
      const big = /^\/big\?bytes=(\d+)/.exec(req.url ?? "");
      if (big) {
        res.writeHead(200, { "Content-Type": "application/octet-stream" });
        const block = Buffer.alloc(64 * 1024, "x");
        let left = Number(big[1]);
        const pump = () => {
          while (left > 0) {
            const n = Math.min(left, block.length);
            left -= n;
            if (!res.write(block.subarray(0, n))) return void res.once("drain", pump);
          }
          res.end();
        };
        return pump();
      }
      if (req.url?.startsWith("/echo")) return res.end(Buffer.concat(chunks));
      res.writeHead(200, { "Content-Type": "application/json" });
      res.end(JSON.stringify({ kind: "PodList", apiVersion: "v1", items: [] }));
    });
  });
  // exec: stdin (channel 0) is counted and echoed on stdout (1); "exit N" on stdin ends with that exit code (3).
  const wss = new WebSocketServer({ server: api, handleProtocols: (protocols) => (protocols.has("v5.channel.k8s.io") ? "v5.channel.k8s.io" : false) });
  wss.on("connection", (socket) => {
    socket.on("message", (data: Buffer) => {
      if (data[0] !== 0) return;
      execStdinBytes += data.length - 1;
      const text = data.subarray(1).toString();
      const exit = /^exit (\d+)/.exec(text);
      if (exit) {
        const code = Number(exit[1]);
        const status = code === 0 ? { metadata: {}, status: "Success" } : { metadata: {}, status: "Failure", reason: "NonZeroExitCode", message: `command terminated with non-zero exit code: exit status ${code}`, details: { causes: [{ reason: "ExitCode", message: String(code) }] } };
        socket.send(Buffer.concat([Buffer.from([3]), Buffer.from(JSON.stringify(status))]));
        socket.close();
      } else {
        socket.send(Buffer.concat([Buffer.from([1]), Buffer.from(`echo:${text}`)]));
      }
    });
  });
  await new Promise<void>((resolve) => api.listen(0, "127.0.0.1", resolve));
  apiPort = (api.address() as { port: number }).port;
  const kubeconfig = join(dir, "connector.kubeconfig");
  writeFileSync(
    kubeconfig,
    JSON.stringify({
      apiVersion: "v1",
      kind: "Config",
      clusters: [{ name: "c", cluster: { server: `https://localhost:${apiPort}`, "certificate-authority-data": Buffer.from(pems.cert).toString("base64") } }],
      users: [{ name: "u", user: { token: "connector-own-token" } }],
      contexts: [{ name: "x", context: { cluster: "c", user: "u" } }],
      "current-context": "x",
    }),
  );
  gateway = await startGateway(
    validateConfig({
      dataDir: join(dir, "data"),
      store: { url: store.url({ host: "127.0.0.1", port: proxy.port }), maxConnections: 2 },
      listen: { api: "127.0.0.1:0", kubernetes: "127.0.0.1:0" },
      identity: { oidc: { issuer: issuer.issuer, audience: AUDIENCE, ca: issuer.caFile } },
      recording: { mode: "strict", journal: { segmentBytes: 16 * 1024, maxBytes: 64 * 1024 }, kubernetes: { bodyBytes: 8 * 1024 } },
      connectors: [{ name: "dc1", tokenSha256: createHash("sha256").update(TOKEN).digest("hex") }],
      connections: [
        { name: "k8s", protocol: "kubernetes", connector: "dc1", target: { host: "127.0.0.1", port: apiPort, kubeconfig }, allow: [{ identity: "agent" }, { group: "sre" }] },
      ],
    }),
    { logger: createLogger("debug", jsonLogSink(logs)) },
  );
  key = (await new AccessKeys(gateway.store, () => Date.now() * 1000).create("agent")).key;
  const endpoint = (await (await fetch(`${gateway.apiUrl}/api/v1/kubernetes/endpoint`, { headers: { Authorization: `Bearer ${gatewayAdminToken()}` } })).json()) as { certificatePem: string };
  ca = endpoint.certificatePem;
  connector = await startTestConnector(gateway.apiUrl, TOKEN, `127.0.0.1:${apiPort}`, logs);
}, 60_000);

afterAll(async () => {
  agent.destroy();
  await connector?.stop();
  proxy?.restore();
  await gateway?.close({ graceMs: 0 });
  await proxy?.close();
  await new Promise((resolve) => api?.close(resolve));
  await store?.drop();
  await issuer?.close();
  rmSync(dir, { recursive: true, force: true });
});

function gatewayAdminToken(): string {
  return readFileSync(join(dir, "data", "admin-token"), "utf8").trim();
}

function call(method: string, path: string, options: { body?: Buffer; headers?: Record<string, string> } = {}): Promise<{ status: number; body: Buffer; headers: IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: "127.0.0.1",
        port: gateway.kubernetes!.port,
        method,
        path: `/k8s/k8s${path}`,
        ca,
        servername: "localhost",
        agent,
        headers: { Authorization: `Bearer agent:${key}`, ...options.headers, ...(options.body ? { "Content-Length": String(options.body.length) } : {}) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode!, body: Buffer.concat(chunks), headers: res.headers }));
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end(options.body);
  });
}

/** An exec over the remote command WebSocket protocol, as kubectl opens it. */
function openExec(): Promise<WebSocket> {
  const socket = new WebSocket(`wss://127.0.0.1:${gateway.kubernetes!.port}/k8s/k8s/api/v1/namespaces/default/pods/web-1/exec?command=sh&stdin=true&stdout=true`, ["v5.channel.k8s.io", "v4.channel.k8s.io"], {
    ca,
    headers: { Authorization: `Bearer agent:${key}` },
  });
  return new Promise((resolve, reject) => {
    socket.once("open", () => resolve(socket));
    socket.once("error", reject);
  });
}

const stdin = (text: string) => Buffer.concat([Buffer.from([0]), Buffer.from(text)]);

describe("the kubernetes listener", () => {
  it("follows an exec: stdin and stdout into its recorded stream, the exit code from the error channel", async () => {
    const socket = await openExec();
    const received: Buffer[] = [];
    socket.on("message", (data: Buffer) => received.push(data));
    const closed = new Promise((resolve) => socket.once("close", resolve));
    socket.send(stdin("hello\n"));
    await new Promise((resolve) => setTimeout(resolve, 200));
    socket.send(stdin("exit 4\n"));
    await closed;
    expect(received.map((m) => [m[0], m.subarray(1).toString()])).toEqual([
      [1, "echo:hello\n"],
      [3, expect.stringContaining("NonZeroExitCode")],
    ]);
    const deadline = Date.now() + 15_000;
    for (;;) {
      const sessions = (await gateway.store.sessions.list({ limit: 20 })).filter((x) => x.protocol === "kubernetes" && x.endedUs !== null);
      const full = await Promise.all(sessions.map((x) => gateway.store.sessions.get(x.id)));
      const exec = full.flatMap((f) => f?.events ?? []).find((e) => e.kind === "exec");
      if (exec) {
        expect(exec.command).toBe("exec pods/web-1 -n default -- sh");
        expect(exec.outcome).toBe("error");
        expect(exec.details).toMatchObject({ exitCode: 4, reason: "NonZeroExitCode", subprotocol: "v5.channel.k8s.io", stream: { bytesIn: "hello\nexit 4\n".length, bytesOut: "echo:hello\n".length } });
        break;
      }
      if (Date.now() > deadline) throw new Error("no exec event recorded");
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  });

  it("sends the cluster the connector's credential and the identity; the client's own never", async () => {
    const r = await call("GET", "/api/v1/namespaces/default/pods", { headers: { "Impersonate-User": "system:admin", "Impersonate-Group": "system:masters", "Impersonate-Extra-scopes": "all" } });
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body.toString()).kind).toBe("PodList");
    const got = seen.at(-1)!;
    expect(got.url).toBe("/api/v1/namespaces/default/pods");
    expect(got.headers.authorization).toBe("Bearer connector-own-token");
    expect(got.headers["impersonate-user"]).toBe("agent");
    expect(got.headers["impersonate-group"]).toBeUndefined();
    expect(got.headers["impersonate-extra-scopes"]).toBeUndefined();
    expect(got.headers.host).toBe(`localhost:${apiPort}`);
  });

  it("an OIDC access token is a bearer credential too: the cluster sees the token's identity and groups", async () => {
    const token = await issuer.token("robot");
    const r = await call("GET", "/api/v1/namespaces/default/pods", { headers: { Authorization: `Bearer ${token}` } });
    expect(r.status).toBe(200);
    const got = seen.at(-1)!;
    expect(got.headers["impersonate-user"]).toBe("robot");
    expect(got.headers["impersonate-group"]).toBe("sre, oncall");
    expect(got.headers.authorization).toBe("Bearer connector-own-token");
  });

  it("streams a large response and a body past the record's cap, byte for byte", async () => {
    const big = await call("GET", "/big?bytes=20000000");
    expect(big.status).toBe(200);
    expect(big.body.length).toBe(20_000_000);
    const body = Buffer.alloc(3 * 1024 * 1024, "y");
    const echo = await call("PUT", "/echo", { body, headers: { "Content-Type": "application/json" } });
    expect(echo.status).toBe(200);
    expect(echo.body.equals(body)).toBe(true);
  });

  it("without credentials: 401 with a Status body; with a wrong key: 401; neither reaches the cluster", async () => {
    const before = seen.length;
    const none = await call("GET", "/api/v1/pods", { headers: { Authorization: "" } });
    expect(none.status).toBe(401);
    expect(JSON.parse(none.body.toString())).toMatchObject({ kind: "Status", reason: "Unauthorized", code: 401 });
    const wrong = await call("GET", "/api/v1/pods", { headers: { Authorization: "Bearer agent:gh_wrong" } });
    expect(wrong.status).toBe(401);
    expect(seen.length).toBe(before);
  });

  it("strict: with the store cut off, a request the full journal cannot hold gets 503 and never reaches the cluster", async () => {
    proxy.blackhole();
    try {
      const body = Buffer.alloc(6 * 1024, "z");
      let refused: { status: number; body: Buffer } | undefined;
      let sent = 0;
      for (let i = 0; i < 200 && !refused; i++) {
        const before = seen.length;
        const r = await call("POST", `/echo?n=${i}`, { body, headers: { "Content-Type": "application/json" } });
        if (r.status === 503) {
          refused = r;
          // Not relayed: the stand-in API server saw nothing for it.
          expect(seen.length).toBe(before);
        } else {
          expect(r.status).toBe(200);
          sent++;
        }
      }
      expect(refused, "the journal never filled").toBeDefined();
      // At least one went through before the journal filled (earlier tests' backlog may take part of it).
      expect(sent, `sent before the refusal; refusal: ${refused!.body.toString()}`).toBeGreaterThan(0);
      expect(JSON.parse(refused!.body.toString()).message).toMatch(/gatehouse: the gateway cannot record this request \(its journal is full\); it was not sent to the cluster/);
    } finally {
      proxy.restore();
    }
  });

  it("strict: exec stdin reaches the cluster only once durable — with the store cut off, the journal fills and the exec is stopped", async () => {
    // The previous test's backlog ships first: wait until requests go through again.
    const ready = Date.now() + 20_000;
    while ((await call("GET", "/api/v1/pods")).status !== 200) {
      if (Date.now() > ready) throw new Error("the journal did not drain");
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    const socket = await openExec();
    socket.on("message", () => undefined);
    const closed = new Promise((resolve) => socket.once("close", resolve));
    const before = execStdinBytes;
    proxy.blackhole();
    try {
      const line = `${"s".repeat(4000)}\n`;
      let sent = 0;
      for (let i = 0; i < 100 && socket.readyState === WebSocket.OPEN; i++) {
        socket.send(stdin(line));
        sent += line.length;
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      await closed;
      const reached = execStdinBytes - before;
      // Some got through while the journal had room; the rest never reached the cluster.
      expect(reached).toBeGreaterThan(0);
      expect(reached).toBeLessThan(sent);
      expect(reached).toBeLessThan(64 * 1024);
    } finally {
      proxy.restore();
    }
  });
});
