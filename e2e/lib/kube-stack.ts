import { spawn } from "node:child_process";
import { chmodSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { startKubeApiServer, type KubeApiServer, type KubeApiServerOptions } from "./kube-apiserver/index.js";
import { CLI, newToken, runCli, startConnectorProcess, startGatewayProcess, tempDir, type Proc, type RunningGateway } from "./processes.js";
import { IDENTITY, type Recorded, type SessionJson } from "./postgres-stack.js";

// One gateway + connector in front of e2e's test Kubernetes API server, shared by the tests of one
// file (as ssh-stack.ts does for sshd). The connector reaches the API server with a kubeconfig of
// its own (a token that may impersonate); kubectl reaches the gateway with the kubeconfig
// `gatehouse kubeconfig` writes, its exec plugin giving IDENTITY's access key.
//
// Connections, all to the same API server:
//   k8s          allowed to `agent` and `bob`; the connector impersonates the identity
//   k8s-as-self  allowed to `agent`; impersonate: false (the connector's own account)
//   k8s-locked   allowed only to `someone-else`
//   k8s-nowhere  allowed to `agent`, through connector dc2, which never connects

export { IDENTITY };

export interface KubeStack {
  api: KubeApiServer;
  gateway: RunningGateway;
  connector: Proc;
  listen: { host: string; port: number };
  /** Access keys by identity (agent, bob). */
  keys: Record<string, string>;
  /** A kubeconfig for `connection` as `identity` (written by `gatehouse kubeconfig`), its path. */
  kubeconfig(connection: string, identity?: string): Promise<string>;
  /** kubectl with that kubeconfig; the exec plugin finds `identity`'s key in its environment. */
  kubectl(args: string[], options?: { connection?: string; identity?: string; input?: string; key?: string; timeoutMs?: number }): Promise<{ code: number | null; stdout: string; stderr: string }>;
  /** kubectl started and left running (logs -f, port-forward), with its output so far. */
  spawnKubectl(args: string[], options?: { connection?: string; identity?: string }): Promise<{ output: () => string; stop: () => Promise<number | null> }>;
  /** The environment kubectl runs in for `identity` (its access key for the exec plugin). */
  env(identity?: string): Record<string, string>;
  gatewayApi<T>(path: string): Promise<T>;
  /** Polls until `count` ended sessions match, then returns them with their events. */
  waitForSessions(match: (s: SessionJson) => boolean, options?: { count?: number; timeoutMs?: number }): Promise<Recorded[]>;
  /** The newest ended session with an event whose command contains `marker`. */
  sessionWith(marker: string, options?: { timeoutMs?: number }): Promise<Recorded>;
  cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }>;
  stop(): Promise<void>;
}

