// The test Kubernetes API server driven by the real kubectl: what later gateway tests rely on.
import { spawn } from "node:child_process";
import { mkdtempSync, mkdirSync, writeFileSync } from "node:fs";
import { createServer as createHttpServer, get as httpRequest, type Server as HttpServer } from "node:http";
import { createServer as createTcpServer, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TmuxTerminal } from "../lib/tmux-terminal.js";
import { FrameSplitter, SpdyFramer, startKubeApiServer, type KubeApiServer, type SpdyFrame } from "../lib/kube-apiserver/index.js";

let api: KubeApiServer;
let dir: string;
let adminConfig: string;
/** What listens on web-1's port 80 for port-forward. */
let podHttp: HttpServer;

/** kubectl as a child process; asynchronous, since the API server runs on this event loop. */
function kubectl(config: string, args: string[], input?: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn("kubectl", ["--kubeconfig", config, ...args], { timeout: 30_000 });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (t: string) => (stdout += t));
  child.stderr.setEncoding("utf8").on("data", (t: string) => (stderr += t));
  child.stdin.end(input);
  return new Promise((resolve) => child.once("close", (code) => resolve({ code, stdout, stderr })));
}

/** kubectl left running (port-forward); stop() sends SIGINT as Ctrl-C would. */
function startKubectl(config: string, args: string[], env: Record<string, string> = {}) {
  const child = spawn("kubectl", ["--kubeconfig", config, ...args], { env: { ...process.env, ...env } });
  const run = { stdout: "", stderr: "", exited: new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code))), stop: async () => (child.kill("SIGINT"), await run.exited) };
  child.stdout.setEncoding("utf8").on("data", (t: string) => (run.stdout += t));
  child.stderr.setEncoding("utf8").on("data", (t: string) => (run.stderr += t));
  return run;
}

async function freePort(): Promise<number> {
  const probe = createTcpServer();
  await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

/** One GET on a connection of its own (no agent, so no keep-alive reuse). */
function httpGet(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    httpRequest({ host: "127.0.0.1", port, path, agent: false }, (res) => {
      let body = "";
      res.setEncoding("utf8").on("data", (t: string) => (body += t));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      res.on("error", reject);
    }).on("error", reject);
  });
}

beforeAll(async () => {
  podHttp = createHttpServer((req, res) => {
    const body = req.url === "/big" ? "x".repeat(3_000_000) : `web-1 answers ${req.method} ${req.url}\n`;
    res.writeHead(200, { "content-type": "text/plain", "content-length": Buffer.byteLength(body) });
    res.end(body);
  });
  await new Promise<void>((resolve) => podHttp.listen(0, "127.0.0.1", resolve));
  api = await startKubeApiServer({
    tokens: { "admin-token": { user: "connector", canImpersonate: true }, "plain-token": { user: "bob" } },
    rbac: [
      { subjects: ["connector"], verbs: ["*"], resources: ["*"] },
      { subjects: ["alice"], verbs: ["get", "list", "watch"], resources: ["pods", "pods/log"], namespaces: ["default"] },
    ],
    objects: [
      { apiVersion: "v1", kind: "Pod", metadata: { name: "web-1", namespace: "default", labels: { app: "web" } }, spec: { containers: [{ name: "app", image: "nginx" }] } },
      { apiVersion: "v1", kind: "Namespace", metadata: { name: "prod" } },
      { apiVersion: "v1", kind: "Pod", metadata: { name: "db-0", namespace: "prod", labels: { app: "db" } }, spec: { containers: [{ name: "db", image: "postgres" }] } },
    ],
    logs: { "default/web-1": ["hello", "world"] },
    followEveryMs: 50,
    portForward: { "default/web-1": { 80: (podHttp.address() as AddressInfo).port } },
  });
  dir = mkdtempSync(join(tmpdir(), "kube-apiserver-test-"));
  adminConfig = join(dir, "admin.kubeconfig");
  writeFileSync(adminConfig, api.kubeconfig("admin-token"));
});

