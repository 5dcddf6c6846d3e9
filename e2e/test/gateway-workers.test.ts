import { execFileSync, spawn } from "node:child_process";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createServer, type AddressInfo } from "node:net";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startPostgresServer, type PostgresServer, type TestDatabase, postgresConnection, connectorPasswordEnv } from "../lib/postgres-server.js";
import { eventually } from "../lib/eventually.js";
import { newToken, runCli, startConnectorProcess, startGatewayProcess, tempDir, type Proc, type RunningGateway } from "../lib/processes.js";

// `gatehouse gateway --workers 2`: two processes behind every listener, each recording as a gateway
// of its own on the Postgres store, one connector holding a link to each. Sessions land on both;
// /metrics and /api/v1/connectors speak for both; a worker killed with -9 is started again and
// the connector links to it again; SIGTERM drains every worker.

const GRACE_MS = 2_000;

let server: PostgresServer;
let resource: TestDatabase;
let store: TestDatabase;
let gateway: RunningGateway;
let connector: Proc;
let key: string;
let listen: { host: string; port: number };
let dc1: { token: string; sha256: string };

interface LinkJson {
  name: string;
  worker?: number;
  draining: boolean;
}

async function api<T>(path: string): Promise<T> {
  const response = await fetch(`${gateway.apiUrl}${path}`, { headers: { Authorization: `Bearer ${gateway.adminToken}` } });
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return (await response.json()) as T;
}

/** The connector's live links, once there is one on each of the two workers. */
const linkedToBoth = () =>
  eventually("a connector link on each worker", async () => {
    const { connectors } = await api<{ connectors: LinkJson[] }>("/api/v1/connectors");
    const workers = new Set(connectors.filter((c) => c.name === "dc1" && !c.draining).map((c) => c.worker));
    return workers.has(0) && workers.has(1) ? connectors : undefined;
  });

async function select(application: string): Promise<number> {
  const client = new pg.Client({ host: listen.host, port: listen.port, user: "agent", database: "app", password: key, ssl: false, application_name: application });
  await client.connect();
  try {
    const { rows } = await client.query<{ n: number }>("select 41 + 1 as n");
    return rows[0]!.n;
  } finally {
    await client.end();
  }
}

