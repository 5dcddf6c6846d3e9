import { spawn, type ChildProcess } from "node:child_process";
import { rmSync } from "node:fs";
import pg from "pg";
import { afterAll, beforeAll, expect, it } from "vitest";
import { startPostgresServer, type PostgresServer, type TestDatabase, postgresConnection } from "../lib/postgres-server.js";
import { newToken, runCli, startConnectorProcess, startGatewayProcess, type Proc, type RunningGateway } from "../lib/processes.js";

// A gateway stopped with SIGTERM while psql sessions are open: it takes no new sessions, lets the
// open ones run for shutdown.graceMs, then ends each with FATAL 57P01 (as Postgres's own fast
// shutdown does), seals it with end reason gateway_shutdown, and exits within grace + 2 s.

const GRACE_MS = 3_000;

let server: PostgresServer;
let db: TestDatabase;
let store: TestDatabase;
let gateway: RunningGateway;
let connector: Proc;
let key: string;
let listen: { host: string; port: number };
let dc1: { token: string; sha256: string };

/** Starts the gateway (again, in the same directory and on the same API port for a restart). */
async function startGateway(again?: { dir: string; apiPort: number }): Promise<void> {
  gateway = await startGatewayProcess({
    listen: { api: `127.0.0.1:${again?.apiPort ?? 0}`, postgres: "127.0.0.1:0" },
    store: { url: server.url(store.name) },
    shutdown: { graceMs: GRACE_MS },
    connectors: [{ name: "dc1", tokenSha256: dc1.sha256 }],
    connections: [
      postgresConnection(server, db.name, { allow: [{ identity: "agent" }] }),
    ],
  }, again?.dir);
  listen = gateway.proc.lines.find((l) => l.msg === "gateway started")!.postgres as { host: string; port: number };
}

beforeAll(async () => {
  server = await startPostgresServer();
  db = await server.createDatabase({ empty: true });
  store = await server.createDatabase({ empty: true });
  dc1 = newToken();
  await startGateway();
  connector = await startConnectorProcess({
    gateway: gateway.apiUrl,
    name: "dc1",
    token: dc1.token,
    allow: `${server.host}:${server.port}`,
    ...(server.password === null ? {} : { extra: { GATEHOUSE_E2E_PG_PASSWORD: server.password } }),
  });
  await gateway.proc.waitFor((l) => l.msg === "connector connected");
  const created = await runCli(["keys", "create", "--identity", "agent"], { cwd: gateway.dir });
  if (created.code !== 0) throw new Error(`keys create failed: ${created.stderr}`);
  key = created.stdout.trim();
});

afterAll(async () => {
  await gateway?.proc.stop("SIGKILL");
  await connector?.stop();
  await db?.drop();
  await store?.drop();
  await server?.stop();
  if (gateway) rmSync(gateway.dir, { recursive: true, force: true });
});

interface Client {
  child: ChildProcess;
  stderr: () => string;
  exited: Promise<{ code: number | null; atMs: number }>;
}

function psql(application: string, args: string[]): Client {
  const conninfo = `host=${listen.host} port=${listen.port} user=agent dbname=app sslmode=require password=${key} application_name=${application}`;
  const child = spawn("psql", ["-X", "-v", "ON_ERROR_STOP=1", conninfo, ...args], {
    stdio: ["pipe", "pipe", "pipe"],
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/tmp", LANG: "C.UTF-8" },
  });
  let stderr = "";
  child.stderr!.setEncoding("utf8").on("data", (t: string) => (stderr += t));
  child.stdout!.resume();
  child.stdin!.on("error", () => undefined);
  return { child, stderr: () => stderr, exited: new Promise((resolve) => child.once("close", (code) => resolve({ code, atMs: Date.now() }))) };
}