afterAll(async () => {
  // RECORD_KUBECTL_FIXTURE=1 keeps what kubectl really sent as the request parser's fixture.
  if (process.env.RECORD_KUBECTL_FIXTURE === "1" && api) {
    const fixtureDir = join(import.meta.dirname, "../../packages/protocols/src/kubernetes/fixtures");
    mkdirSync(fixtureDir, { recursive: true });
    const kept = api.requests.map((q) => ({
      method: q.method,
      url: q.url,
      ...(q.headers.upgrade ? { upgrade: q.headers.upgrade, protocols: q.headers["sec-websocket-protocol"] } : {}),
      ...(q.headers["content-type"] ? { contentType: q.headers["content-type"] } : {}),
      status: q.status,
    }));
    writeFileSync(join(fixtureDir, "kubectl-requests.json"), JSON.stringify(kept, null, 1) + "\n");
  }
  await api?.close();
  await new Promise((resolve) => podHttp?.close(resolve));
});

describe("the test API server, driven by the real kubectl", () => {
  it("get pods -A prints a table of every namespace's pods", async () => {
    const r = (await kubectl(adminConfig, ["get", "pods", "-A"]));
    expect(r.stderr).toBe("");
    const lines = r.stdout.trim().split("\n");
    expect(lines[0]).toMatch(/^NAMESPACE\s+NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE$/);
    expect(lines.slice(1).map((l) => l.split(/\s+/).slice(0, 4).join(" "))).toEqual(["default web-1 1/1 Running", "prod db-0 1/1 Running"]);
    const list = api.requests.find((q) => q.url.startsWith("/api/v1/pods"));
    expect(String(list?.headers.accept)).toContain("as=Table");
  });

  it("get -o yaml shows the stored object", async () => {
    const r = (await kubectl(adminConfig, ["get", "pod", "web-1", "-n", "default", "-o", "yaml"]));
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("kind: Pod");
    expect(r.stdout).toMatch(/name: web-1/);
    expect(r.stdout).toMatch(/app: web/);
  });

  it("apply -f creates, then updates, and delete removes", async () => {
    const file = join(dir, "cm.yaml");
    writeFileSync(file, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  mode: one\n");
    expect((await kubectl(adminConfig, ["apply", "-f", file])).stdout.trim()).toBe("configmap/settings created");
    writeFileSync(file, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  mode: two\n");
    expect((await kubectl(adminConfig, ["apply", "-f", file])).stdout.trim()).toBe("configmap/settings configured");
    expect((await kubectl(adminConfig, ["get", "configmap", "settings", "-o", "jsonpath={.data.mode}"])).stdout).toBe("two");
    const patch = api.requests.find((q) => q.method === "PATCH" && q.url.includes("/configmaps/settings"));
    expect(patch?.headers["content-type"]).toBe("application/strategic-merge-patch+json");
    const del = (await kubectl(adminConfig, ["delete", "configmap", "settings"]));
    expect(del.stdout.trim()).toBe('configmap "settings" deleted');
    const gone = (await kubectl(adminConfig, ["get", "configmap", "settings"]));
    expect(gone.code).toBe(1);
    expect(gone.stderr.trim()).toBe('Error from server (NotFound): configmaps "settings" not found');
  });

  it("apply --server-side sends an apply patch the server merges", async () => {
    const file = join(dir, "secret.yaml");
    writeFileSync(file, "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db-password\nstringData:\n  password: hunter2\n");
    expect((await kubectl(adminConfig, ["apply", "--server-side", "-f", file])).stdout.trim()).toBe("secret/db-password serverside-applied");
    const ssa = api.requests.find((q) => q.method === "PATCH" && q.url.includes("/secrets/db-password"));
    expect(ssa?.headers["content-type"]).toBe("application/apply-patch+yaml");
    expect((await kubectl(adminConfig, ["get", "secret", "db-password", "-o", "jsonpath={.data.password}"])).stdout).toBe(Buffer.from("hunter2").toString("base64"));
  });

  it("get -w streams a pod created meanwhile", async () => {
    const child = spawn("kubectl", ["--kubeconfig", adminConfig, "get", "pods", "-n", "prod", "-w"]);
    const exited = new Promise((r) => child.once("exit", r));
    let out = "";
    child.stdout.setEncoding("utf8").on("data", (t: string) => (out += t));
    await expect.poll(() => out, { timeout: 10_000 }).toContain("db-0");
    const file = join(dir, "pod.yaml");
    writeFileSync(file, "apiVersion: v1\nkind: Pod\nmetadata:\n  name: db-1\n  namespace: prod\nspec:\n  containers:\n  - name: db\n    image: postgres\n");
    expect((await kubectl(adminConfig, ["apply", "-f", file])).stdout.trim()).toBe("pod/db-1 created");
    await expect.poll(() => out, { timeout: 10_000 }).toMatch(/db-1\s+1\/1\s+Running/);
    child.kill("SIGINT");
    await exited;
    expect(api.requests.some((q) => q.url.startsWith("/api/v1/namespaces/prod/pods?") && q.url.includes("watch=true"))).toBe(true);
  });

  it("logs -f streams a growing log until kubectl is stopped", async () => {
    const child = spawn("kubectl", ["--kubeconfig", adminConfig, "logs", "-f", "web-1"]);
    let out = "";
    child.stdout.setEncoding("utf8").on("data", (t: string) => (out += t));
    await expect.poll(() => out, { timeout: 10_000 }).toContain("tick 3");
    child.kill("SIGINT");
    await new Promise((r) => child.once("exit", r));
    expect(out.startsWith("hello\nworld\ntick 1\n")).toBe(true);
    expect(api.requests.some((q) => q.url.startsWith("/api/v1/namespaces/default/pods/web-1/log?") && q.url.includes("follow=true"))).toBe(true);
  });

  it("exec -i runs the command with stdin and returns its exit code", async () => {
    const r = await kubectl(adminConfig, ["exec", "-i", "web-1", "--", "sh", "-c", "read x; echo got-$x; echo err >&2; exit 3"], "hello\n");
    expect(r.stdout).toBe("got-hello\n");
    expect(r.stderr).toContain("err\n");
    expect(r.code).toBe(3);
    const upgrade = api.requests.find((q) => q.url.includes("/pods/web-1/exec?"));
    expect(String(upgrade?.headers["sec-websocket-protocol"])).toContain("v5.channel.k8s.io");
    expect(upgrade?.status).toBe(101);
  });

  // kubectl 1.32 tunnels SPDY/3.1 inside a WebSocket for port-forward (binary messages carrying the
  // SPDY byte stream); each forwarded connection is a pair of SPDY streams (error, data).
  it("port-forward: SPDY tunneled in a WebSocket, one stream pair per forwarded connection", async () => {
    const seen = api.requests.length;
    const local = await freePort();
    const pf = startKubectl(adminConfig, ["port-forward", "pod/web-1", `${local}:80`]);
    await expect.poll(() => pf.stdout, { timeout: 10_000 }).toContain(`Forwarding from 127.0.0.1:${local} -> 80\n`);
    expect(await httpGet(local, "/one")).toEqual({ status: 200, body: "web-1 answers GET /one\n" });
    expect(await httpGet(local, "/two")).toEqual({ status: 200, body: "web-1 answers GET /two\n" });
    const code = await pf.stop();
    expect(code).toBe(0);
    expect(pf.stdout.match(new RegExp(`Handling connection for ${local}\n`, "g"))).toHaveLength(2);
    const upgrades = api.requests.slice(seen).filter((q) => q.url.includes("/portforward"));
    expect(upgrades.map((q) => [q.method, q.url, q.headers.upgrade, q.headers["sec-websocket-protocol"], q.status])).toEqual([
      ["GET", "/api/v1/namespaces/default/pods/web-1/portforward", "websocket", "SPDY/3.1+portforward.k8s.io", 101],
    ]);
    expect(upgrades[0]!.streams!.map((s) => [s.id, s.headers.streamtype, s.headers.port, s.headers.requestid])).toEqual([
      [1, ["error"], ["80"], ["0"]],
      [3, ["data"], ["80"], ["0"]],
      [5, ["error"], ["80"], ["1"]],
      [7, ["data"], ["80"], ["1"]],
    ]);
  });

  it("port-forward: plain SPDY (Upgrade: SPDY/3.1) when kubectl is told not to use WebSockets", async () => {
    const seen = api.requests.length;
    const local = await freePort();
    const pf = startKubectl(adminConfig, ["port-forward", "pod/web-1", `${local}:80`], { KUBECTL_PORT_FORWARD_WEBSOCKETS: "false" });
    await expect.poll(() => pf.stdout, { timeout: 10_000 }).toContain(`Forwarding from 127.0.0.1:${local} -> 80\n`);
    expect(await httpGet(local, "/spdy")).toEqual({ status: 200, body: "web-1 answers GET /spdy\n" });
    const big = await httpGet(local, "/big");
    expect([big.status, big.body.length]).toEqual([200, 3_000_000]);
    await pf.stop();
    const upgrades = api.requests.slice(seen).filter((q) => q.url.includes("/portforward"));
    expect(upgrades.map((q) => [q.method, q.url, q.headers.upgrade, q.headers["x-stream-protocol-version"], q.status])).toEqual([
      ["POST", "/api/v1/namespaces/default/pods/web-1/portforward", "SPDY/3.1", "portforward.k8s.io", 101],
    ]);
  });

  it("port-forward to a pod port nothing listens on: the kubelet's error, which kubectl prints before giving up", async () => {
    const local = await freePort();
    const pf = startKubectl(adminConfig, ["port-forward", "pod/web-1", `${local}:81`]);
    await expect.poll(() => pf.stdout, { timeout: 10_000 }).toContain(`Forwarding from 127.0.0.1:${local} -> 81\n`);
    await expect(httpGet(local, "/")).rejects.toThrow();
    expect(await pf.exited).toBe(1);
    expect(pf.stderr).toMatch(new RegExp(`an error occurred forwarding ${local} -> 81: error forwarding port 81 to pod [0-9a-f]{64}, uid : failed to execute portforward in network namespace \\\\"/var/run/netns/cni-[-0-9a-f]+\\\\": failed to connect to localhost:81 inside namespace`));
    expect(pf.stderr).toContain("IPv4: dial tcp4 127.0.0.1:81: connect: connection refused IPv6 dial tcp6 [::1]:81: connect: connection refused");
    expect(pf.stderr).toContain("error: lost connection to pod\n");
  });

  it("port-forward needs create on pods/portforward", async () => {
    const seen = api.requests.length;
    const pf = startKubectl(adminConfig, ["--as", "alice", "port-forward", "pod/web-1", "0:80"]);
    expect(await pf.exited).toBe(1);
    expect(pf.stderr).toBe('error: error upgrading connection: pods "web-1" is forbidden: User "alice" cannot create resource "pods/portforward" in API group "" in the namespace "default"\n');
    expect(api.requests.slice(seen).filter((q) => q.url.includes("/portforward")).map((q) => [q.method, q.status])).toEqual([["GET", 403], ["POST", 403]]);
  });

  it("exec -it runs the command under a pty that follows the terminal's size", async () => {
    const seen = api.requests.length;
    const terminal = await TmuxTerminal.start(`kubectl --kubeconfig ${adminConfig} exec -it web-1 -- sh`, { socket: `kube-apiserver-test-${process.pid}`, exitFile: join(dir, "exec-it.exit") });
    try {
      await expect.poll(() => terminal.screen(), { timeout: 10_000 }).toMatch(/^[#$] ?$/m); // the shell prompt (capture-pane drops the trailing space)
      await terminal.type("echo hi-$((40+2))");
      await expect.poll(() => terminal.screen(), { timeout: 5_000 }).toMatch(/^hi-42$/m);
      await terminal.type("tty; echo err >&2; stty size");
      await expect.poll(() => terminal.screen(), { timeout: 5_000 }).toMatch(/^\/dev\/pts\/\d+\nerr\n30 100$/m);
      await terminal.resize(120, 40);
      await terminal.type("stty size");
      await expect.poll(() => terminal.screen(), { timeout: 5_000 }).toMatch(/^40 120$/m);
      await terminal.type("exit 3");
      await expect.poll(() => terminal.exited(), { timeout: 5_000 }).toBe("EXIT=3\n");
    } finally {
      await terminal.stop();
    }
    const upgrade = api.requests.slice(seen).find((q) => q.url.includes("/pods/web-1/exec?"));
    expect(upgrade?.url).toBe("/api/v1/namespaces/default/pods/web-1/exec?command=sh&container=app&stdin=true&stdout=true&tty=true");
    expect(upgrade?.status).toBe(101);
  });

  it("auth can-i answers from the RBAC table for the impersonated user", async () => {
    expect((await kubectl(adminConfig, ["auth", "can-i", "delete", "pods"])).stdout.trim()).toBe("yes");
    const no = (await kubectl(adminConfig, ["--as", "alice", "auth", "can-i", "delete", "pods"]));
    expect([no.code, no.stdout.trim()]).toEqual([1, "no"]);
    expect((await kubectl(adminConfig, ["--as", "alice", "auth", "can-i", "list", "pods"])).stdout.trim()).toBe("yes");
  });

  it("an impersonated request RBAC denies is a 403 in kubectl's wording", async () => {
    const r = (await kubectl(adminConfig, ["--as", "alice", "delete", "pod", "web-1"]));
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toBe('Error from server (Forbidden): pods "web-1" is forbidden: User "alice" cannot delete resource "pods" in API group "" in the namespace "default"');
    const denied = api.requests.find((q) => q.method === "DELETE" && q.headers["impersonate-user"] === "alice");
    expect(denied?.status).toBe(403);
    expect((await kubectl(adminConfig, ["get", "pod", "web-1"])).code).toBe(0);
  });

  it("a token not allowed to impersonate is refused, and a bad token is 401", async () => {
    const plain = join(dir, "plain.kubeconfig");
    writeFileSync(plain, api.kubeconfig("plain-token"));
    const r = (await kubectl(plain, ["--as", "alice", "get", "pods"]));
    expect(r.stderr).toContain('users "alice" is forbidden: User "bob" cannot impersonate resource "users" in API group "" at the cluster scope');
    const bad = join(dir, "bad.kubeconfig");
    writeFileSync(bad, api.kubeconfig("wrong"));
    const u = (await kubectl(bad, ["get", "pods"]));
    expect(u.code).toBe(1);
    expect(u.stderr).toContain("You must be logged in to the server (Unauthorized)");
  });
});

describe("SPDY/3.1 framing (port-forward's wire format)", () => {
  it("frames survive a round trip in any chunking, header blocks sharing one zlib context per direction", async () => {
    const frames: SpdyFrame[] = [
      { kind: "syn_stream", streamId: 1, associatedStreamId: 0, priority: 0, slot: 0, flags: 0, headers: { streamtype: ["error"], port: ["80"], requestid: ["0"] } },
      { kind: "syn_stream", streamId: 3, associatedStreamId: 0, priority: 2, slot: 0, flags: 0, headers: { streamtype: ["data"], port: ["80"], requestid: ["0"] } },
      { kind: "syn_reply", streamId: 3, flags: 0, headers: {} },
      { kind: "data", streamId: 3, flags: 0, data: Buffer.from("GET / HTTP/1.1\r\n\r\n") },
      { kind: "headers", streamId: 3, flags: 1, headers: { "x-multi": ["a", "b"] } },
      { kind: "data", streamId: 1, flags: 1, data: Buffer.alloc(0) },
      { kind: "rst_stream", streamId: 3, status: 5 },
      { kind: "settings", flags: 0, entries: [{ flags: 1, id: 7, value: 65536 }] },
      { kind: "window_update", streamId: 0, delta: 1 << 20 },
      { kind: "ping", id: 1 },
      { kind: "goaway", lastGoodStreamId: 3, status: 0 },
    ];
    const sender = new SpdyFramer();
    const receiver = new SpdyFramer();
    const wire: Buffer[] = [];
    for (const f of frames) wire.push(await sender.encode(f));
    // The first header block opens the zlib stream: FDICT set, and the SPDY/3 dictionary's Adler-32.
    expect(wire[0]!.subarray(18, 24).toString("hex")).toMatch(/^78..e3c6a7c2$/);
    const bytes = Buffer.concat(wire);
    const splitter = new FrameSplitter();
    const decoded: SpdyFrame[] = [];
    for (let at = 0, step = 1; at < bytes.length; at += step, step = (step * 7) % 13 + 1) {
      for (const raw of splitter.push(bytes.subarray(at, at + step))) decoded.push(await receiver.decode(raw));
    }
    expect(decoded).toEqual(frames);
    sender.close();
    receiver.close();
  });
});
