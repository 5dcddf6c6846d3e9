import { spawn, type ChildProcess } from "node:child_process";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import mysql from "mysql2/promise";
import { freePort } from "./postgres-server.js";
import { startMariadbServer, type MariadbServer, type TestDatabase } from "./mariadb-server.js";
import { newToken, runCli, startConnectorProcess, startGatewayProcess, tempDir, type Proc, type RunningGateway } from "./processes.js";
import { IDENTITY, type Recorded, type RunResult, type SessionJson } from "./postgres-stack.js";

// One gateway + connector in front of a fresh MariaDB test database, shared by
// the tests of one file (as postgres-stack.ts does for Postgres). User =
// identity, database = connection name, as the README tells MySQL users.
//
// Connections, all to the same resource unless said otherwise:
//   app          allowed to `agent`                      → the test database
//   app-locked   allowed only to `someone-else`          → 1044 for agent
//   app-dead     a port nothing listens on (allow-listed) → the unreachable-resource error
//   app-tls      (a resource with TLS only) allowed to `agent`: the connector logs in over TLS,
//                verify-full against the throwaway's certificate (require for a found server's)

export { IDENTITY };

/** A place a MySQL client can connect to: the resource itself (direct) or the gateway in front of it. */
export interface MysqlEndpoint {
  label: "direct" | "gateway";
  host: string;
  port: number;
  user: string;
  /** Null: no password. */
  password: string | null;
  /** The database (direct) or connection name (gateway). */
  database: string;
}

export interface MysqlStack {
  server: MariadbServer;
  db: TestDatabase;
  gateway: RunningGateway;
  connector: Proc;
  /** The gateway's MySQL listener. */
  listen: { host: string; port: number };
  /** An access key for `agent`. */
  key: string;
  deadPort: number;
  /**
   * The gateway as a MySQL endpoint: `agent` with the key, connection `app` unless said otherwise.
   * `connectionInUser`: the connection named in the user (`agent#app`) and the resource's own
   * database as the database, as clients that log in without one (mariadb-dump, mysqlslap) are told to.
   */
  endpoint(options?: { connection?: string; user?: string; password?: string | null; connectionInUser?: boolean }): MysqlEndpoint;
  /** The test database on the resource, reached directly (the baseline a user compares with). */
  direct(): MysqlEndpoint;
  api<T>(path: string): Promise<T>;
  /** Polls until `count` ended sessions match, newest first, then returns them with their events. */
  waitForSessions(match: (s: SessionJson) => boolean, options?: { count?: number; connection?: string; timeoutMs?: number }): Promise<Recorded[]>;
  /** The session of a client that sent the connect attribute `program_name` = `application`. */
  sessionOf(application: string): Promise<Recorded>;
  /** Runs the gatehouse CLI in the gateway's directory. */
  cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }>;
  /** The gateway's public signing key, in a file (for `gatehouse verify --public-key`). */
  publicKeyFile(): Promise<string>;
  stop(): Promise<void>;
}

/**
 * mysql2 connection options for an endpoint; `tls`: TLS without checking the certificate (the
 * gateway's is self-made); `application`: the `program_name` connect attribute, which the record
 * keeps as the session's client application.
 */
export function mysql2Options(e: MysqlEndpoint, options: { tls?: boolean; application?: string } = {}): mysql.ConnectionOptions {
  return {
    ...(options.application ? { connectAttributes: { program_name: options.application } } : {}),
    host: e.host,
    port: e.port,
    user: e.user,
    ...(e.password === null ? {} : { password: e.password }),
    database: e.database,
    ...(options.tls ? { ssl: { rejectUnauthorized: false } } : {}),
  };
}

/**
 * `-h -P -u -D` (and --ssl / --skip-ssl) for mariadb, mariadb-dump and mysqlslap; the password goes
 * in MYSQL_PWD (see `clientEnv`), never on the command line.
 */
export function cliArgs(e: MysqlEndpoint, options: { tls?: boolean; database?: boolean } = {}): string[] {
  return [
    "-h",
    e.host,
    "-P",
    String(e.port),
    "-u",
    e.user,
    ...(options.tls ? ["--ssl"] : ["--skip-ssl"]),
    ...(options.database === false ? [] : ["-D", e.database]),
  ];
}

