import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort, startPostgresServer, type PostgresServer, type TestDatabase, postgresConnection, connectorPasswordEnv } from "../lib/postgres-server.js";
import { eventually } from "../lib/eventually.js";
import { CLI, newToken, runCli, startGatewayProcess, tempDir, Proc, type RunningGateway } from "../lib/processes.js";

// Two gateways on one Postgres store behind haproxy (TCP mode, health-checked on /readyz), two
// replicas of one connector each holding a tunnel to both gateways, and a steady load through the
// balancer: pgbench, plus writers that remember every insert the server acknowledged. Then, one
// after the other: kill -9 a gateway (and start it again from its data directory), kill -9 a
// connector replica, and drain the other gateway with SIGTERM. Clients reconnect through the
// balancer; every acknowledged insert is in the store once the killed gateway is back; and
// `gatehouse verify --all` passes over everything both gateways recorded.

const HAPROXY = ["/usr/sbin/haproxy", "/usr/bin/haproxy"].find((p) => existsSync(p));
const PHASE_MS = 3_000;
const GRACE_MS = 2_000;

interface FleetGateway {
  name: string;
  dir: string;
  apiPort: number;
  pgPort: number;
  running: RunningGateway | undefined;
}

let server: PostgresServer;
let resource: TestDatabase;
let store: TestDatabase;
let dc1: { token: string; sha256: string };
let gateways: FleetGateway[] = [];
let replicas: Proc[] = [];
let haproxy: ChildProcess | undefined;
let haproxyDir: string;
let lbPort: number;
let key: string;

function gatewayConfig(g: FleetGateway): Record<string, unknown> {
  return {
    listen: { api: `127.0.0.1:${g.apiPort}`, postgres: `127.0.0.1:${g.pgPort}` },
    store: { url: server.url(store.name) },
    shutdown: { graceMs: GRACE_MS },
    tunnel: { pingIntervalMs: 500, deadAfterMs: 2_000 },
    connectors: [{ name: "dc1", tokenSha256: dc1.sha256 }],
    connections: [
      postgresConnection(server, resource.name, { allow: [{ identity: "agent" }] }),
    ],
  };
}

async function startGateway(g: FleetGateway): Promise<void> {
  g.running = await startGatewayProcess(gatewayConfig(g), g.dir, 90_000);
}

/** A connector replica with a tunnel to each gateway (`--gateway` repeated). */
function startReplica(index: number): Proc {
  const args = [CLI, "connector", "--name", "dc1", "--allow", `${server.host}:${server.port}`, "--log-level", "debug"];
  for (const g of gateways) args.push("--gateway", `http://127.0.0.1:${g.apiPort}`);
  const child = spawn(process.execPath, args, {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, GATEHOUSE_CONNECTOR_TOKEN: dc1.token, ...connectorPasswordEnv(server) },
  });
  return new Proc(child, `connector replica ${index}`);
}

/** How many live links of connector dc1 the gateway's API lists. */
async function links(g: FleetGateway): Promise<number> {
  const response = await fetch(`${g.running!.apiUrl}/api/v1/connectors`, { headers: { Authorization: `Bearer ${g.running!.adminToken}` } });
  if (!response.ok) return 0;
  // One entry per link (tunnel): replicas of one connector are separate links.
  const body = (await response.json()) as { connectors: Array<{ name: string; draining: boolean }> };
  return body.connectors.filter((c) => c.name === "dc1" && !c.draining).length;
}

/** eventually() for a yes/no condition. */
const until = (what: string, check: () => Promise<boolean> | boolean, timeoutMs?: number): Promise<unknown> =>
  eventually(what, async () => ((await check()) ? true : undefined), timeoutMs);

function writeHaproxyConfig(): string {
  const file = join(haproxyDir, "haproxy.cfg");
  const servers = gateways.map((g) => `  server ${g.name} 127.0.0.1:${g.pgPort} check port ${g.apiPort}`).join("\n");
  writeFileSync(
    file,
    `global
  maxconn 512
defaults
  mode tcp
  timeout connect 1s
  timeout client 60s
  timeout server 60s
  retries 3
  option redispatch
frontend postgres
  bind 127.0.0.1:${lbPort}
  default_backend gateways
backend gateways
  balance roundrobin
  option httpchk GET /readyz
  default-server inter 250ms fall 2 rise 2
${servers}
`,
  );
  return file;
}

