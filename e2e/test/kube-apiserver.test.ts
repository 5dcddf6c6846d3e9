// The test Kubernetes API server driven by the real kubectl: what later gateway tests rely on.
import { spawn } from "node:child_process";
import { mkdtempSync, mkdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startKubeApiServer, type KubeApiServer } from "../lib/kube-apiserver/index.js";

let api: KubeApiServer;
let dir: string;
let adminConfig: string;

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

beforeAll(async () => {
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

  // kubectl 1.32 tunnels SPDY/3.1 inside a WebSocket for port-forward, then falls back to plain
  // SPDY; this server speaks neither yet, so the test pins what kubectl sends and the refusal.
  it("port-forward: kubectl asks for SPDY over WebSocket, then SPDY, and reports the refusal", async () => {
    const child = spawn("kubectl", ["--kubeconfig", adminConfig, "port-forward", "pod/web-1", "0:80"]);
    const exited = new Promise((r) => child.once("exit", r));
    let err = "";
    child.stderr.setEncoding("utf8").on("data", (t: string) => (err += t));
    child.stdout.resume();
    await expect.poll(() => api.requests.filter((q) => q.url.includes("/portforward")).length, { timeout: 10_000 }).toBeGreaterThan(0);
    child.kill("SIGINT");
    await exited;
    const sent = api.requests.filter((q) => q.url.includes("/portforward"));
    expect(sent.map((q) => [q.method, q.url, q.headers.upgrade, q.headers["sec-websocket-protocol"] ?? q.headers["x-stream-protocol-version"], q.status])).toEqual([
      ["GET", "/api/v1/namespaces/default/pods/web-1/portforward", "websocket", "SPDY/3.1+portforward.k8s.io", 400],
      ["POST", "/api/v1/namespaces/default/pods/web-1/portforward", "SPDY/3.1", "portforward.k8s.io", 400],
    ]);
    expect(err).toContain("error upgrading connection: portforward is not served by this test server");
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
