import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../lib/processes.js";
import { appName, IDENTITY, nonLoopbackAddress, startPostgresStack, type PostgresStack, type Recorded } from "../lib/postgres-stack.js";

// Every way a connection can be refused: the client sees a real Postgres error
// with the right SQLSTATE (what drivers and agents branch on), and the attempt
// is in the record.

let stack: PostgresStack;
// On an address that is not loopback (when the machine has one), so clients come from a
// non-loopback address and the default `requireTls: non-loopback` applies to them.
const external = nonLoopbackAddress();

beforeAll(async () => {
  stack = await startPostgresStack({ orders: 10, store: "postgres", limits: { maxSessionsPerIdentity: 3 }, ...(external ? { listenHost: external } : {}) });
});

afterAll(async () => {
  await stack?.stop();
});

interface PgError extends Error {
  code?: string;
  severity?: string;
}

/** Connects with node-postgres and returns the error it fails with. */
async function refusal(options: { connection?: string; user?: string; password?: string; application: string }): Promise<PgError> {
  const client = new pg.Client({
    host: stack.listen.host,
    port: stack.listen.port,
    user: options.user ?? IDENTITY,
    database: options.connection ?? "app",
    password: options.password ?? stack.key,
    application_name: options.application,
    ssl: { rejectUnauthorized: false },
    connectionTimeoutMillis: 15_000,
  });
  client.on("error", () => undefined);
  try {
    await client.connect();
  } catch (error) {
    return error as PgError;
  } finally {
    await client.end().catch(() => undefined);
  }
  throw new Error("the connection was accepted");
}

function only(recorded: Recorded) {
  expect(recorded.events).toHaveLength(1);
  return recorded.events[0]!;
}

