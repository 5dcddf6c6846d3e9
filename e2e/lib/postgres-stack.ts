import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";
import { networkInterfaces } from "node:os";
import { freePort, startPostgresServer, type PostgresServer, type TestDatabase } from "./postgres-server.js";
import { newToken, runCli, startConnectorProcess, startGatewayProcess, type Proc, type RunningGateway } from "./processes.js";

// One gateway + connector in front of a fresh test database, shared by the
// tests of one file (starting them, with the embedded store, takes seconds).
//
// Connections, all to the same resource unless said otherwise:
//   app          allowed to `agent`                      → the test database
//   app-locked   allowed only to `someone-else`          → 28000 for agent
//   app-dead     a port nothing listens on (allow-listed) → 08006
//   app-offlist  a port off the connector's allow-list   → 08006 "not allowed"
//   app-dc2      through connector dc2, started on demand → 08006 when it is down

export const IDENTITY = "agent";

export interface SessionJson {
  id: string;
  identity: { name: string; method?: string | null };
  connection: string;
  protocol: string;
  connector: string | null;
  clientAddress: string | null;
  clientApplication: string | null;
  startedUs: number;
  endedUs: number | null;
  endReason: string | null;
  eventCount: number;
}

export interface EventJson {
  seq: number;
  timeUs: number;
  kind: string;
  command: string | null;
  params: unknown[] | null;
  outcome: "ok" | "error" | null;
  durationUs: number | null;
  details: Record<string, unknown> | null;
}