export async function startKubeStack(options: { apiServer?: Partial<KubeApiServerOptions>; recording?: Record<string, unknown>; storeUrl?: string } = {}): Promise<KubeStack> {
  const cleanups: Array<() => Promise<unknown>> = [];
  const stop = async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
  };
  try {
    const api = await startKubeApiServer({
      tokens: { "connector-token": { user: "gatehouse-connector", canImpersonate: true } },
      rbac: [
        { subjects: ["gatehouse-connector"], verbs: ["*"], resources: ["*"] },
        { subjects: [IDENTITY], verbs: ["*"], resources: ["*"] },
        { subjects: ["bob"], verbs: ["get", "list", "watch"], resources: ["pods"], namespaces: ["default"] },
      ],
      objects: [
        { apiVersion: "v1", kind: "Pod", metadata: { name: "web-1", namespace: "default", labels: { app: "web" } }, spec: { containers: [{ name: "app", image: "nginx" }] } },
        { apiVersion: "v1", kind: "Namespace", metadata: { name: "prod" } },
        { apiVersion: "v1", kind: "Pod", metadata: { name: "db-0", namespace: "prod", labels: { app: "db" } }, spec: { containers: [{ name: "db", image: "postgres" }] } },
      ],
      logs: { "default/web-1": ["hello", "world"] },
      followEveryMs: 50,
      ...options.apiServer,
    });
    cleanups.push(() => api.close());
    const dir = tempDir("gatehouse-e2e-kube-");
    cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
    const connectorKubeconfig = join(dir, "connector.kubeconfig");
    writeFileSync(connectorKubeconfig, api.kubeconfig("connector-token"));
    const server = new URL(api.url);
    const target = { host: server.hostname, port: Number(server.port), kubeconfig: connectorKubeconfig };

    const dc1 = newToken();
    const gateway = await startGatewayProcess({
      listen: { api: "127.0.0.1:0", kubernetes: "127.0.0.1:0" },
      tunnel: { pingIntervalMs: 1000, deadAfterMs: 3000 },
      connectors: [
        { name: "dc1", tokenSha256: dc1.sha256 },
        { name: "dc2", tokenSha256: newToken().sha256 },
      ],
      connections: [
        { name: "k8s", protocol: "kubernetes", connector: "dc1", target, allow: [{ identity: IDENTITY }, { identity: "bob" }] },
        { name: "k8s-as-self", protocol: "kubernetes", connector: "dc1", target, impersonate: false, allow: [{ identity: IDENTITY }] },
        { name: "k8s-locked", protocol: "kubernetes", connector: "dc1", target, allow: [{ identity: "someone-else" }] },
        { name: "k8s-nowhere", protocol: "kubernetes", connector: "dc2", target, allow: [{ identity: IDENTITY }] },
      ],
      ...(options.recording ? { recording: options.recording } : {}),
      ...(options.storeUrl ? { store: { url: options.storeUrl } } : {}),
    });
    cleanups.push(async () => {
      await gateway.proc.stop();
      rmSync(gateway.dir, { recursive: true, force: true });
    });
    const started = gateway.proc.lines.find((l) => l.msg === "gateway started")!;
    const listen = started.kubernetes as { host: string; port: number } | undefined;
    if (!listen) throw new Error(`the gateway did not report a kubernetes listener: ${JSON.stringify(started)}`);
    const connector = await startConnectorProcess({ gateway: gateway.apiUrl, name: "dc1", token: dc1.token, allow: `${target.host}:${target.port}` });
    cleanups.push(() => connector.stop());
    await gateway.proc.waitFor((l) => l.msg === "connector connected" && l.connector === "dc1");

    const cli = (args: string[]) => runCli(args, { cwd: gateway.dir });
    const keys: Record<string, string> = {};
    for (const identity of [IDENTITY, "bob"]) {
      const created = await cli(["keys", "create", "--identity", identity]);
      if (created.code !== 0) throw new Error(`keys create failed: ${created.stderr}`);
      keys[identity] = created.stdout.trim();
    }
    // What kubectl runs as its exec plugin: the gatehouse command, as an installed one would be.
    const gatehouse = join(dir, "gatehouse");
    writeFileSync(gatehouse, `#!/bin/sh\nexec "${process.execPath}" "${CLI}" "$@"\n`);
    chmodSync(gatehouse, 0o755);

    const kubeconfigs = new Map<string, string>();
    const kubeconfig = async (connection: string, identity = IDENTITY) => {
      const file = join(dir, `${connection}.${identity}.kubeconfig`);
      if (kubeconfigs.has(file)) return file;
      const out = await cli(["kubeconfig", "--connection", connection, "--identity", identity, "--command", gatehouse, "--out", file]);
      if (out.code !== 0) throw new Error(`gatehouse kubeconfig failed (${out.code}): ${out.stderr}`);
      kubeconfigs.set(file, file);
      return file;
    };
    const env = (identity = IDENTITY, key = keys[identity] ?? "") => ({ GATEHOUSE_ACCESS_KEY: key, HOME: dir, KUBECACHEDIR: join(dir, "kube-cache") });
    const spawnOptions = async (o: { connection?: string; identity?: string; key?: string }) => ({
      config: await kubeconfig(o.connection ?? "k8s", o.identity ?? IDENTITY),
      env: { ...process.env, ...env(o.identity ?? IDENTITY, o.key) },
    });

    const kubectl: KubeStack["kubectl"] = async (args, o = {}) => {
      const { config, env: childEnv } = await spawnOptions(o);
      const child = spawn("kubectl", ["--kubeconfig", config, ...args], { env: childEnv, timeout: o.timeoutMs ?? 30_000 });
      let stdout = "";
      let stderr = "";
      child.stdout.setEncoding("utf8").on("data", (t: string) => (stdout += t));
      child.stderr.setEncoding("utf8").on("data", (t: string) => (stderr += t));
      child.stdin.end(o.input);
      return new Promise((resolve) => child.once("close", (code) => resolve({ code, stdout, stderr })));
    };

    const spawnKubectl: KubeStack["spawnKubectl"] = async (args, o = {}) => {
      const { config, env: childEnv } = await spawnOptions(o);
      const child = spawn("kubectl", ["--kubeconfig", config, ...args], { env: childEnv, stdio: ["ignore", "pipe", "pipe"] });
      let output = "";
      child.stdout.setEncoding("utf8").on("data", (t: string) => (output += t));
      child.stderr.setEncoding("utf8").on("data", (t: string) => (output += t));
      const exited = new Promise<number | null>((resolve) => child.once("close", (code) => resolve(code)));
      return {
        output: () => output,
        stop: async () => {
          child.kill("SIGINT");
          return exited;
        },
      };
    };

    const gatewayApi = async <T>(path: string): Promise<T> => {
      const response = await fetch(`${gateway.apiUrl}${path}`, { headers: { Authorization: `Bearer ${gateway.adminToken}` } });
      if (!response.ok) throw new Error(`GET ${path}: ${response.status} ${await response.text()}`);
      return (await response.json()) as T;
    };
    const waitForSessions: KubeStack["waitForSessions"] = async (match, o = {}) => {
      const count = o.count ?? 1;
      const deadline = Date.now() + (o.timeoutMs ?? 30_000);
      for (;;) {
        const { sessions } = await gatewayApi<{ sessions: SessionJson[] }>("/api/v1/sessions?limit=1000");
        const found = sessions.filter((s) => match(s) && s.endedUs !== null);
        if (found.length >= count) return Promise.all(found.map((s) => gatewayApi<Recorded>(`/api/v1/sessions/${s.id}`)));
        if (Date.now() > deadline) throw new Error(`expected ${count} ended sessions, found ${found.length}: ${JSON.stringify(sessions.filter(match).slice(0, 5))}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    };
    const sessionWith: KubeStack["sessionWith"] = async (marker, o = {}) => {
      const deadline = Date.now() + (o.timeoutMs ?? 30_000);
      for (;;) {
        const sessions = await waitForSessions((s) => s.protocol === "kubernetes", { timeoutMs: o.timeoutMs ?? 30_000 });
        const found = sessions.find((s) => s.events.some((e) => e.command?.includes(marker)));
        if (found) return found;
        if (Date.now() > deadline) throw new Error(`no ended kubernetes session has an event naming ${marker}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    };

    return { api, gateway, connector, listen, keys, kubeconfig, kubectl, spawnKubectl, env, gatewayApi, waitForSessions, sessionWith, cli, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
