import mysql from "mysql2/promise";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mysql2Options, startMysqlStack, type MysqlStack } from "../lib/mysql-stack.js";
import { eventually, queryStore, startStorePostgres, type StorePostgres } from "./evidence-support.js";

// Strict recording on the MySQL path, by the method of the Postgres evidence
// tests: the store goes away mid-session, statements keep running (each durable
// in the journal before it is forwarded) and arrive once, in order, and verify
// when it is back; then with the store away long enough to fill the journal,
// the next statement is refused with MySQL's disk-full error and never reaches
// the resource: the resource's rows count exactly the statements the client saw
// succeed, and each of them is in the record.

let storePg: StorePostgres;
let stack: MysqlStack;
let storeUrl: string;

beforeAll(async () => {
  storePg = await startStorePostgres();
  const admin = await storePg.admin();
  await admin.query("create database gatehouse");
  await admin.end();
  storeUrl = storePg.url("gatehouse");
  stack = await startMysqlStack({ orders: 10, storeUrl, recording: { mode: "strict", journal: { maxBytes: 512 * 1024, segmentBytes: 64 * 1024 } } });
});

afterAll(async () => {
  await stack?.stop();
  storePg?.destroy();
});

async function connect(application: string): Promise<mysql.Connection> {
  const c = await mysql.createConnection(mysql2Options(stack.endpoint(), { application }));
  c.on("error", () => undefined);
  return c;
}

describe(`strict recording on the MySQL path`, () => {
  it("runs 300 statements while the store is down; afterwards all arrive once, in order, and gatehouse verify passes", async () => {
    const client = await connect("mysql-outage");
    for (let i = 1; i <= 3; i++) await client.query(`SELECT ${i} AS warmup`);
    storePg.stop();
    const answers: number[] = [];
    for (let i = 1; i <= 300; i++) {
      const [rows] = (await client.query(`SELECT ${i} AS n`)) as unknown as [Array<{ n: number }>];
      answers.push(rows[0]!.n);
    }
    expect(answers).toEqual(Array.from({ length: 300 }, (_, i) => i + 1));
    await stack.gateway.proc.waitFor((l) => l.msg === "the store refused a batch; the journal keeps it and shipping is retried");
    await client.end();

    storePg.start();
    const session = await eventually(
      "the session closed in the store",
      async () => {
        const rows = await queryStore<{ id: string; event_count: number; end_reason: string | null; protocol: string }>(
          storeUrl,
          "select id, event_count::int as event_count, end_reason, protocol from sessions where client_application = 'mysql-outage'",
        );
        return rows[0]?.end_reason ? rows[0] : undefined;
      },
      60_000,
    );
    expect(session).toMatchObject({ end_reason: "client_closed", protocol: "mysql" });
    const events = await queryStore<{ seq: number; command: string | null }>(storeUrl, "select seq::int as seq, command from events where session_id = $1 order by seq, ts", [session.id]);
    expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i + 1)); // gap-free, no seq twice
    expect(events).toHaveLength(session.event_count);
    expect(events.filter((e) => /^SELECT \d+ AS n$/.test(e.command ?? "")).map((e) => e.command)).toEqual(Array.from({ length: 300 }, (_, i) => `SELECT ${i + 1} AS n`));

    const verify = await stack.cli(["verify", "--all", "--store-url", storeUrl, "--public-key", await stack.publicKeyFile()]);
    expect(verify.stderr).toBe("");
    expect(verify.code).toBe(0);
    expect(verify.stdout).toMatch(/sessions? verified from the store: \d+ ok, 0 failed/);
  });

  it("a full journal refuses the next statement with 1021 (disk full), which never reaches the resource; it recovers when the store is back", async () => {
    await stack.gateway.proc.waitFor((l) => l.msg === "the store is back; shipping the journal again", 60_000);
    const resource = await stack.server.connect(stack.db.name);
    const client = await connect("mysql-full");
    try {
      await client.query("INSERT INTO imports (id, note) VALUES (0, 'before the outage')");
      storePg.stop();
      let succeeded = 0;
      let refusal: { errno?: number; sqlState?: string; sqlMessage?: string } | undefined;
      for (let i = 1; i <= 20_000 && !refusal; i++) {
        try {
          await client.query(`INSERT INTO imports (id, note) VALUES (${i}, '${"n".repeat(200)}')`);
          succeeded++;
        } catch (error) {
          refusal = error as typeof refusal;
        }
      }
      expect(refusal).toMatchObject({ errno: 1021, sqlState: "HY000" });
      expect(refusal!.sqlMessage).toContain("journal is full");
      expect(succeeded).toBeGreaterThan(10);
      // Exactly the inserts the client saw succeed reached the resource: the refused one did not run.
      const [[count]] = (await resource.query("SELECT COUNT(*) AS n FROM imports")) as unknown as [Array<{ n: number }>];
      expect(count!.n).toBe(succeeded + 1);

      // Only a "store is back" logged from now on counts (the first test's is in the log too).
      const mark = stack.gateway.proc.lines.length;
      storePg.start();
      await stack.gateway.proc.waitFor((l) => l.msg === "the store is back; shipping the journal again" && stack.gateway.proc.lines.indexOf(l) >= mark, 60_000);
      const after = await eventually("a new session accepted", () => connect("mysql-after-full"));
      const [answer] = await after.query("SELECT 1 AS ok");
      expect(answer).toEqual([{ ok: 1 }]);
      await after.end();

      const full = await eventually("the refused session in the store", async () => {
        const rows = await queryStore<{ id: string; end_reason: string | null }>(storeUrl, "select id, end_reason from sessions where client_application = 'mysql-full'");
        return rows[0]?.end_reason ? rows[0] : undefined;
      }, 60_000);
      expect(full.end_reason).toBe("recording_unavailable");
      const inserts = await queryStore<{ command: string }>(storeUrl, "select command from events where session_id = $1 and command like 'INSERT INTO imports%' order by seq", [full.id]);
      // Every insert that ran is in the record; the refused one is not.
      expect(inserts).toHaveLength(succeeded + 1);
      expect(inserts.at(-1)!.command).toBe(`INSERT INTO imports (id, note) VALUES (${succeeded}, '${"n".repeat(200)}')`);
    } finally {
      client.destroy();
      await resource.end();
    }
    const verify = await stack.cli(["verify", "--all", "--store-url", storeUrl, "--public-key", await stack.publicKeyFile()]);
    expect(verify.code).toBe(0);
  });
});