describe("refused Postgres connections", () => {
  it("a wrong key: 28P01, recorded as auth_failed", async () => {
    const app = appName("badkey");
    const error = await refusal({ password: "gk_wrong", application: app });
    expect(error).toMatchObject({ code: "28P01", severity: "FATAL", message: `password authentication failed for user "${IDENTITY}"` });
    const recorded = await stack.sessionOf(app);
    expect(recorded.session).toMatchObject({ identity: { name: IDENTITY }, connection: "app", endReason: "auth_failed", clientAddress: stack.listen.host });
    expect(only(recorded)).toMatchObject({ kind: "auth_failed", outcome: "error", details: { reason: "wrong_key" } });
  });

  it("psql with a wrong key says so", async () => {
    const out = await stack.psql([stack.conninfo({ password: "gk_wrong" }), "-c", "select 1"]);
    expect(out.code).toBe(2);
    expect(out.stderr).toContain(`FATAL:  password authentication failed for user "${IDENTITY}"`);
  });

  it("an identity with no key at all: 28P01 too (no hint whether the identity exists)", async () => {
    const app = appName("nokey");
    const error = await refusal({ user: "nobody", password: "gk_whatever", application: app });
    expect(error).toMatchObject({ code: "28P01", message: 'password authentication failed for user "nobody"' });
    expect(only(await stack.sessionOf(app))).toMatchObject({ kind: "auth_failed", outcome: "error", details: { reason: "no_key" } });
  });

  it("a wrong key on a connection that does not exist: 28P01 as on one that does (an unauthenticated client learns no connection names)", async () => {
    const out = await stack.psql([stack.conninfo({ password: "gk_wrong", connection: "no-such-connection" }), "-c", "select 1"]);
    expect(out.code).toBe(2);
    expect(out.stderr).toContain(`FATAL:  password authentication failed for user "${IDENTITY}"`);
    expect(out.stderr).not.toContain("does not exist");
  });

  it("an identity over limits.maxSessionsPerIdentity: psql gets 53300, recorded; its other sessions go on", async () => {
    const held: pg.Client[] = [];
    try {
      for (let i = 0; i < 3; i++) {
        const client = new pg.Client({ host: stack.listen.host, port: stack.listen.port, user: IDENTITY, database: "app", password: stack.key, ssl: { rejectUnauthorized: false } });
        client.on("error", () => undefined);
        await client.connect();
        held.push(client);
      }
      const app = appName("too-many");
      const out = await stack.psql([stack.conninfo({ application: app }), "-c", "select 1"]);
      expect(out.code).toBe(2);
      expect(out.stderr).toContain(`FATAL:  too many connections for identity "${IDENTITY}"`);
      const recorded = await stack.sessionOf(app);
      expect(recorded.session).toMatchObject({ identity: { name: IDENTITY }, connection: "app", endReason: "too_many_sessions" });
      expect(only(recorded)).toMatchObject({ kind: "denied", outcome: "error", details: { code: "too_many_sessions", max: 3 } });
      expect((await held[0]!.query<{ n: number }>("select count(*)::int as n from orders")).rows[0]!.n).toBe(10);
    } finally {
      await Promise.all(held.map((c) => c.end().catch(() => undefined)));
    }
    // Once they have left, the identity gets in again.
    await new Promise((r) => setTimeout(r, 200));
    const again = await stack.psql([stack.conninfo(), "-At", "-c", "select 1"]);
    expect(again.stdout.trim()).toBe("1");
  });

  it("an identity the connection does not allow: 28000, recorded as denied", async () => {
    const app = appName("denied");
    const error = await refusal({ connection: "app-locked", application: app });
    expect(error).toMatchObject({ code: "28000", message: `identity "${IDENTITY}" is not allowed to use connection "app-locked"` });
    const recorded = await stack.sessionOf(app);
    expect(recorded.session).toMatchObject({ identity: { name: IDENTITY }, connection: "app-locked", endReason: "denied" });
    expect(only(recorded)).toMatchObject({ kind: "denied", outcome: "error", details: { code: "denied" } });
  });

  it("a connection that does not exist: 3D000, recorded", async () => {
    const app = appName("unknown");
    const error = await refusal({ connection: "no-such-connection", application: app });
    expect(error).toMatchObject({ code: "3D000", message: 'connection "no-such-connection" does not exist' });
    const recorded = await stack.sessionOf(app);
    expect(recorded.session).toMatchObject({ identity: { name: IDENTITY }, connection: "no-such-connection", endReason: "unknown_connection" });
    expect(only(recorded)).toMatchObject({ kind: "denied", outcome: "error", details: { code: "unknown_connection" } });
  });

  it("a target with nothing listening: 08006 saying the resource could not be reached, recorded", async () => {
    const app = appName("dead");
    const error = await refusal({ connection: "app-dead", application: app });
    expect(error.code).toBe("08006");
    expect(error.message).toBe(`the resource could not be reached: cannot reach 127.0.0.1:${stack.deadPort}: connect ECONNREFUSED 127.0.0.1:${stack.deadPort}`);
    const recorded = await stack.sessionOf(app);
    expect(recorded.session).toMatchObject({ connection: "app-dead", endReason: "target_refused" });
    expect(only(recorded)).toMatchObject({ kind: "connect", outcome: "error", details: { code: "target_refused" } });
  });

  it("a target off the connector's allow-list: 08006 saying it is not allowed, recorded", async () => {
    const app = appName("offlist");
    const error = await refusal({ connection: "app-offlist", application: app });
    expect(error.code).toBe("08006");
    expect(error.message).toBe(`the resource could not be reached: target 127.0.0.1:${stack.offListPort} is not on connector "dc1"'s allow-list`);
    const recorded = await stack.sessionOf(app);
    expect(only(recorded)).toMatchObject({ kind: "connect", outcome: "error", details: { code: "target_refused", tunnelCode: "TARGET_NOT_ALLOWED" } });
  });

  it("a connector that went away: 08006 saying the connector is unavailable, recorded", async () => {
    const dc2 = await stack.startSecondConnector();
    const working = appName("dc2-up");
    const out = await stack.psql([stack.conninfo({ connection: "app-dc2", application: working }), "-At", "-c", "select count(*) from orders"]);
    expect(out.stdout.trim()).toBe("10");
    const mark = stack.gateway.proc.lines.length;
    await dc2.stop();
    await stack.gateway.proc.waitFor((l) => l.msg === "connector disconnected" && l.connector === "dc2" && stack.gateway.proc.lines.indexOf(l) >= mark);

    const app = appName("dc2-down");
    const error = await refusal({ connection: "app-dc2", application: app });
    expect(error.code).toBe("08006");
    expect(error.message).toBe('connector unavailable: connector "dc2" is not connected');
    const recorded = await stack.sessionOf(app);
    expect(recorded.session).toMatchObject({ connection: "app-dc2", connector: "dc2", endReason: "connector_unavailable" });
    expect(only(recorded)).toMatchObject({ kind: "connect", outcome: "error", details: { code: "connector_unavailable" } });
  });

  it("a connector lost mid-session: the client gets FATAL 08006 saying so, the record ends connector_lost", async () => {
    const dc2 = await stack.startSecondConnector();
    const app = appName("dc2-crash");
    const client = new pg.Client({ host: stack.listen.host, port: stack.listen.port, user: IDENTITY, database: "app-dc2", password: stack.key, application_name: app, ssl: { rejectUnauthorized: false } });
    client.on("error", () => undefined);
    await client.connect();
    const running = client.query("select pg_sleep(5)").then(
      () => null,
      (e: unknown) => e as PgError,
    );
    const admin = await stack.server.client();
    try {
      for (let i = 0; ; i++) {
        const { rows } = await admin.query<{ n: number }>("select count(*)::int as n from pg_stat_activity where application_name = $1 and state = 'active'", [app]);
        if (rows[0]!.n === 1) break;
        if (i > 200) throw new Error("the query never started");
        await new Promise((r) => setTimeout(r, 50));
      }
    } finally {
      await admin.end();
    }
    dc2.child.kill("SIGKILL");
    const error = await running;
    expect(error).toMatchObject({ code: "08006", severity: "FATAL" });
    expect(error!.message).toMatch(/^the connection to the resource was lost: connector "dc2" went away/);
    await client.end().catch(() => undefined);
    const recorded = await stack.sessionOf(app);
    expect(recorded.session.endReason).toBe("connector_lost");
    expect(recorded.events.find((e) => e.command === "select pg_sleep(5)")).toMatchObject({ details: { status: "interrupted" } });
  });

  it.skipIf(!external)("plaintext from a non-loopback address: 28000 asking for TLS, before any password, recorded", async () => {
    const app = appName("plaintext");
    const out = await stack.psql([stack.conninfo({ sslmode: "disable", application: app }), "-c", "select 1"]);
    expect(out.code).toBe(2);
    expect(out.stderr).toContain(`FATAL:  TLS is required for connections from ${external} (use sslmode=require)`);
    const recorded = await stack.sessionOf(app);
    expect(only(recorded)).toMatchObject({ kind: "auth_failed", outcome: "error", details: { reason: "tls_required" } });
    // The same client with TLS gets in.
    const tls = await stack.psql([stack.conninfo({ sslmode: "require" }), "-At", "-c", "select 1"]);
    expect(tls.stdout.trim()).toBe("1");
  });

  it("a revoked key: 28P01 from then on", async () => {
    const created = await runCli(["keys", "create", "--identity", "temp-agent", "--json"], { cwd: stack.gateway.dir });
    const { id, key } = JSON.parse(created.stdout) as { id: string; key: string };
    const before = await refusal({ user: "temp-agent", password: key, connection: "app-locked", application: appName("revoke-before") });
    // Authenticated, then denied by policy: the key itself was good.
    expect(before.code).toBe("28000");
    expect((await runCli(["keys", "revoke", id], { cwd: stack.gateway.dir })).code).toBe(0);
    const app = appName("revoked");
    const after = await refusal({ user: "temp-agent", password: key, connection: "app-locked", application: app });
    expect(after.code).toBe("28P01");
    expect(only(await stack.sessionOf(app))).toMatchObject({ kind: "auth_failed", outcome: "error" });
  });

  it("an expired key: 28P01", async () => {
    const created = await runCli(["keys", "create", "--identity", "short-lived", "--expires", "1s", "--json"], { cwd: stack.gateway.dir });
    const { key } = JSON.parse(created.stdout) as { key: string };
    await new Promise((r) => setTimeout(r, 1200));
    const app = appName("expired");
    const error = await refusal({ user: "short-lived", password: key, connection: "app-locked", application: app });
    expect(error.code).toBe("28P01");
    expect(only(await stack.sessionOf(app))).toMatchObject({ kind: "auth_failed", details: { reason: "expired" } });
  });

  it("a client speaking garbage after the startup: a clean protocol error, the session recorded and closed", async () => {
    const { rawConnect } = await import("../lib/raw-postgres.js");
    const app = appName("garbage");
    const client = await rawConnect({ ...stack.listen, user: IDENTITY, database: "app", password: stack.key, application: app });
    // A message type no frontend sends ('#'), with an absurd length.
    client.socket.write(Buffer.from([0x23, 0x7f, 0xff, 0xff, 0xff]));
    const reply = await new Promise<Buffer>((resolve) => {
      const chunks: Buffer[] = [];
      client.socket.on("data", (c: Buffer) => chunks.push(c));
      client.socket.on("close", () => resolve(Buffer.concat(chunks)));
    });
    expect(reply[0]).toBe(0x45); // ErrorResponse
    expect(reply.toString("latin1")).toContain("C08P01");
    const recorded = await stack.sessionOf(app);
    expect(recorded.session.endReason).toBe("protocol_violation");
  });
});