/** pgbench through the balancer, restarted whenever a failover ends it, until stop(). */
function pgbenchLoad(): { stop: () => Promise<void>; transactions: () => number; runs: () => number } {
  let stopped = false;
  let transactions = 0;
  let runs = 0;
  let current: ChildProcess | undefined;
  const loop = (async () => {
    while (!stopped) {
      runs++;
      const child = spawn("pgbench", ["-n", "-c", "2", "-T", "4", "-h", "127.0.0.1", "-p", String(lbPort), "-U", "agent", "app"], {
        env: { PATH: process.env.PATH ?? "/usr/bin:/bin", PGPASSWORD: key, PGSSLMODE: "disable", PGAPPNAME: "fleet-pgbench", PGCONNECT_TIMEOUT: "3" },
        stdio: ["ignore", "pipe", "pipe"],
      });
      current = child;
      let out = "";
      child.stdout!.setEncoding("utf8").on("data", (t: string) => (out += t));
      child.stderr!.resume();
      await new Promise((r) => child.once("close", r));
      const processed = /number of transactions actually processed: (\d+)/.exec(out);
      if (processed) transactions += Number(processed[1]);
      if (!stopped) await new Promise((r) => setTimeout(r, 100));
    }
  })();
  return {
    stop: async () => {
      stopped = true;
      current?.kill("SIGINT");
      await loop;
    },
    transactions: () => transactions,
    runs: () => runs,
  };
}

/** Writers that insert one row per statement and keep the ids the server acknowledged. */
function ledgerLoad(writers: number): { stop: () => Promise<void>; acked: string[]; failures: () => number; ackedSince: (n: number) => number } {
  const acked: string[] = [];
  let failures = 0;
  let stopped = false;
  const writer = async (w: number) => {
    let n = 0;
    while (!stopped) {
      const client = new pg.Client({ host: "127.0.0.1", port: lbPort, user: "agent", database: "app", password: key, ssl: false, application_name: `fleet-ledger-${w}`, connectionTimeoutMillis: 3_000 });
      client.on("error", () => undefined);
      try {
        await client.connect();
        while (!stopped) {
          const id = `w${w}-${++n}`;
          // A literal, not a parameter: the id is then in the recorded command text.
          await client.query(`insert into ledger (id) values ('${id}')`);
          acked.push(id);
        }
      } catch {
        failures++;
        await new Promise((r) => setTimeout(r, 50));
      } finally {
        await client.end().catch(() => undefined);
      }
    }
  };
  const running = Promise.all(Array.from({ length: writers }, (_, w) => writer(w)));
  return {
    acked,
    failures: () => failures,
    ackedSince: (n) => acked.length - n,
    stop: async () => {
      stopped = true;
      await running;
    },
  };
}

/** Waits until `ledger` has acknowledged `count` more inserts than it had. */
async function progress(ledger: ReturnType<typeof ledgerLoad>, count: number, what: string): Promise<void> {
  const from = ledger.acked.length;
  await until(`${count} acknowledged inserts ${what}`, () => ledger.ackedSince(from) >= count, 30_000);
}

