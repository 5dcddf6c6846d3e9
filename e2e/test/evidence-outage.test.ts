import { openStore } from "@gatehouse/store";
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually, queryStore, startEvidenceStack, startStorePostgres, type EvidenceStack, type StorePostgres } from "./evidence-support.js";

// The store goes away mid-session and comes back: the gateway keeps relaying (strict recording:
// every statement durable in its journal first), and once the store is back every event arrives
// once, in order, and verifies. The gateway runs as the restricted role the migrations create.

const GATEWAY_LOGIN = "gatehouse_gw_e2e";
let storePg: StorePostgres;
let stack: EvidenceStack;
let ownerUrl: string;

beforeAll(async () => {
  storePg = await startStorePostgres();
  const admin = await storePg.admin();
  await admin.query("create database gatehouse");
  await admin.end();
  ownerUrl = storePg.url("gatehouse");
  // Migrate as the owner, then let the gateway in as a login role that only has gatehouse_gateway.
  const owner = await openStore({ url: ownerUrl });
  await owner.sql.query(`create role ${GATEWAY_LOGIN} login in role gatehouse_gateway`);
  await owner.close();
  stack = await startEvidenceStack({ storeUrl: storePg.url("gatehouse", GATEWAY_LOGIN) });
});

afterAll(async () => {
  await stack?.stop();
  storePg?.destroy();
});

const storeQuery = <T extends pg.QueryResultRow>(sql: string, params: unknown[] = [], user?: string) => queryStore<T>(storePg.url("gatehouse", user), sql, params);