/** The environment the command-line clients run in: no ~/.my.cnf leftovers, the password in MYSQL_PWD. */
export function clientEnv(e: MysqlEndpoint): Record<string, string> {
  return {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    HOME: tempHome,
    LANG: "C.UTF-8",
    ...(e.password === null ? {} : { MYSQL_PWD: e.password }),
  };
}

// An empty HOME: the clients read ~/.my.cnf, which on a developer's machine may say anything.
const tempHome = tempDir("gatehouse-e2e-mysql-home-");

export function spawnClient(command: string, args: string[], env: Record<string, string>): ChildProcess {
  return spawn(command, args, { stdio: ["pipe", "pipe", "pipe"], env });
}

/** Runs a command-line client to completion (killed after `timeoutMs`). */
export function runClient(command: string, args: string[], options: { env: Record<string, string>; input?: string; timeoutMs?: number }): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawnClient(command, args, options.env);
    let stdout = "";
    let stderr = "";
    child.stdout!.setEncoding("utf8").on("data", (t: string) => (stdout += t));
    child.stderr!.setEncoding("utf8").on("data", (t: string) => (stderr += t));
    const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 60_000);
    child.once("error", reject);
    child.once("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
    child.stdin!.on("error", () => undefined);
    child.stdin!.end(options.input ?? "");
  });
}

/** The resource and a test database on it, without a gateway: for the direct half of the tests. */
export async function startMysqlResource(options: { orders?: number; tls?: boolean } = {}): Promise<{ server: MariadbServer; db: TestDatabase; direct: () => MysqlEndpoint; stop: () => Promise<void> }> {
  const server = await startMariadbServer({ tls: options.tls ?? false });
  try {
    const db = await server.createDatabase(options);
    const direct = (): MysqlEndpoint => ({ label: "direct", host: server.host, port: server.port, user: server.user, password: server.password, database: db.name });
    return {
      server,
      db,
      direct,
      stop: async () => {
        await db.drop().catch(() => undefined);
        await server.stop();
      },
    };
  } catch (error) {
    await server.stop();
    throw error;
  }
}

/**
 * `limits`, `recording`: the gateway's settings of those names (docs/configuration.md), over its
 * defaults; `storeUrl`: a Postgres store (default: the embedded one).
 */