async function openSessions(applications: string[]): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const response = await fetch(`${gateway.apiUrl}/api/v1/sessions?limit=100`, { headers: { Authorization: `Bearer ${gateway.adminToken}` } });
    const { sessions } = (await response.json()) as { sessions: Array<{ clientApplication: string | null; endedUs: number | null; eventCount: number }> };
    const open = sessions.filter((s) => s.endedUs === null && applications.includes(s.clientApplication ?? ""));
    if (open.length === applications.length) return;
    if (Date.now() > deadline) throw new Error(`sessions not open yet: ${JSON.stringify(sessions)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

it("drains: open sessions get the grace, then FATAL 57P01 and a gateway_shutdown seal; the process exits within grace + 2 s", async () => {
  const busy = psql("shutdown-busy", ["-c", "select pg_sleep(60)"]);
  const idle = psql("shutdown-idle", []); // reads statements from stdin, which stays open
  const short = psql("shutdown-short", ["-c", "select pg_sleep(1.5)"]);
  await openSessions(["shutdown-busy", "shutdown-idle", "shutdown-short"]);

  const signalledAt = Date.now();
  gateway.proc.child.kill("SIGTERM");
  await gateway.proc.waitFor((l) => l.msg === "gateway draining: no new sessions; open ones have the grace period to finish");

  // No new sessions while draining.
  const late = psql("shutdown-late", ["-c", "select 1"]);
  const lateExit = await late.exited;
  expect(lateExit.code).not.toBe(0);
  expect(late.stderr()).toMatch(/Connection refused/);

  // A statement that finishes within the grace is not cut.
  const shortExit = await short.exited;
  expect(shortExit.code).toBe(0);

  // The busy one is ended at the grace, in Postgres's words, not with a bare EOF.
  const busyExit = await busy.exited;
  expect(busyExit.atMs - signalledAt).toBeGreaterThanOrEqual(GRACE_MS - 100);
  expect(busyExit.atMs - signalledAt).toBeLessThan(GRACE_MS + 1_500);
  expect(busy.stderr()).toContain("FATAL:  terminating connection due to administrator command");
  expect(busy.stderr()).not.toMatch(/SSL SYSCALL/);

  const exitCode = await gateway.proc.exited;
  const exitedAfterMs = Date.now() - signalledAt;
  expect(exitCode).toBe(0);
  expect(exitedAfterMs).toBeLessThan(GRACE_MS + 2_000);

  // The idle one finds the 57P01 waiting when it next speaks.
  idle.child.stdin!.end("select 1;\n");
  await idle.exited;
  expect(idle.stderr()).toContain("terminating connection due to administrator command");

  // Every session is sealed, the cut ones as gateway_shutdown.
  const client = new pg.Client({ connectionString: server.url(store.name) });
  await client.connect();
  try {
    const { rows } = await client.query<{ client_application: string; end_reason: string | null; seal_signature: string | null }>(
      "select client_application, end_reason, seal_signature from sessions where client_application like 'shutdown-%'",
    );
    const byApp = Object.fromEntries(rows.map((r) => [r.client_application, r]));
    expect(byApp["shutdown-busy"]?.end_reason).toBe("gateway_shutdown");
    expect(byApp["shutdown-idle"]?.end_reason).toBe("gateway_shutdown");
    expect(byApp["shutdown-short"]?.end_reason).toBe("client_closed");
    for (const row of rows) expect(row.seal_signature, row.client_application).toBeTruthy();
  } finally {
    await client.end();
  }
});

it("a second SIGTERM ends the grace at once", async () => {
  // The connector comes back on its own once the gateway answers on the same port again.
  await startGateway({ dir: gateway.dir, apiPort: Number(new URL(gateway.apiUrl).port) });
  await gateway.proc.waitFor((l) => l.msg === "connector connected");
  const busy = psql("hurry-busy", ["-c", "select pg_sleep(60)"]);
  await openSessions(["hurry-busy"]);

  const signalledAt = Date.now();
  gateway.proc.child.kill("SIGTERM");
  await gateway.proc.waitFor((l) => l.msg === "gateway stopping");
  gateway.proc.child.kill("SIGTERM");
  const busyExit = await busy.exited;
  expect(busyExit.atMs - signalledAt).toBeLessThan(GRACE_MS - 1_000);
  expect(busy.stderr()).toContain("FATAL:  terminating connection due to administrator command");
  expect(await gateway.proc.exited).toBe(0);
  expect(Date.now() - signalledAt).toBeLessThan(GRACE_MS);
});