export interface Recorded {
  session: SessionJson;
  events: EventJson[];
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface PostgresStack {
  server: PostgresServer;
  db: TestDatabase;
  gateway: RunningGateway;
  connector: Proc;
  /** The gateway's Postgres listener. */
  listen: { host: string; port: number };
  /** An access key for `agent`. */
  key: string;
  deadPort: number;
  offListPort: number;
  /** libpq connection string to the gateway (key in the `password` unless `password: null`). */
  conninfo(options?: { connection?: string; user?: string; password?: string | null; sslmode?: "require" | "disable"; application?: string }): string;
  /** Runs psql (no psqlrc, quiet errors on stderr) to completion. */
  psql(args: string[], options?: { env?: Record<string, string>; input?: string }): Promise<RunResult>;
  /** Starts a child (psql, pgbench...) with the same environment conventions. */
  spawnClient(command: string, args: string[], env?: Record<string, string>): ChildProcess;
  run(command: string, args: string[], options?: { env?: Record<string, string>; input?: string; timeoutMs?: number }): Promise<RunResult>;
  api<T>(path: string): Promise<T>;
  /** Polls until `count` ended sessions match, newest first, then returns them with their events. */
  waitForSessions(match: (s: SessionJson) => boolean, options?: { count?: number; connection?: string; timeoutMs?: number }): Promise<Recorded[]>;
  /** The session of a client that set `application_name` to `application`. */
  sessionOf(application: string, connection?: string): Promise<Recorded>;
  /** The gateway's resident set size in bytes. */
  gatewayRss(): number;
  /** Starts connector dc2 (for app-dc2) and waits for the gateway to see it. */
  startSecondConnector(): Promise<Proc>;
  stop(): Promise<void>;
}

/**
 * `store`: "embedded" (PGlite in the gateway's data dir, what users get by default; seconds to
 * initialise) or "postgres" (a database of its own on the resource server, dropped at the end).
 * `listenHost`: the address of the gateway's Postgres listener (default 127.0.0.1).
 * `limits`: the gateway's `limits` (docs/configuration.md), over its defaults.
 */
export async function startPostgresStack(options: { orders?: number; store?: "embedded" | "postgres"; listenHost?: string; limits?: Record<string, unknown> } = {}): Promise<PostgresStack> {
  const server = await startPostgresServer();
  const cleanups: Array<() => Promise<unknown>> = [() => server.stop()];
  const stop = async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
  };
  try {
    const db = await server.createDatabase(options);
    cleanups.push(() => db.drop());
    let storeUrl: string | undefined;
    if (options.store === "postgres") {
      const storeDb = await server.createDatabase({ empty: true });
      cleanups.push(() => storeDb.drop());
      storeUrl = server.url(storeDb.name);
    }
    const deadPort = await freePort();
    const offListPort = await freePort();
    const dc1 = newToken();
    const dc2 = newToken();
    const credential = { user: server.user, ...(server.password === null ? {} : { password: "env:GATEHOUSE_E2E_PG_PASSWORD" }) };
    const target = (port: number) => ({ host: server.host, port, database: db.name, tls: "disable" });
    const gateway = await startGatewayProcess({
      listen: { api: "127.0.0.1:0", postgres: `${options.listenHost ?? "127.0.0.1"}:0` },
      tunnel: { pingIntervalMs: 1000, deadAfterMs: 3000 },
      connectors: [
        { name: "dc1", tokenSha256: dc1.sha256 },
        { name: "dc2", tokenSha256: dc2.sha256 },
      ],
      connections: [
        { name: "app", protocol: "postgres", connector: "dc1", target: target(server.port), credential, allow: [{ identity: IDENTITY }] },
        { name: "app-locked", protocol: "postgres", connector: "dc1", target: target(server.port), credential, allow: [{ identity: "someone-else" }] },
        { name: "app-dead", protocol: "postgres", connector: "dc1", target: { ...target(deadPort), host: "127.0.0.1" }, credential, allow: [{ identity: IDENTITY }] },
        { name: "app-offlist", protocol: "postgres", connector: "dc1", target: { ...target(offListPort), host: "127.0.0.1" }, credential, allow: [{ identity: IDENTITY }] },
        { name: "app-dc2", protocol: "postgres", connector: "dc2", target: target(server.port), credential, allow: [{ identity: IDENTITY }] },
      ],
      ...(storeUrl ? { store: { url: storeUrl } } : {}),
      ...(options.limits ? { limits: options.limits } : {}),
    }, undefined, 90_000);
    cleanups.push(async () => {
      await gateway.proc.stop();
      rmSync(gateway.dir, { recursive: true, force: true });
    });
    const started = gateway.proc.lines.find((l) => l.msg === "gateway started")!;
    const listen = started.postgres as { host: string; port: number };
    const allow = `${server.host}:${server.port},127.0.0.1:${deadPort}`;
    const connectorEnv = server.password === null ? undefined : { GATEHOUSE_E2E_PG_PASSWORD: server.password };
    const connector = await startConnectorProcess({ gateway: gateway.apiUrl, name: "dc1", token: dc1.token, allow, ...(connectorEnv ? { extra: connectorEnv } : {}) });
    cleanups.push(() => connector.stop());
    await gateway.proc.waitFor((l) => l.msg === "connector connected" && l.connector === "dc1");

    const created = await runCli(["keys", "create", "--identity", IDENTITY], { cwd: gateway.dir });
    if (created.code !== 0) throw new Error(`keys create failed: ${created.stderr}`);
    const key = created.stdout.trim();

    const conninfo: PostgresStack["conninfo"] = (o = {}) => {
      const parts = [
        `host=${listen.host}`,
        `port=${listen.port}`,
        `user=${o.user ?? IDENTITY}`,
        `dbname=${o.connection ?? "app"}`,
        `sslmode=${o.sslmode ?? "require"}`,
      ];
      const password = o.password === undefined ? key : o.password;
      if (password !== null) parts.push(`password=${password}`);
      if (o.application) parts.push(`application_name=${o.application}`);
      return parts.join(" ");
    };

    const spawnClient: PostgresStack["spawnClient"] = (command, args, env = {}) =>
      spawn(command, args, {
        stdio: ["pipe", "pipe", "pipe"],
        // No ~/.pgpass, service file or PG* leftovers from the calling shell.
        env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/tmp", LANG: "C.UTF-8", PGCONNECT_TIMEOUT: "10", ...env },
      });

    const run: PostgresStack["run"] = (command, args, o = {}) =>
      new Promise((resolve, reject) => {
        const child = spawnClient(command, args, o.env);
        let stdout = "";
        let stderr = "";
        child.stdout!.setEncoding("utf8").on("data", (t: string) => (stdout += t));
        child.stderr!.setEncoding("utf8").on("data", (t: string) => (stderr += t));
        const timer = setTimeout(() => child.kill("SIGKILL"), o.timeoutMs ?? 60_000);
        child.once("error", reject);
        child.once("close", (code, signal) => {
          clearTimeout(timer);
          resolve({ code, signal, stdout, stderr });
        });
        child.stdin!.on("error", () => undefined);
        child.stdin!.end(o.input ?? "");
      });

    const api = async <T>(path: string): Promise<T> => {
      const response = await fetch(`${gateway.apiUrl}${path}`, { headers: { Authorization: `Bearer ${gateway.adminToken}` } });
      if (!response.ok) throw new Error(`GET ${path}: ${response.status} ${await response.text()}`);
      return (await response.json()) as T;
    };

    const waitForSessions: PostgresStack["waitForSessions"] = async (match, o = {}) => {
      const count = o.count ?? 1;
      const deadline = Date.now() + (o.timeoutMs ?? 30_000);
      const query = `/api/v1/sessions?limit=1000${o.connection ? `&connection=${encodeURIComponent(o.connection)}` : ""}`;
      let found: SessionJson[] = [];
      for (;;) {
        const { sessions } = await api<{ sessions: SessionJson[] }>(query);
        found = sessions.filter((s) => match(s) && s.endedUs !== null);
        if (found.length >= count) break;
        if (Date.now() > deadline) throw new Error(`expected ${count} ended sessions, found ${found.length}: ${JSON.stringify(sessions.filter(match).slice(0, 5))}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      return Promise.all(found.map((s) => api<Recorded>(`/api/v1/sessions/${s.id}`)));
    };

    const stack: PostgresStack = {
      server,
      db,
      gateway,
      connector,
      listen,
      key,
      deadPort,
      offListPort,
      conninfo,
      spawnClient,
      run,
      psql: (args, o = {}) => run("psql", ["-X", ...args], o),
      api,
      waitForSessions,
      async sessionOf(application, connection) {
        const [found] = await waitForSessions((s) => s.clientApplication === application, connection ? { connection } : {});
        return found!;
      },
      gatewayRss() {
        const status = readFileSync(`/proc/${gateway.proc.child.pid}/status`, "utf8");
        const kb = /^VmRSS:\s+(\d+) kB$/m.exec(status);
        if (!kb) throw new Error("no VmRSS in /proc status");
        return Number(kb[1]) * 1024;
      },
      async startSecondConnector() {
        // Only a "connector connected" logged from now on counts (dc2 may have come and gone before).
        const mark = gateway.proc.lines.length;
        const proc = await startConnectorProcess({ gateway: gateway.apiUrl, name: "dc2", token: dc2.token, allow: `${server.host}:${server.port}`, ...(connectorEnv ? { extra: connectorEnv } : {}) });
        cleanups.push(() => proc.stop());
        await gateway.proc.waitFor((l) => l.msg === "connector connected" && l.connector === "dc2" && gateway.proc.lines.indexOf(l) >= mark);
        return proc;
      },
      stop,
    };
    return stack;
  } catch (error) {
    await stop();
    throw error;
  }
}

/** An address of this machine that is not loopback (clients connecting to it come from it), if any. */
export function nonLoopbackAddress(): string | undefined {
  for (const addresses of Object.values(networkInterfaces())) {
    for (const a of addresses ?? []) if (a.family === "IPv4" && !a.internal) return a.address;
  }
  return undefined;
}

/** A unique application_name, so a test finds its own session in the record. */
export function appName(label: string): string {
  return `e2e-${label}-${Math.random().toString(36).slice(2, 8)}`;
}

/** The statement events of a session (everything but connect/disconnect). */
export function statements(recorded: Recorded): EventJson[] {
  return recorded.events.filter((e) => e.kind !== "connect" && e.kind !== "disconnect");
}
