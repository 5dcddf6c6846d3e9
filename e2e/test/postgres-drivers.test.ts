import pg from "pg";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { appName, IDENTITY, startPostgresStack, statements, type PostgresStack } from "../lib/postgres-stack.js";
import { rawConnect } from "../lib/raw-postgres.js";

// The Node drivers agents are built with: node-postgres (pg) and postgres.js,
// through gateway + connector, with the statements, bound values, prepared
// statements, cursors, transactions and cancels they produce on the record.
// And the gateway's memory while results far bigger than it stream through.

let stack: PostgresStack;

beforeAll(async () => {
  stack = await startPostgresStack();
});

afterAll(async () => {
  await stack?.stop();
});

function pgClient(application: string): pg.Client {
  return new pg.Client({
    host: stack.listen.host,
    port: stack.listen.port,
    user: IDENTITY,
    database: "app",
    password: stack.key,
    application_name: application,
    ssl: { rejectUnauthorized: false },
  });
}

function postgresJs(application: string) {
  return postgres({
    host: stack.listen.host,
    port: stack.listen.port,
    user: IDENTITY,
    database: "app",
    password: stack.key,
    ssl: { rejectUnauthorized: false },
    max: 1,
    connection: { application_name: application },
    onnotice: () => undefined,
  });
}

const MiB = 1024 * 1024;

/** Samples the gateway's RSS every 50 ms while `work` runs; returns the peak. */
async function peakRss<T>(work: () => Promise<T>): Promise<{ result: T; peak: number }> {
  let peak = stack.gatewayRss();
  const timer = setInterval(() => (peak = Math.max(peak, stack.gatewayRss())), 50);
  try {
    const result = await work();
    return { result, peak: Math.max(peak, stack.gatewayRss()) };
  } finally {
    clearInterval(timer);
  }
}

