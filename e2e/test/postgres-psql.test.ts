import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../lib/processes.js";
import { appName, IDENTITY, startPostgresStack, statements, type PostgresStack, type Recorded } from "../lib/postgres-stack.js";

// psql, the client users try first, through gateway + connector to a real
// Postgres; each test reads the record back the way a user would.

let stack: PostgresStack;
let files: string;

beforeAll(async () => {
  stack = await startPostgresStack();
  files = mkdtempSync(join(tmpdir(), "gatehouse-e2e-psql-"));
});

afterAll(async () => {
  await stack?.stop();
  if (files) rmSync(files, { recursive: true, force: true });
});

function summary(recorded: Recorded) {
  return statements(recorded).map((e) => ({ kind: e.kind, command: e.command, outcome: e.outcome, tag: e.details?.tag, sqlstate: e.details?.sqlstate, status: e.details?.status }));
}

describe("psql through the gateway", () => {
  it("-c over TLS with the key as password: the rows come back and the record says who, from where, with what, and the outcome", async () => {
    const app = appName("c");
    const out = await stack.psql([stack.conninfo({ application: app, sslmode: "require" }), "-At", "-c", "select count(*), sum(amount) from orders"]);
    expect(out.stderr).toBe("");
    expect(out.code).toBe(0);
    expect(out.stdout.trim()).toBe("5000|249750.00");

    const { session, events } = await stack.sessionOf(app);
    expect(session).toMatchObject({ identity: { name: IDENTITY, method: "access_key" }, connection: "app", protocol: "postgres", connector: "dc1", clientAddress: "127.0.0.1", clientApplication: app, endReason: "client_closed" });
    expect(events.map((e) => e.kind)).toEqual(["connect", "query", "disconnect"]);
    const query = events[1]!;
    expect(query).toMatchObject({ command: "select count(*), sum(amount) from orders", outcome: "ok", details: { tag: "SELECT 1", rows: 1, transaction: "idle" } });
    expect(query.durationUs).toBeGreaterThan(0);
    expect(query.timeUs).toBeGreaterThanOrEqual(session.startedUs);

    // The same record through the CLI, as the README tells users to read it.
    const shown = await runCli(["sessions", "show", session.id, "--json"], { cwd: stack.gateway.dir });
    expect(shown.code).toBe(0);
    const json = JSON.parse(shown.stdout) as Recorded;
    expect(json.events.find((e) => e.kind === "query")?.command).toBe("select count(*), sum(amount) from orders");
    const last = await runCli(["sessions", "show", "--last"], { cwd: stack.gateway.dir });
    expect(last.code).toBe(0);
    expect(last.stdout).toMatch(/^identity\s+agent \(access_key\)$/m);
    expect(last.stdout).toContain(`application: ${app}`);
    expect(last.stdout).toMatch(/query\s+ok\s+[\d.]+(?:µs|ms|s)\s+select count\(\*\), sum\(amount\) from orders {2}tag=SELECT 1 rows=1/);
  });

  it("sslmode=verify-full with the gateway's generated certificate as the root: the client can check it is talking to the gateway", async () => {
    const root = join(stack.gateway.dir, "data", "tls", "gateway.crt");
    for (const host of ["127.0.0.1", "localhost"]) {
      const conninfo = stack.conninfo({ sslmode: "require" }).replace("sslmode=require", `sslmode=verify-full sslrootcert=${root}`).replace(/host=\S+/, `host=${host}`);
      const out = await stack.psql([conninfo, "-At", "-c", "select 'verified'"]);
      expect(out.stderr, host).toBe("");
      expect(out.stdout.trim()).toBe("verified");
    }
  });

  it("sslmode=disable authenticates with SCRAM-SHA-256 (the key never crosses the wire)", async () => {
    const app = appName("scram");
    const out = await stack.psql([stack.conninfo({ application: app, sslmode: "disable", password: null }), "-At", "-c", "select id from orders where id = 42"], { env: { PGPASSWORD: stack.key } });
    expect(out.stderr).toBe("");
    expect(out.stdout.trim()).toBe("42");
    const recorded = await stack.sessionOf(app);
    expect(recorded.session.identity.name).toBe(IDENTITY);
    expect(summary(recorded)).toEqual([{ kind: "query", command: "select id from orders where id = 42", outcome: "ok", tag: "SELECT 1", sqlstate: undefined, status: undefined }]);
  });

  it("sslmode=disable refuses a wrong key over SCRAM", async () => {
    const out = await stack.psql([stack.conninfo({ sslmode: "disable", password: null }), "-c", "select 1"], { env: { PGPASSWORD: "gk_not-the-key" } });
    expect(out.code).toBe(2);
    expect(out.stderr).toContain(`password authentication failed for user "${IDENTITY}"`);
  });

  it("after a second key is created for the identity, both keys work, over TLS and over SCRAM", async () => {
    const created = await runCli(["keys", "create", "--identity", IDENTITY], { cwd: stack.gateway.dir });
    expect(created.code).toBe(0);
    const newer = created.stdout.trim();
    for (const key of [stack.key, newer]) {
      const tls = await stack.psql([stack.conninfo({ sslmode: "require", password: key }), "-At", "-c", "select 'tls'"]);
      expect(tls.stderr).toBe("");
      expect(tls.stdout.trim()).toBe("tls");
      const scram = await stack.psql([stack.conninfo({ sslmode: "disable", password: null }), "-At", "-c", "select 'scram'"], { env: { PGPASSWORD: key } });
      expect(scram.stderr).toBe("");
      expect(scram.stdout.trim()).toBe("scram");
    }
  });

  it("several statements in one -c: one event each, in order", async () => {
    const app = appName("multi");
    const out = await stack.psql([stack.conninfo({ application: app }), "-At", "-c", "select 1; select id from orders where id <= 3 order by id; update orders set amount = amount where id <= 7"]);
    expect(out.stderr).toBe("");
    // psql prints the results of every statement of a multi-statement -c (psql 15).
    expect(out.stdout).toContain("UPDATE 7");
    expect(summary(await stack.sessionOf(app))).toEqual([
      { kind: "query", command: "select 1", outcome: "ok", tag: "SELECT 1", sqlstate: undefined, status: undefined },
      { kind: "query", command: "select id from orders where id <= 3 order by id", outcome: "ok", tag: "SELECT 3", sqlstate: undefined, status: undefined },
      { kind: "query", command: "update orders set amount = amount where id <= 7", outcome: "ok", tag: "UPDATE 7", sqlstate: undefined, status: undefined },
    ]);
  });

  it("a script file: every statement recorded with its tag, rows and the transaction status after it", async () => {
    const app = appName("script");
    const script = join(files, "script.sql");
    writeFileSync(
      script,
      [
        "begin;",
        "insert into imports (id, note) values (1, 'from a script'), (2, 'second');",
        "update imports set note = upper(note) where id = 1;",
        "commit;",
        "select note from imports order by id;",
        "delete from imports;",
        "",
      ].join("\n"),
    );
    const out = await stack.psql([stack.conninfo({ application: app }), "-At", "-f", script]);
    expect(out.stderr).toBe("");
    expect(out.stdout).toContain("FROM A SCRIPT\nsecond");
    const events = statements(await stack.sessionOf(app));
    expect(events.map((e) => [e.command, e.details?.tag, e.details?.rows, e.details?.transaction])).toEqual([
      // psql sends each statement of a file as its own Query, semicolon included.
      ["begin;", "BEGIN", undefined, "in_transaction"],
      ["insert into imports (id, note) values (1, 'from a script'), (2, 'second');", "INSERT 0 2", 2, "in_transaction"],
      ["update imports set note = upper(note) where id = 1;", "UPDATE 1", 1, "in_transaction"],
      ["commit;", "COMMIT", undefined, "idle"],
      ["select note from imports order by id;", "SELECT 2", 2, "idle"],
      ["delete from imports;", "DELETE 2", 2, "idle"],
    ]);
  });

  it("an error mid-script: its SQLSTATE and message recorded, later statements as the client saw them", async () => {
    const app = appName("error");
    const script = join(files, "error.sql");
    writeFileSync(script, "select 1;\nselect * from no_such_table;\nbegin;\nselect 1/0;\nselect 3;\nrollback;\nselect 4;\n");
    const out = await stack.psql([stack.conninfo({ application: app }), "-At", "-f", script]);
    // Without ON_ERROR_STOP psql carries on: the statement after 1/0 reaches the server, which
    // refuses it because the transaction is aborted.
    expect(out.stderr).toContain('relation "no_such_table" does not exist');
    expect(out.stderr).toContain("division by zero");
    expect(out.stderr).toContain("current transaction is aborted");
    expect(out.stdout.trim().split("\n")).toEqual(["1", "BEGIN", "ROLLBACK", "4"]);
    const events = statements(await stack.sessionOf(app));
    expect(events.map((e) => [e.command, e.outcome, e.details?.sqlstate ?? e.details?.tag, e.details?.transaction])).toEqual([
      ["select 1;", "ok", "SELECT 1", "idle"],
      ["select * from no_such_table;", "error", "42P01", "idle"],
      ["begin;", "ok", "BEGIN", "in_transaction"],
      ["select 1/0;", "error", "22012", "in_failed_transaction"],
      ["select 3;", "error", "25P02", "in_failed_transaction"],
      ["rollback;", "ok", "ROLLBACK", "idle"],
      ["select 4;", "ok", "SELECT 1", "idle"],
    ]);
    expect(events[1]!.details?.message).toBe('relation "no_such_table" does not exist');
    expect(events[3]!.details?.message).toBe("division by zero");
  });

  it("an error inside one multi-statement -c: the statements after it never ran and are recorded as skipped", async () => {
    const app = appName("skipped");
    const out = await stack.psql([stack.conninfo({ application: app }), "-At", "-c", "select 1; select 1/0; select 3"]);
    expect(out.code).toBe(1);
    expect(out.stderr).toContain("division by zero");
    const events = statements(await stack.sessionOf(app));
    expect(events.map((e) => [e.command, e.outcome, e.details?.sqlstate ?? e.details?.tag, e.details?.status])).toEqual([
      ["select 1", "ok", "SELECT 1", undefined],
      ["select 1/0", "error", "22012", undefined],
      ["select 3", null, undefined, "skipped"],
    ]);
  });

  it("ON_ERROR_STOP: nothing after the error reaches the server, or the record", async () => {
    const app = appName("stop");
    const out = await stack.psql([stack.conninfo({ application: app }), "-At", "-v", "ON_ERROR_STOP=1", "-c", "select 1", "-c", "select nope", "-c", "select 2"]);
    expect(out.code).toBe(1);
    expect(out.stderr).toContain('column "nope" does not exist');
    const events = statements(await stack.sessionOf(app));
    expect(events.map((e) => [e.command, e.outcome, e.details?.sqlstate])).toEqual([
      ["select 1", "ok", undefined],
      ["select nope", "error", "42703"],
    ]);
    // What a person reads: the statement, its SQLSTATE and message.
    const last = await runCli(["sessions", "show", "--last"], { cwd: stack.gateway.dir });
    expect(last.stdout).toMatch(/query\s+error\s+[\d.]+(?:µs|ms|s)\s+select nope {2}message=column "nope" does not exist sqlstate=42703/);
  });

  it("\\copy in and out: the rows arrive, and each copy is recorded with its direction and rows", async () => {
    const app = appName("copy");
    const input = join(files, "in.csv");
    const output = join(files, "out.csv");
    writeFileSync(input, Array.from({ length: 1500 }, (_, i) => `${i + 1},"note ${i + 1}, with a comma"`).join("\n") + "\n");
    const out = await stack.psql([
      stack.conninfo({ application: app }),
      "-At",
      "-c",
      `\\copy imports from '${input}' csv`,
      "-c",
      "select count(*), max(id) from imports",
      "-c",
      `\\copy (select id, customer from orders where id <= 2500 order by id) to '${output}' csv`,
      "-c",
      "truncate imports",
    ]);
    expect(out.stderr).toBe("");
    expect(out.stdout).toContain("COPY 1500");
    expect(out.stdout).toContain("1500|1500");
    const lines = readFileSync(output, "utf8").trim().split("\n");
    expect(lines).toHaveLength(2500);
    expect(lines[41]).toBe("42,customer-42");

    const events = statements(await stack.sessionOf(app));
    const copies = events.filter((e) => e.kind === "copy");
    expect(copies.map((e) => [e.command, e.outcome, e.details?.tag, e.details?.rows, (e.details?.copy as { direction: string }).direction])).toEqual([
      ["COPY  imports FROM STDIN csv", "ok", "COPY 1500", 1500, "in"],
      ["COPY  ( select id, customer from orders where id <= 2500 order by id ) TO STDOUT csv", "ok", "COPY 2500", 2500, "out"],
    ]);
    // The bytes of the data travelled (and were counted) too.
    expect((copies[0]!.details?.copy as { bytes: number }).bytes).toBe(readFileSync(input).length);
    expect((copies[1]!.details?.copy as { bytes: number }).bytes).toBe(readFileSync(output).length);
    expect(events.map((e) => e.kind)).toEqual(["copy", "query", "copy", "query"]);
  });

  it("\\copy in with a bad row: the client gets the error with its line, nothing is written, and the copy is recorded as failed", async () => {
    const app = appName("copy-error");
    const input = join(files, "bad.csv");
    writeFileSync(input, "1,one\n2,two\nthree,3\n4,four\n");
    const out = await stack.psql([stack.conninfo({ application: app }), "-At", "-c", `\\copy imports from '${input}' csv`, "-c", "select count(*) from imports"]);
    expect(out.stderr).toContain('invalid input syntax for type integer: "three"');
    expect(out.stderr).toContain("COPY imports, line 3");
    expect(out.stdout.trim()).toBe("0");
    const [copy, count] = statements(await stack.sessionOf(app));
    expect(copy).toMatchObject({ kind: "copy", outcome: "error", details: { sqlstate: "22P02", copy: { direction: "in" } } });
    expect(count).toMatchObject({ kind: "query", outcome: "ok", details: { tag: "SELECT 1" } });
  });

  it("pg_dump of a table: the dump is complete, and psql restores it through the gateway too", async () => {
    const app = appName("pg_dump");
    const dump = await stack.run("pg_dump", ["--no-owner", "--table=orders", stack.conninfo({ application: app })], { timeoutMs: 60_000 });
    expect(dump.stderr).toBe("");
    expect(dump.code).toBe(0);
    expect(dump.stdout).toContain("CREATE TABLE public.orders");
    expect(dump.stdout).toMatch(/COPY public\.orders \(id, customer, amount, created_at\) FROM stdin;\n/);
    const copied = dump.stdout.slice(dump.stdout.indexOf("FROM stdin;\n") + 12, dump.stdout.indexOf("\\.\n")).trim().split("\n");
    expect(copied).toHaveLength(5000);
    const events = statements(await stack.sessionOf(app));
    // pg_dump reads in one repeatable-read transaction, the rows with COPY TO STDOUT.
    expect(events.find((e) => /^BEGIN/.test(e.command ?? ""))).toBeDefined();
    expect(events.find((e) => e.kind === "copy")).toMatchObject({ command: "COPY public.orders (id, customer, amount, created_at) TO stdout;", outcome: "ok", details: { rows: 5000, copy: { direction: "out" } } });
    expect(events.filter((e) => e.outcome !== "ok")).toEqual([]);

    // Restore it under another name, through the gateway.
    const renamed = dump.stdout.replaceAll("public.orders", "public.orders_restored").replace(/CONSTRAINT orders_pkey/g, "CONSTRAINT orders_restored_pkey");
    const restore = await stack.psql([stack.conninfo(), "-q", "-v", "ON_ERROR_STOP=1", "-f", "-"], { input: renamed });
    expect(restore.stderr).toBe("");
    const check = await stack.psql([stack.conninfo(), "-At", "-c", "select count(*), sum(amount) from orders_restored", "-c", "drop table orders_restored"]);
    expect(check.stdout.trim().split("\n")[0]).toBe("5000|249750.00");
  });

  it("\\d and \\dt: psql's catalog queries work and are recorded", async () => {
    const app = appName("describe");
    const out = await stack.psql([stack.conninfo({ application: app }), "-c", "\\dt", "-c", "\\d orders"]);
    expect(out.stderr).toBe("");
    expect(out.stdout).toMatch(/public \| imports \| table/);
    expect(out.stdout).toMatch(/public \| orders\s+\| table/);
    expect(out.stdout).toMatch(/customer\s+\| text\s+\|\s+\| not null/);
    expect(out.stdout).toContain('"orders_pkey" PRIMARY KEY, btree (id)');
    const events = statements(await stack.sessionOf(app));
    expect(events.length).toBeGreaterThanOrEqual(3);
    expect(events.every((e) => e.kind === "query" && e.outcome === "ok")).toBe(true);
    expect(events.some((e) => /pg_catalog\.pg_class/.test(e.command ?? ""))).toBe(true);
    expect(events.some((e) => /relname OPERATOR\(pg_catalog\.~\) '\^\(orders\)\$'/.test(e.command ?? ""))).toBe(true);
  });

  it("pg_sleep(30) cancelled with Ctrl-C ends promptly with 57014, and the cancel is recorded", async () => {
    const app = appName("cancel");
    const admin = await stack.server.client();
    try {
      const started = Date.now();
      const child = stack.spawnClient("psql", ["-X", stack.conninfo({ application: app }), "-c", "select pg_sleep(30)"]);
      let stderr = "";
      child.stderr!.setEncoding("utf8").on("data", (t: string) => (stderr += t));
      const exited = new Promise<number | null>((resolve) => child.once("close", (code) => resolve(code)));
      // The query is running on the real server (the connector forwards application_name).
      for (let i = 0; ; i++) {
        const { rows } = await admin.query<{ n: number }>("select count(*)::int as n from pg_stat_activity where application_name = $1 and query like 'select pg_sleep%' and state = 'active'", [app]);
        if (rows[0]!.n === 1) break;
        if (i > 200) throw new Error("the query never started on the server");
        await new Promise((r) => setTimeout(r, 50));
      }
      child.kill("SIGINT");
      const code = await exited;
      const elapsed = Date.now() - started;
      expect(code).toBe(1);
      expect(stderr).toContain("canceling statement due to user request");
      expect(elapsed).toBeLessThan(10_000);

      const { events } = await stack.sessionOf(app);
      const query = events.find((e) => e.kind === "query");
      expect(query).toMatchObject({ command: "select pg_sleep(30)", outcome: "error", details: { sqlstate: "57014" } });
      const cancel = events.find((e) => e.kind === "cancel");
      expect(cancel).toMatchObject({ outcome: "ok" });
      expect(cancel!.timeUs).toBeGreaterThan(query!.timeUs);
    } finally {
      await admin.end();
    }
  });
});
