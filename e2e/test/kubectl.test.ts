// The real kubectl through the gateway, with the kubeconfig `gatehouse kubeconfig` writes, to e2e's
// test API server: what a cluster admin checks — the commands work as they do directly, every API
// request is one event naming what it did and how it ended, refusals are Kubernetes errors kubectl
// prints, and the cluster sees the agent's identity (impersonation), never the agent's credential.
import { createServer as createHttpServer, get as httpGet, type Server as HttpServer } from "node:http";
import { createServer as createTcpServer, type AddressInfo } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { IDENTITY, startKubeStack, type KubeStack } from "../lib/kube-stack.js";
import { TmuxTerminal } from "../lib/tmux-terminal.js";
import type { EventJson, Recorded } from "../lib/postgres-stack.js";

let stack: KubeStack;
/** What listens on web-1's port 80, for port-forward. */
let podHttp: HttpServer;

beforeAll(async () => {
  podHttp = createHttpServer((req, res) => res.end(`web-1 answers ${req.method} ${req.url}\n`));
  await new Promise<void>((resolve) => podHttp.listen(0, "127.0.0.1", resolve));
  stack = await startKubeStack({ apiServer: { portForward: { "default/web-1": { 80: (podHttp.address() as AddressInfo).port } } } });
}, 120_000);

afterAll(async () => {
  await stack?.stop();
  await new Promise((resolve) => podHttp?.close(resolve));
});

async function freePort(): Promise<number> {
  const probe = createTcpServer();
  await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

/** One GET on a connection of its own. */
function get(port: number, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    httpGet({ host: "127.0.0.1", port, path, agent: false }, (res) => {
      let body = "";
      res.setEncoding("utf8").on("data", (t: string) => (body += t));
      res.on("end", () => resolve(body));
    }).on("error", reject);
  });
}

const requests = (r: Recorded) => r.events.filter((e) => e.kind === "request" || e.kind === "exec");
const detail = (e: EventJson, key: string) => (e.details as Record<string, unknown> | null)?.[key];