describe("node-postgres (pg) through the gateway", () => {
  it("parameterised queries: rows back, the statement and its bound values recorded", async () => {
    const app = appName("pg-params");
    const client = pgClient(app);
    await client.connect();
    const { rows } = await client.query<{ id: number; customer: string }>("select id, customer from orders where id = $1 and customer = $2", [42, "customer-42"]);
    const nulls = await client.query("select $1::text is null as isnull, $2::text as quote", [null, "it's \"quoted\" ünïcödé"]);
    await client.end();
    expect(rows).toEqual([{ id: 42, customer: "customer-42" }]);
    expect(nulls.rows).toEqual([{ isnull: true, quote: "it's \"quoted\" ünïcödé" }]);

    const events = statements(await stack.sessionOf(app));
    expect(events.map((e) => [e.kind, e.command, e.params, e.outcome, e.details?.tag, e.details?.statement])).toEqual([
      ["execute", "select id, customer from orders where id = $1 and customer = $2", ["42", "customer-42"], "ok", "SELECT 1", ""],
      ["execute", "select $1::text is null as isnull, $2::text as quote", [null, "it's \"quoted\" ünïcödé"], "ok", "SELECT 1", ""],
    ]);
  });

  it("direct TLS (sslnegotiation=direct, libpq 17's): the session runs and is recorded; without the postgresql ALPN it is refused", async () => {
    const app = appName("pg-direct-tls");
    const client = new pg.Client({
      host: stack.listen.host,
      port: stack.listen.port,
      user: IDENTITY,
      database: "app",
      password: stack.key,
      application_name: app,
      ssl: { rejectUnauthorized: false },
      sslnegotiation: "direct",
    } as pg.ClientConfig);
    await client.connect();
    const { rows } = await client.query<{ n: number }>("select count(*)::int as n from orders where id <= $1", [10]);
    await client.end();
    expect(rows).toEqual([{ n: 10 }]);
    const recorded = await stack.sessionOf(app);
    expect(statements(recorded).map((e) => [e.command, e.outcome])).toEqual([["select count(*)::int as n from orders where id <= $1", "ok"]]);

    // A TLS client that does not say it speaks Postgres (no ALPN) gets no further than the handshake.
    const { connect } = await import("node:tls");
    const closed = await new Promise<string>((resolve) => {
      const socket = connect({ host: stack.listen.host, port: stack.listen.port, rejectUnauthorized: false });
      socket.on("secureConnect", () => socket.write(Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f])));
      socket.on("data", () => resolve("answered"));
      socket.on("error", () => resolve("closed"));
      socket.on("close", () => resolve("closed"));
    });
    expect(closed).toBe("closed");
  });

  it("named prepared statements: every execution recorded with the statement's text, even when it is not sent again", async () => {
    const app = appName("pg-prepared");
    const client = pgClient(app);
    await client.connect();
    const results: number[] = [];
    for (const id of [7, 8, 9]) {
      const { rows } = await client.query<{ amount: string }>({ name: "amount-of", text: "select amount from orders where id = $1", values: [id] });
      results.push(Number(rows[0]!.amount));
    }
    await client.end();
    expect(results).toEqual([0.7, 0.8, 0.9]);
    const events = statements(await stack.sessionOf(app));
    expect(events.map((e) => [e.kind, e.command, e.params, e.details?.statement, e.details?.rows])).toEqual([
      ["execute", "select amount from orders where id = $1", ["7"], "amount-of", 1],
      ["execute", "select amount from orders where id = $1", ["8"], "amount-of", 1],
      ["execute", "select amount from orders where id = $1", ["9"], "amount-of", 1],
    ]);
  });

  it("a cursor (DECLARE / FETCH / CLOSE in a transaction): each step recorded with its rows", async () => {
    const app = appName("pg-cursor");
    const client = pgClient(app);
    await client.connect();
    await client.query("begin");
    await client.query("declare big cursor for select id from orders order by id");
    const first = await client.query<{ id: number }>("fetch 100 from big");
    const second = await client.query<{ id: number }>("fetch 100 from big");
    await client.query("close big");
    await client.query("commit");
    await client.end();
    expect(first.rows.map((r) => r.id)).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
    expect(second.rows[0]!.id).toBe(101);
    const events = statements(await stack.sessionOf(app));
    expect(events.map((e) => [e.command, e.details?.tag, e.details?.transaction])).toEqual([
      ["begin", "BEGIN", "in_transaction"],
      ["declare big cursor for select id from orders order by id", "DECLARE CURSOR", "in_transaction"],
      ["fetch 100 from big", "FETCH 100", "in_transaction"],
      ["fetch 100 from big", "FETCH 100", "in_transaction"],
      ["close big", "CLOSE CURSOR", "in_transaction"],
      ["commit", "COMMIT", "idle"],
    ]);
    expect(events[2]!.details?.rows).toBe(100);
  });

  it("a transaction rolled back after an error: the failed state and the rollback recorded, nothing written", async () => {
    const app = appName("pg-rollback");
    const client = pgClient(app);
    await client.connect();
    await client.query("begin");
    await client.query("insert into imports (id, note) values ($1, $2)", [900, "rolled back"]);
    const failure = await client.query("insert into imports (id, note) values ($1, $2)", [900, "duplicate"]).catch((e: unknown) => e as { code: string });
    await client.query("rollback");
    const { rows } = await client.query("select count(*)::int as n from imports where id = 900");
    await client.end();
    expect(failure).toMatchObject({ code: "23505" });
    expect(rows).toEqual([{ n: 0 }]);
    const events = statements(await stack.sessionOf(app));
    expect(events.map((e) => [e.command, e.outcome, e.details?.sqlstate ?? e.details?.tag, e.details?.transaction])).toEqual([
      ["begin", "ok", "BEGIN", "in_transaction"],
      ["insert into imports (id, note) values ($1, $2)", "ok", "INSERT 0 1", "in_transaction"],
      ["insert into imports (id, note) values ($1, $2)", "error", "23505", "in_failed_transaction"],
      ["rollback", "ok", "ROLLBACK", "idle"],
      ["select count(*)::int as n from imports where id = 900", "ok", "SELECT 1", "idle"],
    ]);
    expect(events[2]!.params).toEqual(["900", "duplicate"]);
    expect(events[2]!.details?.message).toBe('duplicate key value violates unique constraint "imports_pkey"');
  });
});