export async function startMysqlStack(
  options: {
    orders?: number;
    /** The resource must offer TLS, for the tests that compare with a direct TLS login (a throwaway with a certificate when the local server has none). */
    tls?: boolean;
    limits?: Record<string, unknown>;
    recording?: Record<string, unknown>;
    storeUrl?: string;
    /** The gateway's `identity` settings (e.g. `oidc`). */
    identity?: Record<string, unknown>;
    /** More `allow` entries for connection `app` (e.g. an OIDC identity or group). */
    allow?: unknown[];
  } = {},
): Promise<MysqlStack> {
  const resource = await startMysqlResource(options);
  const { server, db } = resource;
  const cleanups: Array<() => Promise<unknown>> = [resource.stop];
  const stop = async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
  };
  try {
    const deadPort = await freePort();
    const dc1 = newToken();
    const credential = { user: server.user, ...(server.password === null ? {} : { password: "env:GATEHOUSE_E2E_MYSQL_PASSWORD" }) };
    const target = (port: number) => ({ host: server.host, port, database: db.name, tls: "disable" });
    const gateway = await startGatewayProcess(
      {
        listen: { api: "127.0.0.1:0", mysql: "127.0.0.1:0" },
        tunnel: { pingIntervalMs: 1000, deadAfterMs: 3000 },
        connectors: [{ name: "dc1", tokenSha256: dc1.sha256 }],
        connections: [
          { name: "app", protocol: "mysql", connector: "dc1", target: target(server.port), credential, allow: [{ identity: IDENTITY }, ...(options.allow ?? [])] },
          { name: "app-locked", protocol: "mysql", connector: "dc1", target: target(server.port), credential, allow: [{ identity: "someone-else" }] },
          { name: "app-dead", protocol: "mysql", connector: "dc1", target: { ...target(deadPort), host: "127.0.0.1" }, credential, allow: [{ identity: IDENTITY }] },
          ...(server.tls
            ? [{ name: "app-tls", protocol: "mysql", connector: "dc1", target: { ...target(server.port), ...(server.caFile ? { tls: "verify-full", ca: server.caFile } : { tls: "require" }) }, credential, allow: [{ identity: IDENTITY }] }]
            : []),
        ],
        ...(options.limits ? { limits: options.limits } : {}),
        ...(options.recording ? { recording: options.recording } : {}),
        ...(options.storeUrl ? { store: { url: options.storeUrl } } : {}),
        ...(options.identity ? { identity: options.identity } : {}),
      },
      undefined,
      90_000,
    );
    cleanups.push(async () => {
      await gateway.proc.stop();
      rmSync(gateway.dir, { recursive: true, force: true });
    });
    const started = gateway.proc.lines.find((l) => l.msg === "gateway started")!;
    const listen = started.mysql as { host: string; port: number } | undefined;
    if (!listen) throw new Error(`the gateway did not report a mysql listener: ${JSON.stringify(started)}`);
    const connectorEnv = server.password === null ? undefined : { GATEHOUSE_E2E_MYSQL_PASSWORD: server.password };
    const connector = await startConnectorProcess({ gateway: gateway.apiUrl, name: "dc1", token: dc1.token, allow: `${server.host}:${server.port},127.0.0.1:${deadPort}`, ...(connectorEnv ? { extra: connectorEnv } : {}) });
    cleanups.push(() => connector.stop());
    await gateway.proc.waitFor((l) => l.msg === "connector connected" && l.connector === "dc1");

    const created = await runCli(["keys", "create", "--identity", IDENTITY], { cwd: gateway.dir });
    if (created.code !== 0) throw new Error(`keys create failed: ${created.stderr}`);
    const key = created.stdout.trim();

    const api = async <T>(path: string): Promise<T> => {
      const response = await fetch(`${gateway.apiUrl}${path}`, { headers: { Authorization: `Bearer ${gateway.adminToken}` } });
      if (!response.ok) throw new Error(`GET ${path}: ${response.status} ${await response.text()}`);
      return (await response.json()) as T;
    };

    const waitForSessions: MysqlStack["waitForSessions"] = async (match, o = {}) => {
      const count = o.count ?? 1;
      const deadline = Date.now() + (o.timeoutMs ?? 30_000);
      const query = `/api/v1/sessions?limit=1000${o.connection ? `&connection=${encodeURIComponent(o.connection)}` : ""}`;
      for (;;) {
        const { sessions } = await api<{ sessions: SessionJson[] }>(query);
        const found = sessions.filter((s) => match(s) && s.endedUs !== null);
        if (found.length >= count) return Promise.all(found.map((s) => api<Recorded>(`/api/v1/sessions/${s.id}`)));
        if (Date.now() > deadline) throw new Error(`expected ${count} ended sessions, found ${found.length}: ${JSON.stringify(sessions.filter(match).slice(0, 5))}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    };

    return {
      server,
      db,
      gateway,
      connector,
      listen,
      key,
      deadPort,
      endpoint: (o = {}) => ({
        label: "gateway",
        host: listen.host,
        port: listen.port,
        user: o.connectionInUser ? `${o.user ?? IDENTITY}#${o.connection ?? "app"}` : (o.user ?? IDENTITY),
        password: o.password === undefined ? key : o.password,
        database: o.connectionInUser ? db.name : (o.connection ?? "app"),
      }),
      direct: resource.direct,
      api,
      waitForSessions,
      async sessionOf(application) {
        const [found] = await waitForSessions((s) => s.clientApplication === application);
        return found!;
      },
      cli: (args) => runCli(args, { cwd: gateway.dir }),
      async publicKeyFile() {
        const printed = await runCli(["keys", "signing"], { cwd: gateway.dir });
        if (printed.code !== 0) throw new Error(`keys signing failed: ${printed.stderr}`);
        const file = join(gateway.dir, "signing-public.pem");
        writeFileSync(file, printed.stdout);
        return file;
      },
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