/** Workers that logged "session started" for these applications' sessions. */
function workersThatServed(): Set<number> {
  return new Set(gateway.proc.lines.filter((l) => l.msg === "session started" && typeof l.worker === "number").map((l) => l.worker as number));
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function workerPids(): number[] {
  const out = execFileSync("pgrep", ["-P", String(gateway.proc.child.pid)], { encoding: "utf8" });
  return out.split("\n").filter(Boolean).map(Number);
}

describe("gatehouse gateway --workers 2", () => {
  beforeAll(async () => {
    server = await startPostgresServer();
    resource = await server.createDatabase({ orders: 3 });
    store = await server.createDatabase({ empty: true });
    dc1 = newToken();
    gateway = await startGatewayProcess(
      {
        listen: { api: "127.0.0.1:0", postgres: "127.0.0.1:0" },
        store: { url: server.url(store.name) },
        shutdown: { graceMs: GRACE_MS },
        connectors: [{ name: "dc1", tokenSha256: dc1.sha256 }],
        connections: [
          postgresConnection(server, resource.name, { allow: [{ identity: "agent" }] }),
        ],
      },
      tempDir("gatehouse-e2e-workers-"),
      90_000,
      ["--workers", "2"],
    );
    listen = gateway.proc.lines.find((l) => l.msg === "gateway started")!.postgres as { host: string; port: number };
    connector = await startConnectorProcess({
      gateway: gateway.apiUrl,
      name: "dc1",
      token: dc1.token,
      allow: `${server.host}:${server.port}`,
      extra: connectorPasswordEnv(server),
    });
    await linkedToBoth();
    const created = await runCli(["keys", "create", "--identity", "agent"], { cwd: gateway.dir });
    if (created.code !== 0) throw new Error(`keys create failed: ${created.stderr}`);
    key = created.stdout.trim();
  });

  afterAll(async () => {
    await gateway?.proc.stop("SIGKILL");
    for (const pid of gateway ? (() => { try { return workerPids(); } catch { return []; } })() : []) process.kill(pid, "SIGKILL");
    await connector?.stop();
    await resource?.drop();
    await store?.drop();
    await server?.stop();
    if (gateway) rmSync(gateway.dir, { recursive: true, force: true });
  });

  it("serves sessions on both workers through one connector; /metrics and /api/v1/connectors count both", async () => {
    for (let i = 0; i < 6; i++) expect(await select(`workers-${i}`)).toBe(42);
    expect(workersThatServed()).toEqual(new Set([0, 1]));

    // /readyz speaks for the host: ready only when each worker is, whichever one answers.
    for (let i = 0; i < 4; i++) {
      const readyz = await fetch(`${gateway.apiUrl}/readyz`);
      expect(readyz.status).toBe(200);
      expect(((await readyz.json()) as { workers?: unknown }).workers).toEqual({ "0": "ready", "1": "ready" });
    }

    const links = await linkedToBoth();
    expect(links.filter((l) => l.name === "dc1")).toHaveLength(2);

    // Each worker counted its own sessions; the supervisor's aggregate has them all, whichever worker answers.
    const metrics = await (await fetch(`${gateway.apiUrl}/metrics`)).text();
    const started = metrics
      .split("\n")
      .filter((line) => line.startsWith("gatehouse_sessions_started_total"))
      .reduce((sum, line) => sum + Number(line.split(" ").at(-1)), 0);
    expect(started).toBeGreaterThanOrEqual(6);

    // Both workers' records reach the one store (each ships its own journal).
    await eventually("six ended sessions in the store", async () => {
      const { sessions } = await api<{ sessions: Array<{ clientApplication: string | null; endedUs: number | null }> }>("/api/v1/sessions?limit=50");
      return sessions.filter((s) => s.clientApplication?.startsWith("workers-") && s.endedUs !== null).length === 6 ? true : undefined;
    });
  });

  it("a worker killed with -9 is started again, from its own journal, and the connector links to it again", async () => {
    const before = workerPids();
    expect(before).toHaveLength(2);
    process.kill(before[1]!, "SIGKILL");
    await gateway.proc.waitFor((l) => l.msg === "gateway worker started again", 60_000);
    const after = workerPids();
    expect(after).toHaveLength(2);
    expect(after).not.toContain(before[1]);
    await linkedToBoth();
    for (let i = 0; i < 4; i++) expect(await select(`workers-again-${i}`)).toBe(42);

    // Both workers' seals (each its own signing key, registered in the store) verify over the whole store.
    const verified = await runCli(["verify", "--all", "--store-url", server.url(store.name), "--json"], { cwd: gateway.dir });
    expect(verified.code, verified.stdout + verified.stderr).toBe(0);
    const keys = await runCli(["keys", "seal-keys", "--json"], { cwd: gateway.dir });
    expect(keys.code, keys.stderr).toBe(0);
    // One registered key per worker (the one killed kept its key: it came back from its directory).
    const listed = JSON.parse(keys.stdout) as { keys?: unknown[] } | unknown[];
    const rows = (Array.isArray(listed) ? listed : (listed.keys ?? [])) as Array<{ keyId: string }>;
    expect(new Set(rows.map((k) => k.keyId)).size).toBe(2);
    // `keys signing` prints each worker's public key, for `verify --public-key` pinning.
    const signing = await runCli(["keys", "signing", "--json"], { cwd: gateway.dir });
    expect(signing.code, signing.stderr).toBe(0);
    const printed = JSON.parse(signing.stdout) as Array<{ keyId: string; worker: number }>;
    expect(printed.map((k) => k.worker)).toEqual([0, 1]);
    expect(new Set(printed.map((k) => k.keyId))).toEqual(new Set(rows.map((k) => k.keyId)));
  });

  it("psql's Ctrl-C cancels its query whichever worker the cancel's new connection reaches", async () => {
    // Connections go to the workers in turn: the cancel's connection, right after the session's,
    // reaches the other worker, which hands it to the session's through the store (cancel_routes).
    for (let i = 0; i < 2; i++) {
      const app = `workers-cancel-${i}`;
      const child = spawn("psql", ["-X", `host=${listen.host} port=${listen.port} user=agent dbname=app sslmode=disable password=${key} application_name=${app}`, "-c", "select pg_sleep(30)"], {
        stdio: ["ignore", "ignore", "pipe"],
      });
      let stderr = "";
      child.stderr.setEncoding("utf8").on("data", (t: string) => (stderr += t));
      const exited = new Promise<number | null>((resolve) => child.once("close", (code) => resolve(code)));
      await eventually("the query running on the resource", async () => {
        const client = await server.client(resource.name);
        try {
          const { rows } = await client.query<{ n: number }>("select count(*)::int as n from pg_stat_activity where application_name = $1 and query like 'select pg_sleep%' and state = 'active'", [app]);
          return rows[0]!.n === 1 ? true : undefined;
        } finally {
          await client.end();
        }
      });
      const sentAt = Date.now();
      child.kill("SIGINT");
      expect(await exited).toBe(1);
      expect(stderr).toContain("canceling statement due to user request");
      expect(Date.now() - sentAt).toBeLessThan(3_000);
    }
    await gateway.proc.waitFor((l) => l.msg === "cancel request for another gateway's session handed to it", 5_000);
  });

  it("SIGTERM drains every worker: open sessions get the grace, then 57P01; the supervisor exits 0", async () => {
    const sleepers = [0, 1, 2, 3].map((i) => {
      const child = spawn("psql", ["-X", `host=${listen.host} port=${listen.port} user=agent dbname=app sslmode=disable password=${key} application_name=workers-drain-${i}`, "-c", "select pg_sleep(60)"], {
        stdio: ["ignore", "ignore", "pipe"],
      });
      let stderr = "";
      child.stderr.setEncoding("utf8").on("data", (t: string) => (stderr += t));
      return { exited: new Promise<string>((resolve) => child.once("close", () => resolve(stderr))) };
    });
    await eventually("four open sessions", async () => {
      const { sessions } = await api<{ sessions: Array<{ clientApplication: string | null; endedUs: number | null }> }>("/api/v1/sessions?limit=50");
      return sessions.filter((s) => s.clientApplication?.startsWith("workers-drain-") && s.endedUs === null).length === 4 ? true : undefined;
    });
    const signalled = Date.now();
    gateway.proc.child.kill("SIGTERM");
    for (const sleeper of sleepers) expect(await sleeper.exited).toContain("terminating connection due to administrator command");
    expect(await gateway.proc.exited).toBe(0);
    expect(Date.now() - signalled).toBeLessThan(GRACE_MS + 4_000);

    // Every session sealed, the cut ones as gateway_shutdown.
    const client = new pg.Client({ connectionString: server.url(store.name) });
    await client.connect();
    try {
      const { rows } = await client.query<{ open: string; cut: string }>(
        "select count(*) filter (where ended_at is null) as open, count(*) filter (where end_reason = 'gateway_shutdown') as cut from sessions",
      );
      expect(Number(rows[0]!.open)).toBe(0);
      expect(Number(rows[0]!.cut)).toBe(4);
    } finally {
      await client.end();
    }
  });

  it("a worker that cannot start stops the start: the supervisor exits 1 and says why", async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, "127.0.0.1", resolve));
    const port = (taken.address() as AddressInfo).port;
    const dir = tempDir("gatehouse-e2e-workers-taken-");
    try {
      writeFileSync(join(dir, "gatehouse.yaml"), JSON.stringify({ listen: { api: "127.0.0.1:0", postgres: `127.0.0.1:${port}` }, store: { url: server.url(store.name) } }));
      const started = Date.now();
      const result = await runCli(["gateway", "--config", join(dir, "gatehouse.yaml"), "--workers", "2"], { cwd: dir });
      expect(result.code).toBe(1);
      expect(result.stderr).toContain("listen.postgres");
      expect(Date.now() - started).toBeLessThan(30_000);
    } finally {
      taken.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("workers whose supervisor is killed drain and seal their sessions rather than die with it", async () => {
    const dir = tempDir("gatehouse-e2e-workers-orphans-");
    const orphans = await startGatewayProcess(
      {
        listen: { api: "127.0.0.1:0", postgres: "127.0.0.1:0" },
        store: { url: server.url(store.name) },
        shutdown: { graceMs: 500 },
        connectors: [{ name: "dc1", tokenSha256: dc1.sha256 }],
        connections: [postgresConnection(server, resource.name, { allow: [{ identity: "agent" }] })],
      },
      dir,
      90_000,
      ["--workers", "2"],
    );
    const pids = execFileSync("pgrep", ["-P", String(orphans.proc.child.pid)], { encoding: "utf8" }).split("\n").filter(Boolean).map(Number);
    expect(pids).toHaveLength(2);
    const orphanConnector = await startConnectorProcess({ gateway: orphans.apiUrl, name: "dc1", token: dc1.token, allow: `${server.host}:${server.port}`, extra: connectorPasswordEnv(server) });
    try {
      const address = orphans.proc.lines.find((l) => l.msg === "gateway started")!.postgres as { host: string; port: number };
      await eventually("a link on each worker", async () => (orphans.proc.lines.filter((l) => l.msg === "connector connected").length >= 2 ? true : undefined));
      const client = new pg.Client({ host: address.host, port: address.port, user: "agent", database: "app", password: key, ssl: false, application_name: "workers-orphan" });
      client.on("error", () => undefined);
      await client.connect();
      await client.query("select 1");
      orphans.proc.child.kill("SIGKILL");
      // Each worker notices its supervisor is gone, drains for the grace, seals, and exits.
      await eventually("both workers gone", async () => (pids.every((pid) => !isAlive(pid)) ? true : undefined), 20_000);
      await client.end().catch(() => undefined);
      const { rows } = await (async () => {
        const admin = new pg.Client({ connectionString: server.url(store.name) });
        await admin.connect();
        try {
          return await admin.query<{ end_reason: string | null }>("select end_reason from sessions where client_application = 'workers-orphan'");
        } finally {
          await admin.end();
        }
      })();
      expect(rows.map((r) => r.end_reason)).toEqual(["gateway_shutdown"]);
    } finally {
      for (const pid of pids) if (isAlive(pid)) process.kill(pid, "SIGKILL");
      await orphanConnector.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("refuses --workers with the embedded store, naming store.url", async () => {
    const dir = tempDir("gatehouse-e2e-workers-embedded-");
    writeFileSync(join(dir, "gatehouse.yaml"), JSON.stringify({ listen: { api: "127.0.0.1:0" } }));
    const result = await runCli(["gateway", "--config", join(dir, "gatehouse.yaml"), "--workers", "2"], { cwd: dir });
    rmSync(dir, { recursive: true, force: true });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("store.url");
  });
});