describe("many clients at once", () => {
  it("40 concurrent pg clients: every one authenticated, answered with its own rows, and recorded as its own session", async () => {
    const app = appName("pg-many");
    const ids = Array.from({ length: 40 }, (_, i) => i + 1000);
    const answers = await Promise.all(
      ids.map(async (id) => {
        const client = pgClient(app);
        await client.connect();
        try {
          const { rows } = await client.query<{ id: number }>("select id from orders where id = $1", [id]);
          return rows[0]!.id;
        } finally {
          await client.end();
        }
      }),
    );
    expect(answers).toEqual(ids);
    const sessions = await stack.waitForSessions((s) => s.clientApplication === app, { count: ids.length, connection: "app" });
    const recordedIds = sessions.map((s) => statements(s).find((e) => e.kind === "execute")!.params![0]).sort();
    expect(recordedIds).toEqual(ids.map(String).sort());
    expect(new Set(sessions.map((s) => s.session.id)).size).toBe(ids.length);
  });

  it("binary parameters (bytea from a Buffer) are recorded as hex", async () => {
    const app = appName("pg-binary");
    const client = pgClient(app);
    await client.connect();
    const { rows } = await client.query<{ n: number }>("select length($1::bytea) as n", [Buffer.from([0xde, 0xad, 0xbe, 0xef, 0x00])]);
    await client.end();
    expect(rows[0]!.n).toBe(5);
    const [event] = statements(await stack.sessionOf(app));
    // node-postgres binds a Buffer in binary format.
    expect(event!.params).toEqual([{ hex: "deadbeef00", bytes: 5, truncated: false }]);
  });

  it("a parameter larger than the cap is recorded cut at 4 KiB with its full size", async () => {
    const app = appName("pg-bigparam");
    const client = pgClient(app);
    await client.connect();
    const big = "z".repeat(100_000);
    const { rows } = await client.query<{ n: number }>("select length($1::text) as n", [big]);
    await client.end();
    expect(rows[0]!.n).toBe(100_000);
    const [event] = statements(await stack.sessionOf(app));
    expect(event!.params).toEqual([{ text: "z".repeat(4096), bytes: 100_000, truncated: true }]);
  });
});

describe("LISTEN/NOTIFY", () => {
  it("the client recognises its own notifications (its key's pid is its backend's), and each is recorded", async () => {
    const app = appName("pg-notify");
    const client = pgClient(app);
    await client.connect();
    const { rows } = await client.query<{ pid: number }>("select pg_backend_pid() as pid");
    const processId = (client as unknown as { processID: number }).processID;
    expect(processId).toBe(rows[0]!.pid);
    const received = new Promise<pg.Notification>((resolve) => client.once("notification", resolve));
    await client.query("listen orders_changed");
    await client.query("select pg_notify('orders_changed', 'id=42')");
    const notification = await received;
    await client.end();
    // Clients skip their own notifications by comparing this pid with their key's.
    expect(notification).toMatchObject({ channel: "orders_changed", payload: "id=42", processId });
    const { events } = await stack.sessionOf(app);
    expect(events.filter((e) => e.kind === "notification")).toMatchObject([{ details: { channel: "orders_changed", payload: "id=42", processId } }]);
  });
});