describe("kubectl through the gateway", () => {
  it("get pods -A prints the cluster's table, and the record holds the list with its outcome", async () => {
    const r = await stack.kubectl(["get", "pods", "-A"]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split("\n");
    expect(lines[0]).toMatch(/^NAMESPACE\s+NAME\s+READY\s+STATUS/);
    expect(lines.slice(1).map((l) => l.split(/\s+/).slice(0, 2).join(" "))).toEqual(["default web-1", "prod db-0"]);

    const session = await stack.sessionWith("get pods -A");
    expect(session.session.identity.name).toBe(IDENTITY);
    expect(session.session.connection).toBe("k8s");
    const list = requests(session).find((e) => e.command === "get pods -A")!;
    expect(list.outcome).toBe("ok");
    expect(detail(list, "verb")).toBe("list");
    expect(detail(list, "resource")).toBe("pods");
    expect(detail(list, "httpStatus")).toBe(200);
    expect(Number(detail(list, "bytesOut"))).toBeGreaterThan(100);
    expect(String(detail(list, "userAgent"))).toMatch(/^kubectl/);
    // The API server saw the agent, by impersonation, and the connector's own token — never the agent's key.
    const seen = stack.api.requests.filter((q) => q.url.startsWith("/api/v1/pods"));
    expect(seen.length).toBeGreaterThan(0);
    for (const q of seen) {
      expect(q.headers["impersonate-user"]).toBe(IDENTITY);
      expect(q.headers.authorization).toBe("Bearer connector-token");
    }
  });

  it("get -o yaml shows the stored object", async () => {
    const r = await stack.kubectl(["get", "pod", "web-1", "-n", "default", "-o", "yaml"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("kind: Pod");
    expect(r.stdout).toMatch(/app: web/);
  });

  it("apply -f creates and updates, delete removes; each change recorded with its body, Secrets redacted", async () => {
    const manifest = (value: string) =>
      JSON.stringify({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "settings", namespace: "default" }, data: { mode: value } });
    let r = await stack.kubectl(["apply", "-f", "-"], { input: manifest("one") });
    expect(r.stderr).toBe("");
    expect(r.stdout.trim()).toBe("configmap/settings created");
    r = await stack.kubectl(["apply", "-f", "-"], { input: manifest("two") });
    expect(r.stdout.trim()).toBe("configmap/settings configured");
    r = await stack.kubectl(["get", "configmap", "settings", "-n", "default", "-o", "jsonpath={.data.mode}"]);
    expect(r.stdout).toBe("two");
    r = await stack.kubectl(["delete", "configmap", "settings", "-n", "default"]);
    expect(r.stdout.trim()).toBe('configmap "settings" deleted');
    r = await stack.kubectl(["get", "configmap", "settings", "-n", "default"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('configmaps "settings" not found');

    const secret = JSON.stringify({ apiVersion: "v1", kind: "Secret", metadata: { name: "db-pass", namespace: "default" }, stringData: { password: "hunter2-very-secret" } });
    r = await stack.kubectl(["apply", "-f", "-"], { input: secret });
    expect(r.stdout.trim()).toBe("secret/db-pass created");

    const created = await stack.sessionWith("create configmaps");
    const create = requests(created).find((e) => e.command?.startsWith("create configmaps"))!;
    expect(create.outcome).toBe("ok");
    expect(detail(create, "httpStatus")).toBe(201);
    expect(String(create.params?.[0])).toContain('"mode":"one"');
    const deleted = await stack.sessionWith("delete configmaps/settings");
    const del = requests(deleted).find((e) => e.command?.startsWith("delete configmaps/settings"))!;
    expect(del.outcome).toBe("ok");
    expect(detail(del, "namespace")).toBe("default");
    const notFound = await stack.sessionWith("get configmaps/settings -n default");
    const missing = requests(notFound).filter((e) => e.command?.startsWith("get configmaps/settings")).at(-1)!;
    expect(missing.outcome).toBe("error");
    expect(detail(missing, "httpStatus")).toBe(404);
    expect(detail(missing, "reason")).toBe("NotFound");

    const secretSession = await stack.sessionWith("create secrets");
    const text = JSON.stringify(secretSession.events);
    expect(text).not.toContain("hunter2-very-secret");
    const createSecret = requests(secretSession).find((e) => e.command?.startsWith("create secrets"))!;
    expect(String(createSecret.params?.[0])).toContain("REDACTED");
  });

  it("logs -f streams until stopped, and its one event ends with the stream", async () => {
    const follow = await stack.spawnKubectl(["logs", "-f", "web-1", "-n", "default"]);
    const deadline = Date.now() + 15_000;
    while (!/tick 3/.test(follow.output()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(follow.output()).toMatch(/^hello\nworld\ntick 1\ntick 2\ntick 3/);
    await follow.stop();
    const session = await stack.sessionWith("logs pods/web-1");
    const logs = requests(session).find((e) => e.command?.startsWith("logs pods/web-1"))!;
    // kubectl names the pod's default container itself.
    expect(logs.command).toBe("logs pods/web-1 -n default -c app -f");
    expect(detail(logs, "verb")).toBe("logs");
    expect(detail(logs, "endedBy")).toBe("client");
    expect(Number(detail(logs, "bytesOut"))).toBeGreaterThan(20);
  });

  it("exec -i runs the command with stdin, passes its exit code, and records the stream", async () => {
    const r = await stack.kubectl(["exec", "-i", "web-1", "-n", "default", "--", "sh", "-c", "read x; echo got-$x; echo oops >&2; exit 7"], { input: "ping-42\n" });
    expect(r.stdout).toBe("got-ping-42\n");
    expect(r.stderr).toContain("oops");
    expect(r.code).toBe(7);
    const session = await stack.sessionWith("exec pods/web-1");
    const exec = session.events.find((e) => e.kind === "exec")!;
    expect(exec.command).toBe("exec pods/web-1 -n default -c app -- sh -c 'read x; echo got-$x; echo oops >&2; exit 7'");
    expect(exec.outcome).toBe("error");
    expect(detail(exec, "exitCode")).toBe(7);
    const summary = detail(exec, "stream") as { streamId: number; bytesIn: number; bytesOut: number };
    expect(summary.bytesIn).toBe("ping-42\n".length);
    expect(summary.bytesOut).toBe("got-ping-42\n".length + "oops\n".length);
    const jsonl = await fetch(`${stack.gateway.apiUrl}/api/v1/sessions/${session.session.id}/streams/${summary.streamId}?format=jsonl`, {
      headers: { Authorization: `Bearer ${stack.gateway.adminToken}` },
    }).then((res) => res.text());
    const chunks = jsonl.trim().split("\n").slice(1).map((l) => JSON.parse(l) as { direction: string; data: string });
    const text = (direction: string) => chunks.filter((c) => c.direction === direction).map((c) => Buffer.from(c.data, "base64").toString()).join("");
    expect(text("i")).toBe("ping-42\n");
    expect(text("o")).toBe("got-ping-42\n");
    expect(text("e")).toBe("oops\n");
  });

  it("exec -it in a terminal: a shell under a pty, resized with the window, replayable from the record", async () => {
    const config = await stack.kubeconfig("k8s");
    const env = Object.entries(stack.env()).map(([k, v]) => `${k}=${v}`).join(" ");
    const terminal = await TmuxTerminal.start(`env ${env} kubectl --kubeconfig ${config} exec -it web-1 -n default -- sh`, { socket: `kubectl-gw-test-${process.pid}`, exitFile: join(stack.gateway.dir, "exec-it.exit") });
    try {
      await expect.poll(() => terminal.screen(), { timeout: 15_000 }).toMatch(/^[#$] ?$/m);
      await terminal.type("echo typed-$((40+2))");
      await expect.poll(() => terminal.screen(), { timeout: 5_000 }).toMatch(/^typed-42$/m);
      await terminal.resize(120, 40);
      await terminal.type("stty size");
      await expect.poll(() => terminal.screen(), { timeout: 5_000 }).toMatch(/^40 120$/m);
      await terminal.type("exit 3");
      await expect.poll(() => terminal.exited(), { timeout: 10_000 }).toBe("EXIT=3\n");
    } finally {
      await terminal.stop();
    }
    // Not sessionWith: the exec -i test's command starts with the same words.
    const isShell = (e: EventJson) => e.kind === "exec" && e.command === "exec pods/web-1 -n default -c app -- sh";
    let session: Recorded | undefined;
    await expect.poll(async () => (session = (await stack.waitForSessions((s) => s.connection === "k8s", { count: 1 })).find((r) => r.events.some(isShell))), { timeout: 15_000 }).toBeDefined();
    const exec = session!.events.find(isShell)!;
    expect(detail(exec, "tty")).toBe(true);
    expect(detail(exec, "exitCode")).toBe(3);
    const summary = detail(exec, "stream") as { streamId: number };
    const out = await stack.cli(["sessions", "export", session!.session.id, "--format", "asciicast", "--stream", String(summary.streamId)]);
    expect(out.code).toBe(0);
    const [header, ...frames] = out.stdout.trim().split("\n").map((l) => JSON.parse(l) as unknown);
    expect(header).toMatchObject({ version: 2 });
    const played = (frames as [number, string, string][]).filter((f) => f[1] === "o").map((f) => f[2]).join("");
    expect(played).toContain("typed-42");
    expect((frames as [number, string, string][]).some((f) => f[1] === "r" && f[2] === "120x40")).toBe(true);
  });

  it("port-forward to a local HTTP server, through the gateway (SPDY in a WebSocket, relayed as bytes)", async () => {
    const local = await freePort();
    const pf = await stack.spawnKubectl(["port-forward", "pod/web-1", "-n", "default", `${local}:80`]);
    await expect.poll(() => pf.output(), { timeout: 15_000 }).toContain(`Forwarding from 127.0.0.1:${local} -> 80`);
    expect(await get(local, "/one")).toBe("web-1 answers GET /one\n");
    expect(await get(local, "/two")).toBe("web-1 answers GET /two\n");
    await pf.stop();
    const session = await stack.sessionWith("port-forward pods/web-1");
    const forward = requests(session).find((e) => e.command?.startsWith("port-forward pods/web-1"))!;
    expect(detail(forward, "verb")).toBe("portforward");
    expect(detail(forward, "httpStatus")).toBe(101);
    expect(detail(forward, "subprotocol")).toBe("SPDY/3.1+portforward.k8s.io");
    expect(Number(detail(forward, "bytesOut"))).toBeGreaterThan(40);
  });

  it("auth can-i answers for the agent's own identity", async () => {
    const yes = await stack.kubectl(["auth", "can-i", "delete", "pods", "-n", "prod"]);
    expect(yes.stdout.trim()).toBe("yes");
    const bob = await stack.kubectl(["auth", "can-i", "delete", "pods", "-n", "prod"], { identity: "bob" });
    expect(bob.stdout.trim()).toBe("no");
    expect(bob.code).toBe(1);
  });

  it("the cluster's RBAC decides as the identity: bob may list pods, not delete them (403 recorded)", async () => {
    const list = await stack.kubectl(["get", "pods", "-n", "default"], { identity: "bob" });
    expect(list.code).toBe(0);
    const del = await stack.kubectl(["delete", "pod", "web-1", "-n", "default"], { identity: "bob" });
    expect(del.code).toBe(1);
    expect(del.stderr).toMatch(/Error from server \(Forbidden\): pods "web-1" is forbidden: User "bob" cannot delete resource "pods"/);
    const session = await stack.sessionWith("delete pods/web-1");
    expect(session.session.identity.name).toBe("bob");
    const refused = requests(session).find((e) => e.command?.startsWith("delete pods/web-1"))!;
    expect(refused.outcome).toBe("error");
    expect(detail(refused, "httpStatus")).toBe(403);
    expect(detail(refused, "reason")).toBe("Forbidden");
  });

  it("an identity the connection does not allow gets 403 from the gateway, recorded as denied", async () => {
    const r = await stack.kubectl(["get", "pods"], { connection: "k8s-locked" });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/Error from server \(Forbidden\).*gatehouse: access denied/);
    const [denied] = await stack.waitForSessions((s) => s.connection === "k8s-locked");
    expect(denied!.events.some((e) => e.kind === "denied")).toBe(true);
  });

  it("get -w prints changes as they happen; the watch is one event that ends when kubectl stops", async () => {
    const watch = await stack.spawnKubectl(["get", "configmaps", "-n", "default", "-w", "--output-watch-events"]);
    await new Promise((r) => setTimeout(r, 1500));
    // apply (JSON): `kubectl create configmap` sends protobuf, which the test API server does not read.
    const made = await stack.kubectl(["apply", "-f", "-"], { input: JSON.stringify({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "watched-1", namespace: "default" }, data: { a: "b" } }) });
    expect(made.stderr).toBe("");
    expect(made.code).toBe(0);
    const deadline = Date.now() + 15_000;
    while (!/ADDED\s+watched-1/.test(watch.output()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(watch.output()).toMatch(/ADDED\s+watched-1/);
    await watch.stop();
    const session = await stack.sessionWith("get configmaps -n default --watch");
    const event = requests(session).find((e) => e.command === "get configmaps -n default --watch")!;
    expect(detail(event, "verb")).toBe("watch");
    expect(detail(event, "endedBy")).toBe("client");
    expect(Number(detail(event, "bytesOut"))).toBeGreaterThan(0);
  });

  it("a connection whose connector is not connected gets 503, recorded", async () => {
    const r = await stack.kubectl(["get", "pods"], { connection: "k8s-nowhere" });
    expect(r.code).toBe(1);
    // kubectl prints its own words for a 503; the gateway's reason is in the body (kubectl -v=8) and the record.
    expect(r.stderr).toMatch(/Error from server \(ServiceUnavailable\)/);
    const [refused] = await stack.waitForSessions((s) => s.connection === "k8s-nowhere");
    const connect = refused!.events.find((e) => e.kind === "connect")!;
    expect(connect.outcome).toBe("error");
    expect(detail(connect, "code")).toBe("connector_unavailable");
  });

  it("every recorded kubernetes session verifies (hash chain, seal, exec streams)", async () => {
    const out = await stack.cli(["verify", "--all"]);
    expect(out.stderr).toBe("");
    expect(out.code).toBe(0);
    expect(out.stdout).toMatch(/ok/i);
  });

  it("a wrong access key gets 401, recorded as auth_failed; nothing reaches the cluster", async () => {
    const before = stack.api.requests.length;
    const r = await stack.kubectl(["get", "pods"], { key: "gh_not-a-real-key" });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/Unauthorized|must be logged in/);
    expect(stack.api.requests.length).toBe(before);
    const [failed] = await stack.waitForSessions((s) => s.protocol === "kubernetes" && s.endReason === "auth_failed");
    expect(failed!.events[0]!.kind).toBe("auth_failed");
  });

  it("impersonate: false uses the connector's own account", async () => {
    const r = await stack.kubectl(["auth", "whoami", "-o", "jsonpath={.status.userInfo.username}"], { connection: "k8s-as-self" });
    if (r.code === 0) expect(r.stdout).toBe("gatehouse-connector");
    const last = stack.api.requests.filter((q) => !q.headers["impersonate-user"]).at(-1);
    expect(last?.headers.authorization).toBe("Bearer connector-token");
  });
});
