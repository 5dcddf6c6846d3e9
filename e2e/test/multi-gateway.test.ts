import { spawn } from "node:child_process";
import { rmSync } from "node:fs";
import { createServer, connect, type AddressInfo, type Server, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startPostgresServer, type PostgresServer } from "../lib/postgres-server.js";
import { newToken, runCli, startConnectorProcess, startGatewayProcess, type Proc, type RunningGateway } from "../lib/processes.js";

// Two `gatehouse gateway` processes on one Postgres store behind a round-robin TCP balancer, and one
// `gatehouse connector` given both (GATEHOUSE_GATEWAY_URL with two URLs). psql connects through the
// balancer (its session lands on gateway A); its Ctrl-C cancel opens a new connection, which the
// balancer sends to gateway B: the cancel must still reach the query.

const IDENTITY = "agent";

/** A TCP balancer that sends connection n to targets[n % targets.length]. */
class RoundRobin {
  readonly targets: Array<{ host: string; port: number }>;
  readonly sent: number[] = [];
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  #next = 0;
  port = 0;

  constructor(targets: Array<{ host: string; port: number }>) {
    this.targets = targets;
    this.#server = createServer((client) => {
      const index = this.#next++ % targets.length;
      this.sent.push(index);
      const upstream = connect(targets[index]!);
      for (const s of [client, upstream]) {
        this.#sockets.add(s);
        s.on("error", () => (client.destroy(), upstream.destroy()));
        s.on("close", () => this.#sockets.delete(s));
      }
      client.pipe(upstream);
      upstream.pipe(client);
    });
  }

  async listen(): Promise<void> {
    await new Promise<void>((resolve) => this.#server.listen(0, "127.0.0.1", resolve));
    this.port = (this.#server.address() as AddressInfo).port;
  }

  async close(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    await new Promise((resolve) => this.#server.close(resolve));
  }
}

let server: PostgresServer;
const cleanups: Array<() => Promise<unknown>> = [];
let a: RunningGateway;
let b: RunningGateway;
let connector: Proc;
let balancer: RoundRobin;
let key: string;
let database: string;

beforeAll(async () => {
  server = await startPostgresServer();
  cleanups.push(() => server.stop());
  const db = await server.createDatabase({ empty: true });
  cleanups.push(() => db.drop());
  database = db.name;
  const storeDb = await server.createDatabase({ empty: true });
  cleanups.push(() => storeDb.drop());
  const dc1 = newToken();
  const credential = { user: server.user, ...(server.password === null ? {} : { password: "env:GATEHOUSE_E2E_PG_PASSWORD" }) };
  const config = {
    listen: { api: "127.0.0.1:0", postgres: "127.0.0.1:0" },
    store: { url: server.url(storeDb.name) },
    connectors: [{ name: "dc1", tokenSha256: dc1.sha256 }],
    connections: [{ name: "app", protocol: "postgres", connector: "dc1", target: { host: server.host, port: server.port, database: db.name, tls: "disable" }, credential, allow: [{ identity: IDENTITY }] }],
  };
  a = await startGatewayProcess(config);
  cleanups.push(async () => (await a.proc.stop(), rmSync(a.dir, { recursive: true, force: true })));
  b = await startGatewayProcess(config);
  cleanups.push(async () => (await b.proc.stop(), rmSync(b.dir, { recursive: true, force: true })));
  connector = await startConnectorProcess({
    gateway: `${a.apiUrl},${b.apiUrl}`,
    name: "dc1",
    token: dc1.token,
    allow: `${server.host}:${server.port}`,
    ...(server.password === null ? {} : { extra: { GATEHOUSE_E2E_PG_PASSWORD: server.password } }),
  });
  cleanups.push(() => connector.stop());
  await Promise.all([a, b].map((g) => g.proc.waitFor((l) => l.msg === "connector connected" && l.connector === "dc1")));
  const created = await runCli(["keys", "create", "--identity", IDENTITY], { cwd: a.dir });
  if (created.code !== 0) throw new Error(`keys create failed: ${created.stderr}`);
  key = created.stdout.trim();
  const listenOf = (g: RunningGateway) => g.proc.lines.find((l) => l.msg === "gateway started")!.postgres as { host: string; port: number };
  balancer = new RoundRobin([listenOf(a), listenOf(b)]);
  await balancer.listen();
  cleanups.push(() => balancer.close());
}, 180_000);

afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
});