describe("postgres.js through the gateway", () => {
  it("100 pipelined parameterised queries: each answer right, each recorded with its own values", async () => {
    const app = appName("pgjs-pipeline");
    const sql = postgresJs(app);
    const ids = Array.from({ length: 100 }, (_, i) => i * 37 + 1);
    const results = await Promise.all(ids.map((id) => sql<{ id: number; customer: string }[]>`select id, customer from orders where id = ${id}`));
    await sql.end();
    expect(results.map((r) => r[0])).toEqual(ids.map((id) => ({ id, customer: `customer-${id % 97}` })));
    const executes = statements(await stack.sessionOf(app)).filter((e) => e.kind === "execute" && e.command === "select id, customer from orders where id = $1");
    expect(executes.map((e) => e.params)).toEqual(ids.map((id) => [String(id)]));
    expect(executes.every((e) => e.outcome === "ok" && e.details?.rows === 1)).toBe(true);
  });

  it("sql.begin: the transaction's statements recorded between BEGIN and COMMIT", async () => {
    const app = appName("pgjs-begin");
    const sql = postgresJs(app);
    const total = await sql.begin(async (tx) => {
      await tx`insert into imports ${tx([{ id: 501, note: "a" }, { id: 502, note: "b" }])}`;
      const [row] = await tx<{ n: number }[]>`select count(*)::int as n from imports where id > 500`;
      await tx`delete from imports where id > 500`;
      return row!.n;
    });
    await sql.end();
    expect(total).toBe(2);
    // postgres.js first reads the server's types (a SELECT of its own); the transaction follows.
    const all = statements(await stack.sessionOf(app));
    const events = all.slice(all.findIndex((e) => e.details?.tag === "BEGIN"));
    expect(events.map((e) => [e.details?.tag, e.details?.transaction])).toEqual([
      ["BEGIN", "in_transaction"],
      ["INSERT 0 2", "in_transaction"],
      ["SELECT 1", "in_transaction"],
      ["DELETE 2", "in_transaction"],
      ["COMMIT", "idle"],
    ]);
    expect(events[1]!.params).toEqual(["501", "a", "502", "b"]);
  });

  it("a cursor (Execute with a row limit): each batch recorded as a suspended portal", async () => {
    const app = appName("pgjs-cursor");
    const sql = postgresJs(app);
    let seen = 0;
    for await (const rows of sql<{ id: number }[]>`select id from orders where id <= ${250} order by id`.cursor(100)) seen += rows.length;
    await sql.end();
    expect(seen).toBe(250);
    const executes = statements(await stack.sessionOf(app)).filter((e) => e.command === "select id from orders where id <= $1 order by id");
    expect(executes.map((e) => [e.details?.rows, e.details?.suspended ?? false])).toEqual([
      [100, true],
      [100, true],
      [50, false],
    ]);
  });

  it("a ~100 MB result arrives complete while the gateway's memory stays flat", async () => {
    const app = appName("pgjs-100mb");
    const sql = postgresJs(app);
    await sql`select 1`;
    const before = stack.gatewayRss();
    const { result, peak } = await peakRss(async () => {
      let rows = 0;
      let chars = 0;
      await sql<{ x: string }[]>`select repeat('x', 1000) as x from generate_series(1, 100000)`.forEach((row) => {
        rows++;
        chars += row.x.length;
      });
      return { rows, chars };
    });
    await sql.end();
    expect(result).toEqual({ rows: 100_000, chars: 100_000_000 });
    expect(peak - before, `gateway RSS went from ${(before / MiB).toFixed(0)} to ${(peak / MiB).toFixed(0)} MiB`).toBeLessThan(48 * MiB);
    const big = statements(await stack.sessionOf(app)).find((e) => e.command?.startsWith("select repeat"));
    expect(big).toMatchObject({ outcome: "ok", details: { tag: "SELECT 100000", rows: 100000 } });
  });
});