describe("store outage", () => {
  it("runs 1,000 statements while the store is down; afterwards all arrive once, in order, and verify", async () => {
    // The gateway's connections to the store are its restricted role's.
    const roles = await storeQuery<{ usename: string }>("select distinct usename from pg_stat_activity where datname = 'gatehouse' and usename is not null and pid <> pg_backend_pid()");
    expect(roles.map((r) => r.usename)).toEqual([GATEWAY_LOGIN]);

    const client = await stack.client("outage");
    for (let i = 1; i <= 5; i++) await client.query(`select ${i} as warmup`);
    storePg.stop();
    const answers: number[] = [];
    for (let i = 1; i <= 1000; i++) {
      const result = await client.query<{ n: number }>(`select ${i} as n`);
      answers.push(result.rows[0]!.n);
    }
    expect(answers).toEqual(Array.from({ length: 1000 }, (_, i) => i + 1));
    await stack.gateway.proc.waitFor((l) => l.msg === "the store refused a batch; the journal keeps it and shipping is retried");
    // A new login while the store is down: its key is checked against the identity's keys as last read.
    const late = await stack.client("outage-login");
    expect((await late.query<{ n: number }>("select 7 as n")).rows[0]!.n).toBe(7);
    await late.end();
    await stack.gateway.proc.waitFor((l) => l.msg === "the store cannot be reached; checking the key against the identity's keys as last read");
    await client.end();

    storePg.start();
    const session = await eventually("the session closed in the store", async () => {
      const rows = await storeQuery<{ id: string; event_count: number; end_reason: string | null }>(
        "select id, event_count::int as event_count, end_reason from sessions where client_application = 'outage'",
      );
      return rows[0]?.end_reason ? rows[0] : undefined;
    }, 60_000);
    expect(session.end_reason).toBe("client_closed");
    const events = await storeQuery<{ seq: number; kind: string; command: string | null }>("select seq::int as seq, kind, command from events where session_id = $1 order by seq, ts", [session.id]);
    expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i + 1)); // gap-free, no seq twice
    expect(events).toHaveLength(session.event_count);
    const statements = events.filter((e) => /^select \d+ as n$/.test(e.command ?? "")).map((e) => e.command);
    expect(statements).toEqual(Array.from({ length: 1000 }, (_, i) => `select ${i + 1} as n`));
    const lateSession = await eventually("the login made during the outage, in the store", async () => {
      const rows = await storeQuery<{ id: string; end_reason: string | null }>("select id, end_reason from sessions where client_application = 'outage-login'");
      return rows[0]?.end_reason ? rows[0] : undefined;
    }, 60_000);
    const lateEvents = await storeQuery<{ command: string | null }>("select command from events where session_id = $1 and kind = 'query'", [lateSession.id]);
    expect(lateEvents.map((e) => e.command)).toEqual(["select 7 as n"]);
    await stack.gateway.proc.waitFor((l) => l.msg === "the store is back; shipping the journal again");

    const keyFile = await stack.publicKeyFile();
    const verify = await stack.cli(["verify", "--all", "--store-url", ownerUrl, "--public-key", keyFile]);
    expect(verify.stderr).toBe("");
    expect(verify.code).toBe(0);
    expect(verify.stdout).toMatch(/sessions? verified from the store: \d+ ok, 0 failed/);
  });

  it("the gateway's role can neither update nor delete events (nor rewrite a session)", async () => {
    const denied = async (sql: string) => {
      const error = await storeQuery(sql, [], GATEWAY_LOGIN).then(
        () => undefined,
        (e: unknown) => e as { code?: string; message: string },
      );
      expect(error, sql).toBeDefined();
      expect(error!.code, error!.message).toBe("42501");
    };
    await denied("update events set command = 'select 1' where seq = 1");
    await denied("delete from events");
    await denied("update sessions set end_reason = 'rewritten'");
    await denied("delete from sessions");
    // ...while it can read them.
    const [count] = await storeQuery<{ n: string }>("select count(*) as n from events", [], GATEWAY_LOGIN);
    expect(Number(count!.n)).toBeGreaterThan(1000);
  });

  it("retention drops whole old partitions with their sessions, as the owner", async () => {
    const owner = await openStore({ url: ownerUrl });
    try {
      const old = Date.UTC(2020, 0, 10) * 1000;
      await owner.record({
        sessions: [{ id: "old-session", identity: { name: IDENTITY_OLD }, connection: "app", protocol: "postgres", startedUs: old }],
        events: [{ sessionId: "old-session", seq: 1, timeUs: old + 1, kind: "query", command: "select 'long ago'" }],
        closes: [{ id: "old-session", endedUs: old + 2, endReason: "client_closed" }],
      });
    } finally {
      await owner.close();
    }
    const dry = await stack.cli(["retention", "--days", "365", "--dry-run", "--store-url", ownerUrl]);
    expect(dry.code).toBe(0);
    expect(dry.stdout).toContain("would drop events_y2020m01");
    expect(dry.stdout).toContain("would remove 1 ended session");
    const asGateway = await stack.cli(["retention", "--days", "365", "--store-url", storePg.url("gatehouse", GATEWAY_LOGIN)]);
    expect(asGateway.code).toBe(1);
    expect(asGateway.stderr).toMatch(/must be owner|permission denied/);
    const done = await stack.cli(["retention", "--days", "365", "--store-url", ownerUrl]);
    expect(done.code).toBe(0);
    expect(done.stdout).toContain("dropped events_y2020m01");
    // The gateway signed the cut before anything was dropped; it is in the store's checkpoints.
    expect(done.stdout).toMatch(/^signed by gateway [0-9a-f]{16} as checkpoint \d+$/m);
    const cuts = await storeQuery<{ horizon: string }>("select details->>'horizonUs' as horizon from checkpoints where kind = 'retention'");
    expect(cuts.map((c) => Number(c.horizon))).toContain(Date.UTC(2020, 1, 1) * 1000);
    expect(await storeQuery("select 1 from sessions where id = 'old-session'")).toEqual([]);
    // Recent sessions are untouched and still verify.
    const verify = await stack.cli(["verify", "--all", "--store-url", ownerUrl, "--public-key", await stack.publicKeyFile()]);
    expect(verify.code).toBe(0);
  });
});

const IDENTITY_OLD = "agent-2020";