describe("two gateway processes behind a balancer, one connector holding a tunnel to each", () => {
  it("the connector logs a tunnel to each gateway", async () => {
    const connected = connector.lines.filter((l) => l.msg === "connected to the gateway").map((l) => l.gateway);
    expect(new Set(connected)).toEqual(new Set([`${a.apiUrl.replace(/^http/, "ws")}/v1/tunnel`, `${b.apiUrl.replace(/^http/, "ws")}/v1/tunnel`]));
  });

  it("psql's Ctrl-C cancel, balanced onto the other gateway, cancels pg_sleep(30) with 57014 and is recorded on the session", async () => {
    const app = `multigw-psql-${Date.now()}`;
    const conninfo = `host=127.0.0.1 port=${balancer.port} user=${IDENTITY} dbname=app sslmode=require password=${key} application_name=${app}`;
    const admin = await server.client();
    try {
      const first = balancer.sent.length;
      const child = spawn("psql", ["-X", conninfo, "-c", "select pg_sleep(30)"], {
        stdio: ["ignore", "pipe", "pipe"],
        env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/tmp", LANG: "C.UTF-8", PGCONNECT_TIMEOUT: "10" },
      });
      let stderr = "";
      child.stderr.setEncoding("utf8").on("data", (t: string) => (stderr += t));
      const exited = new Promise<number | null>((resolve) => child.once("close", (code) => resolve(code)));
      for (let i = 0; ; i++) {
        const { rows } = await admin.query<{ n: number }>("select count(*)::int as n from pg_stat_activity where datname = $1 and application_name = $2 and query like 'select pg_sleep%' and state = 'active'", [database, app]);
        if (rows[0]!.n === 1) break;
        if (i > 200) throw new Error(`the query never started on the server; psql said: ${stderr}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      const sessionGateway = balancer.sent[first]!;
      const cancelGateway = (sessionGateway + 1) % 2;
      const sentAt = Date.now();
      child.kill("SIGINT");
      expect(await exited).toBe(1);
      const ms = Date.now() - sentAt;
      expect(stderr).toContain("canceling statement due to user request");
      expect(ms).toBeLessThan(2_000);
      process.stderr.write(`[e2e multi-gateway] psql Ctrl-C through the other gateway: ${ms} ms to the error\n`);
      // The cancel went over the balancer's next connection: to the other gateway, which handed it on.
      expect(balancer.sent[first + 1]).toBe(cancelGateway);
      const [owner, other] = sessionGateway === 0 ? [a, b] : [b, a];
      await other.proc.waitFor((l) => l.msg === "cancel request for another gateway's session handed to it");

      // The record (one store: either gateway's API reads it) has the cancel, forwarded by the other gateway.
      const deadline = Date.now() + 20_000;
      let events: Array<{ kind: string; outcome: string | null; details: Record<string, unknown> | null }> = [];
      for (;;) {
        const headers = { Authorization: `Bearer ${owner.adminToken}` };
        const { sessions } = (await (await fetch(`${owner.apiUrl}/api/v1/sessions?limit=100`, { headers })).json()) as { sessions: Array<{ id: string; clientApplication: string | null; endedUs: number | null }> };
        const session = sessions.find((s) => s.clientApplication === app && s.endedUs !== null);
        if (session) {
          events = ((await (await fetch(`${owner.apiUrl}/api/v1/sessions/${session.id}`, { headers })).json()) as { events: typeof events }).events;
          if (events.some((e) => e.kind === "disconnect")) break;
        }
        if (Date.now() > deadline) throw new Error("the session was not recorded");
        await new Promise((r) => setTimeout(r, 100));
      }
      const ownerId = owner.proc.lines.find((l) => l.msg === "gateway started")!.gatewayId;
      const otherId = other.proc.lines.find((l) => l.msg === "gateway started")!.gatewayId;
      expect(ownerId).not.toBe(otherId);
      expect(events.find((e) => e.kind === "query")).toMatchObject({ outcome: "error", details: { sqlstate: "57014" } });
      expect(events.find((e) => e.kind === "cancel")).toMatchObject({ outcome: "ok", details: { forwardedBy: otherId } });
    } finally {
      await admin.end();
    }
  });
});