describe("cancel and backpressure", () => {
  it("postgres.js query.cancel() of pg_sleep(30) ends it promptly with 57014, the cancel recorded", async () => {
    const app = appName("pgjs-cancel");
    const sql = postgresJs(app);
    const admin = await stack.server.client();
    try {
      const started = Date.now();
      const query = sql`select pg_sleep(30)`;
      const outcome = query.then(
        () => null,
        (e: unknown) => e as { code?: string },
      );
      for (let i = 0; ; i++) {
        const { rows } = await admin.query<{ n: number }>("select count(*)::int as n from pg_stat_activity where application_name = $1 and query like 'select pg_sleep%' and state = 'active'", [app]);
        if (rows[0]!.n === 1) break;
        if (i > 200) throw new Error("the query never started on the server");
        await new Promise((r) => setTimeout(r, 50));
      }
      query.cancel();
      const error = await outcome;
      expect(error).toMatchObject({ code: "57014" });
      expect(Date.now() - started).toBeLessThan(10_000);
      // The session is still usable after the cancel.
      expect(await sql`select 2 as two`).toEqual([{ two: 2 }]);
    } finally {
      await sql.end();
      await admin.end();
    }
    const { events } = await stack.sessionOf(app);
    const sleep = events.find((e) => e.command === "select pg_sleep(30)");
    expect(sleep).toMatchObject({ kind: "execute", outcome: "error", details: { sqlstate: "57014", message: "canceling statement due to user request" } });
    expect(events.filter((e) => e.kind === "cancel")).toMatchObject([{ outcome: "ok" }]);
  });

  it("a client that stops reading a huge result stalls the server, not the gateway's memory", async () => {
    const app = appName("slow-reader");
    const admin = await stack.server.client();
    const client = await rawConnect({ ...stack.listen, user: IDENTITY, database: "app", password: stack.key, application: app });
    try {
      client.pause();
      const before = stack.gatewayRss();
      // ~1 GB of rows: far more than every buffer between server and client together.
      client.sendQuery("select repeat('y', 1000) from generate_series(1, 1000000)");
      const { peak } = await peakRss(async () => {
        // The server's backend blocks writing to its socket once the buffers are full.
        for (let i = 0; ; i++) {
          const { rows } = await admin.query<{ wait_event: string | null }>("select wait_event from pg_stat_activity where application_name = $1 and state = 'active'", [app]);
          if (rows[0]?.wait_event === "ClientWrite") break;
          if (i > 200) throw new Error(`the server never stalled: ${JSON.stringify(rows)}`);
          await new Promise((r) => setTimeout(r, 50));
        }
        // And stays blocked: the gateway is not reading on the client's behalf.
        await new Promise((r) => setTimeout(r, 1500));
        const { rows } = await admin.query<{ wait_event: string | null }>("select wait_event from pg_stat_activity where application_name = $1 and state = 'active'", [app]);
        expect(rows[0]?.wait_event).toBe("ClientWrite");
      });
      expect(peak - before, `gateway RSS went from ${(before / MiB).toFixed(0)} to ${(peak / MiB).toFixed(0)} MiB`).toBeLessThan(48 * MiB);
    } finally {
      client.close();
    }
    // The client went away mid-result: the server's query ends, the session is closed and says so.
    const { session, events } = await stack.sessionOf(app);
    // Closing a socket with unread data sends a reset: the gateway records the client's abrupt end.
    expect(["client_closed", "error"]).toContain(session.endReason);
    expect(events.at(-1)).toMatchObject({ kind: "disconnect", details: { endedBy: "client" } });
    // Only what the buffers between server and client hold went through: a few MB, not the GB.
    expect(events.at(-1)!.details!.bytesDown as number).toBeLessThan(64 * MiB);
    const query = events.find((e) => e.command?.startsWith("select repeat"));
    expect(query).toMatchObject({ kind: "query", outcome: null, details: { status: "interrupted" } });
    expect(query!.details!.rows as number).toBeGreaterThan(0);
    for (let i = 0; ; i++) {
      const { rows } = await admin.query<{ n: number }>("select count(*)::int as n from pg_stat_activity where application_name = $1", [app]);
      if (rows[0]!.n === 0) break;
      if (i > 200) throw new Error("the server backend outlived its client");
      await new Promise((r) => setTimeout(r, 50));
    }
    await admin.end();
  });
});