describe.skipIf(!HAPROXY)("two gateways on one store behind haproxy, two connector replicas (haproxy installed)", () => {
  beforeAll(async () => {
    server = await startPostgresServer();
    resource = await server.createDatabase({ empty: true });
    store = await server.createDatabase({ empty: true });
    dc1 = newToken();
    const admin = new pg.Client({ connectionString: server.url(resource.name) });
    await admin.connect();
    await admin.query("create table ledger (id text primary key, at timestamptz not null default now())");
    await admin.end();
    const init = spawnSync("pgbench", ["-i", "-s", "1", "-q", server.url(resource.name)], { encoding: "utf8" });
    if (init.status !== 0) throw new Error(`pgbench -i failed: ${init.stderr}`);

    gateways = [];
    for (const name of ["a", "b"]) gateways.push({ name, dir: tempDir(`gatehouse-e2e-fleet-${name}-`), apiPort: await freePort(), pgPort: await freePort(), running: undefined });
    // One at a time: the first migrates the store.
    for (const g of gateways) await startGateway(g);
    replicas = [startReplica(1), startReplica(2)];
    for (const g of gateways) await until(`both replicas linked to gateway ${g.name}`, async () => (await links(g)) >= 2);

    const created = await runCli(["keys", "create", "--identity", "agent"], { cwd: gateways[0]!.dir });
    if (created.code !== 0) throw new Error(`keys create failed: ${created.stderr}`);
    key = created.stdout.trim();

    lbPort = await freePort();
    haproxyDir = tempDir("gatehouse-e2e-haproxy-");
    haproxy = spawn(HAPROXY!, ["-db", "-f", writeHaproxyConfig()], { stdio: ["ignore", "pipe", "pipe"] });
    haproxy.stdout!.resume();
    haproxy.stderr!.resume();
    await until("haproxy to accept a session", async () => {
      const client = new pg.Client({ host: "127.0.0.1", port: lbPort, user: "agent", database: "app", password: key, ssl: false, connectionTimeoutMillis: 2_000 });
      client.on("error", () => undefined);
      try {
        await client.connect();
        await client.query("select 1");
        return true;
      } catch {
        return false;
      } finally {
        await client.end().catch(() => undefined);
      }
    });
  });

  afterAll(async () => {
    haproxy?.kill("SIGKILL");
    for (const r of replicas) await r.stop("SIGKILL");
    for (const g of gateways) await g.running?.proc.stop("SIGKILL");
    await resource?.drop();
    await store?.drop();
    await server?.stop();
    for (const g of gateways) rmSync(g.dir, { recursive: true, force: true });
    if (haproxyDir) rmSync(haproxyDir, { recursive: true, force: true });
  });

  it("kill -9 a gateway, kill -9 a connector replica, drain the other gateway: no acknowledged command missing, verify --all passes", { timeout: 180_000 }, async () => {
    const [a, b] = gateways as [FleetGateway, FleetGateway];
    const bench = pgbenchLoad();
    const ledger = ledgerLoad(3);
    try {
      await progress(ledger, 30, "before anything fails");
      await new Promise((r) => setTimeout(r, PHASE_MS));

      // 1. A gateway dies without a word; the balancer sends everyone to the other one.
      await a.running!.proc.stop("SIGKILL");
      await progress(ledger, 30, "after gateway a was killed");
      await new Promise((r) => setTimeout(r, PHASE_MS));
      // It comes back from its data directory (journal, signing key) and ships what it had journaled.
      await startGateway(a);
      await until("both replicas linked to the restarted gateway a", async () => (await links(a)) >= 2, 60_000);

      // 2. A connector replica dies; sessions through it end, new ones ride the other replica.
      await replicas[0]!.stop("SIGKILL");
      await progress(ledger, 30, "after connector replica 1 was killed");
      await new Promise((r) => setTimeout(r, PHASE_MS));

      // 3. Gateway b drains: it refuses new sessions, gives open ones the grace, ends them with 57P01.
      const drained = b.running!.proc;
      drained.child.kill("SIGTERM");
      await drained.waitFor((l) => l.msg === "gateway draining: no new sessions; open ones have the grace period to finish");
      expect(await drained.exited).toBe(0);
      b.running = undefined;
      await progress(ledger, 30, "after gateway b drained");
      await new Promise((r) => setTimeout(r, PHASE_MS));
    } finally {
      await ledger.stop();
      await bench.stop();
    }
    expect(bench.transactions()).toBeGreaterThan(0);
    expect(ledger.failures()).toBeGreaterThan(0); // the failovers were felt, and survived

    // Every insert the server acknowledged ran on the resource and is in the record.
    const acked = new Set(ledger.acked);
    const storeUrl = server.url(store.name);
    const inResource = await rows<{ id: string }>(server.url(resource.name), "select id from ledger");
    const resourceIds = new Set(inResource.map((r) => r.id));
    expect([...acked].filter((id) => !resourceIds.has(id))).toEqual([]);
    let missing: string[] = [];
    await until(
      "every acknowledged insert in the store",
      async () => {
        const recorded = await rows<{ command: string }>(storeUrl, "select command from events where command like 'insert into ledger%'");
        const ids = new Set(recorded.map((r) => /values \('([^']+)'\)/.exec(r.command)?.[1]));
        missing = [...acked].filter((id) => !ids.has(id));
        return missing.length === 0;
      },
      30_000,
    ).catch(() => undefined);
    expect(missing, `${missing.length} of ${acked.size} acknowledged inserts are not in the store`).toEqual([]);

    // The drained gateway's cut sessions are sealed as gateway_shutdown.
    const shutdownEnds = await rows<{ n: string }>(storeUrl, "select count(*) as n from sessions where end_reason = 'gateway_shutdown'");
    expect(Number(shutdownEnds[0]!.n)).toBeGreaterThan(0);

    // verify --all over the whole store: both gateways' seal keys are registered there, the restarted one's too.
    const verified = await runCli(["verify", "--all", "--store-url", storeUrl], { cwd: a.dir });
    expect(verified.code, verified.stdout + verified.stderr).toBe(0);
    expect(verified.stdout).toMatch(/ 0 failed/);
    console.log(`fleet failover: ${acked.size} acknowledged inserts (all recorded), ${ledger.failures()} client reconnects, ${bench.transactions()} pgbench transactions in ${bench.runs()} runs; ${verified.stdout.trim()}`);
  });
});

async function rows<T extends pg.QueryResultRow>(url: string, sql: string): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(sql)).rows;
  } finally {
    await client.end();
  }
}
