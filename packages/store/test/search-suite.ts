// Searching the record (events.search, sessions.list with event conditions), one suite run against
// both drivers (store.postgres.test.ts, store.embedded.test.ts): every filter, the keyset paging,
// and what migration 006 adds (the session's copies on each event, the trigram index).
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  createStore,
  GATEWAY_ROLE,
  migrate,
  migrations,
  StoreError,
  type EventFilter,
  type FoundEvent,
  type NewSession,
  type SessionEvent,
  type SessionFilter,
  type SqlExecutor,
  type Store,
} from "../src/index.js";

export interface SearchHarness {
  /** A store of its own for this suite. */
  open(): Promise<Store>;
  /** An empty database of the same kind, not migrated, for the upgrade test. */
  fresh(): Promise<{ sql: SqlExecutor; dispose(): Promise<void> }>;
  /** Whether migration 006 can make its trigram index here (Postgres: yes; the embedded store: no, by choice). */
  trigram: boolean;
}

/** 2026-11-20T09:00:00Z: a fixed week, so "since" and "until" are plain numbers. */
const T0 = Date.UTC(2026, 10, 20, 9) * 1000;
const SECOND = 1_000_000;

const session = (id: string, identity: string, connection: string, protocol: string, at: number): NewSession => ({
  id,
  identity: { name: identity },
  connection,
  protocol,
  startedUs: T0 + at * SECOND,
});

const ev = (sessionId: string, seq: number, at: number, kind: string, rest: Partial<SessionEvent> = {}): SessionEvent => ({
  sessionId,
  seq,
  timeUs: T0 + at * SECOND,
  kind,
  outcome: "ok",
  ...rest,
});

/**
 * A small record across the protocols, with the details each listener really writes: `sqlstate`
 * (Postgres, MySQL), `exitStatus` (SSH), `httpStatus` and `exitCode` (Kubernetes). Two events share
 * one µs (p2#2, h1#2) so the order's tie-breaks are exercised.
 */
const SESSIONS = [
  session("p1", "copilot-agent", "app", "postgres", 0),
  session("p2", "copilot-agent", "billing", "mysql", 10),
  session("h1", "alice", "bastion", "ssh", 20),
  session("k1", "copilot-agent", "prod", "kubernetes", 30),
  session("d1", "mallory", "app", "postgres", 40),
  session("d2", "alice", "prod", "kubernetes", 50),
];
const EVENTS = [
  ev("p1", 1, 1, "connect"),
  ev("p1", 2, 2, "query", { command: "SELECT 1", details: { tag: "SELECT 1", rows: 1 } }),
  ev("p1", 3, 3, "query", { command: "DROP TABLE users", outcome: "error", details: { sqlstate: "42501", message: "must be owner of table users" } }),
  ev("p1", 4, 4, "execute", { command: "truncate audit_log", params: [] }),
  ev("p1", 5, 5, "disconnect"),
  ev("p2", 1, 11, "connect"),
  ev("p2", 2, 21, "query", { command: "drop table tmp_%_x", details: { affectedRows: 0 } }),
  ev("p2", 3, 13, "query", { command: "select * from gone", outcome: "error", details: { errno: 1146, sqlstate: "42S02" } }),
  ev("h1", 1, 20.5, "connect"),
  ev("h1", 2, 21, "exec", { command: "rm -rf /tmp/build", details: { exitStatus: 0 } }),
  ev("h1", 3, 22, "exec", { command: "false", outcome: "error", details: { exitStatus: 1 } }),
  ev("k1", 1, 31, "connect"),
  ev("k1", 2, 32, "request", { command: "get pods -n prod", details: { verb: "get", httpStatus: 200 } }),
  ev("k1", 3, 33, "request", { command: "delete pods/web-1 -n prod", outcome: "error", details: { verb: "delete", httpStatus: 403 } }),
  ev("k1", 4, 34, "exec", { command: "exec pods/web-1 -n prod -- sh -c 'exit 1'", outcome: "error", details: { httpStatus: 101, exitCode: 1 } }),
  ev("d1", 1, 40, "auth_failed", { outcome: "error", details: { reason: "wrong_key" } }),
  ev("d2", 1, 50, "denied", { command: "get secrets", outcome: "error", details: { reason: "not_allowed" } }),
];

const key = (e: { sessionId: string; seq: number }) => `${e.sessionId}#${e.seq}`;

/** The fixture's events that pass `keep`, in the order a search returns them. */
function expected(keep: (e: SessionEvent, s: NewSession) => boolean): string[] {
  return EVENTS.filter((e) => keep(e, SESSIONS.find((s) => s.id === e.sessionId)!))
    .sort((a, b) => b.timeUs - a.timeUs || (a.sessionId < b.sessionId ? 1 : a.sessionId > b.sessionId ? -1 : b.seq - a.seq))
    .map(key);
}

async function expectInvalid(promise: Promise<unknown>, message: RegExp): Promise<void> {
  const err: unknown = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(StoreError);
  expect((err as StoreError).code).toBe("INVALID_ARGUMENT");
  expect((err as StoreError).message).toMatch(message);
}

export function defineSearchSuite(harness: () => SearchHarness): void {
  let store: Store;

  beforeAll(async () => {
    store = await harness().open();
  });
  afterAll(async () => {
    await store?.close();
  });
  beforeEach(async () => {
    await store.sql.query("truncate events, sessions");
    await store.record({ sessions: SESSIONS, events: EVENTS });
  });

  const found = async (filter: EventFilter) => (await store.events.search({ limit: 1000, ...filter })).events.map(key);
  const sessionIds = async (filter: SessionFilter) => (await store.sessions.list({ limit: 1000, ...filter })).map((s) => s.id);

  describe("events.search", () => {
    it("returns every event newest first, ties by session id then seq, each with its session's identity, connection and protocol", async () => {
      const page = await store.events.search({ limit: 1000 });
      expect(page.events.map(key)).toEqual(expected(() => true));
      // p2#2 and h1#2 share a µs: the higher session id first.
      expect(page.events.map(key).indexOf("p2#2")).toBeLessThan(page.events.map(key).indexOf("h1#2"));
      expect(page.next).toBeNull();
      const drop = page.events.find((e) => key(e) === "p1#3")!;
      expect(drop).toEqual<FoundEvent>({
        sessionId: "p1",
        seq: 3,
        timeUs: T0 + 3 * SECOND,
        kind: "query",
        command: "DROP TABLE users",
        params: null,
        outcome: "error",
        details: { sqlstate: "42501", message: "must be owner of table users" },
        durationUs: null,
        prevHash: null,
        hash: null,
        identity: "copilot-agent",
        connection: "app",
        protocol: "postgres",
      });
    });

    it("filters by identity, connection and protocol", async () => {
      expect(await found({ identity: "copilot-agent" })).toEqual(expected((_, s) => s.identity.name === "copilot-agent"));
      expect(await found({ identity: "alice" })).toEqual(["d2#1", "h1#3", "h1#2", "h1#1"]);
      expect(await found({ connection: "app" })).toEqual(expected((_, s) => s.connection === "app"));
      expect(await found({ protocol: "kubernetes" })).toEqual(["d2#1", "k1#4", "k1#3", "k1#2", "k1#1"]);
      expect(await found({ identity: "alice", protocol: "ssh" })).toEqual(["h1#3", "h1#2", "h1#1"]);
      expect(await found({ identity: "nobody" })).toEqual([]);
    });

    it("filters by kind, one or any of several", async () => {
      expect(await found({ kinds: ["exec"] })).toEqual(["k1#4", "h1#3", "h1#2"]);
      expect(await found({ kinds: ["query", "execute"] })).toEqual(expected((e) => e.kind === "query" || e.kind === "execute"));
    });

    it("filters by outcome: ok, error (not a refusal), denied (denied and auth_failed), never overlapping", async () => {
      const ok = await found({ outcome: "ok" });
      const error = await found({ outcome: "error" });
      const denied = await found({ outcome: "denied" });
      expect(ok).toEqual(expected((e) => e.outcome === "ok"));
      expect(error).toEqual(["k1#4", "k1#3", "h1#3", "p2#3", "p1#3"]);
      expect(denied).toEqual(["d2#1", "d1#1"]);
      expect([...ok, ...error, ...denied].sort()).toEqual(EVENTS.map(key).sort());
    });

    it("filters by time: since inclusive, until exclusive", async () => {
      expect(await found({ sinceUs: T0 + 33 * SECOND })).toEqual(["d2#1", "d1#1", "k1#4", "k1#3"]);
      expect(await found({ untilUs: T0 + 3 * SECOND })).toEqual(["p1#2", "p1#1"]);
      expect(await found({ sinceUs: T0 + 21 * SECOND, untilUs: T0 + 22 * SECOND })).toEqual(["p2#2", "h1#2"]);
    });

    it("finds text in the command ignoring case, takes % and _ literally, and any of several", async () => {
      expect(await found({ text: ["drop table"] })).toEqual(["p2#2", "p1#3"]);
      expect(await found({ text: ["TRUNCATE"] })).toEqual(["p1#4"]);
      expect(await found({ text: ["drop", "truncate"] })).toEqual(["p2#2", "p1#4", "p1#3"]);
      expect(await found({ text: ["%"] })).toEqual(["p2#2"]);
      expect(await found({ text: ["p_%_x"] })).toEqual(["p2#2"]);
      expect(await found({ text: ["tmp__"] })).toEqual([]);
      expect(await found({ text: ["\\"] })).toEqual([]);
    });

    it("filters by SQLSTATE, exit status (SSH exitStatus and kubectl exec exitCode) and HTTP status", async () => {
      expect(await found({ sqlstate: "42501" })).toEqual(["p1#3"]);
      expect(await found({ sqlstate: "42S02" })).toEqual(["p2#3"]);
      expect(await found({ exitStatus: 1 })).toEqual(["k1#4", "h1#3"]);
      expect(await found({ exitStatus: 0 })).toEqual(["h1#2"]);
      expect(await found({ httpStatus: 403 })).toEqual(["k1#3"]);
      expect(await found({ httpStatus: 101 })).toEqual(["k1#4"]);
      expect(await found({ httpStatus: 500 })).toEqual([]);
    });

    it("answers every DROP or TRUNCATE copilot-agent ran in a week, with whether it succeeded", async () => {
      const page = await store.events.search({ identity: "copilot-agent", sinceUs: T0, untilUs: T0 + 7 * 86_400 * SECOND, text: ["drop", "truncate"] });
      expect(page.events.map((e) => [e.command, e.outcome, e.details?.["sqlstate"] ?? null])).toEqual([
        ["drop table tmp_%_x", "ok", null],
        ["truncate audit_log", "ok", null],
        ["DROP TABLE users", "error", "42501"],
      ]);
    });

    it("pages by keyset: 50 by default, at most 1000, each page continuing where the last ended", async () => {
      const all = expected(() => true);
      const walked: string[] = [];
      let after: EventFilter["after"];
      let pages = 0;
      do {
        const page = await store.events.search({ limit: 3, ...(after ? { after } : {}) });
        walked.push(...page.events.map(key));
        after = page.next ?? undefined;
        pages++;
      } while (after !== undefined);
      expect(walked).toEqual(all);
      expect(pages).toBe(Math.ceil(all.length / 3));
      // A page that ends exactly at the last match says there is no more.
      expect((await store.events.search({ limit: all.length })).next).toBeNull();
      expect((await store.events.search({ limit: all.length - 1 })).next).toEqual({ sessionId: "p1", seq: 2, timeUs: T0 + 2 * SECOND });

      await store.record({
        sessions: [session("bulk", "bulk", "app", "postgres", 100)],
        events: Array.from({ length: 1100 }, (_, i) => ({ ...ev("bulk", i + 1, 100, "query"), timeUs: T0 + 100 * SECOND + i * 1000 })),
      });
      expect((await store.events.search()).events).toHaveLength(50);
      expect((await store.events.search({ limit: 5000 })).events).toHaveLength(1000);
    });

    it("pages stably while events are inserted: nothing stored before the first page is skipped or repeated", async () => {
      const before = expected(() => true);
      const first = await store.events.search({ limit: 4 });
      // Newer events, older events, and one in the very µs of the page's last event.
      const last = first.events.at(-1)!;
      await store.record({
        sessions: [session("late", "late", "app", "postgres", 0)],
        events: [ev("late", 1, 60, "query"), ev("late", 2, 0.5, "query"), { ...ev("late", 3, 0, "query"), timeUs: last.timeUs }],
      });
      const walked = first.events.map(key);
      let after = first.next;
      while (after !== null) {
        const page = await store.events.search({ limit: 4, after });
        walked.push(...page.events.map(key));
        after = page.next;
      }
      expect(new Set(walked).size).toBe(walked.length);
      expect(walked.filter((k) => !k.startsWith("late#"))).toEqual(before);
      expect(walked).not.toContain("late#1"); // newer than the first page: not in this walk
    });

    it("refuses a bad filter, naming it", async () => {
      await expectInvalid(store.events.search({ limit: 0 }), /^limit/);
      await expectInvalid(store.events.search({ outcome: "failed" as never }), /^outcome/);
      await expectInvalid(store.events.search({ kinds: [] }), /^kinds/);
      await expectInvalid(store.events.search({ text: [""] }), /^text/);
      await expectInvalid(store.events.search({ exitStatus: 1.5 }), /^exitStatus/);
      await expectInvalid(store.events.search({ httpStatus: Number.NaN }), /^httpStatus/);
      await expectInvalid(store.events.search({ sinceUs: 1.5 }), /µs/);
    });

    it("finds events written around the insert function by their session's identity", async () => {
      await store.sql.query(
        `insert into events (session_id, seq, ts, kind, command, outcome) values ('h1', 9, $1::timestamptz, 'exec', 'whoami', 'ok')`,
        [new Date((T0 + 99 * SECOND) / 1000).toISOString()],
      );
      const [newest] = (await store.events.search({ limit: 1 })).events;
      expect(newest).toMatchObject({ sessionId: "h1", seq: 9, identity: "alice", connection: "bastion", protocol: "ssh" });
    });

    it("lets the gateway's role search", async () => {
      await store.sql.transaction(async (tx) => {
        await tx.query(`set local role ${GATEWAY_ROLE}`);
        const asGateway = createStore(tx, store.driver);
        expect((await asGateway.events.search({ identity: "alice", text: ["rm -rf"] })).events.map(key)).toEqual(["h1#2"]);
        expect((await asGateway.sessions.list({ outcome: "denied" })).map((s) => s.id)).toEqual(["d2", "d1"]);
      });
    });

    it("has the trigram index on commands where pg_trgm is available, and searches text without it elsewhere", async () => {
      const rows = await store.sql.query<{ indexdef: string }>("select indexdef from pg_indexes where indexname = 'events_command_trgm_idx'");
      if (harness().trigram) expect(rows[0]?.indexdef).toMatch(/gin \(command .*gin_trgm_ops\)/i);
      else expect(rows).toEqual([]);
    });
  });

  describe("sessions.list", () => {
    it("filters sessions by identity, connection, protocol and start, newest first", async () => {
      expect(await sessionIds({})).toEqual(["d2", "d1", "k1", "h1", "p2", "p1"]);
      expect(await sessionIds({ identity: "copilot-agent" })).toEqual(["k1", "p2", "p1"]);
      expect(await sessionIds({ connection: "prod" })).toEqual(["d2", "k1"]);
      expect(await sessionIds({ protocol: "postgres" })).toEqual(["d1", "p1"]);
      expect(await sessionIds({ sinceUs: T0 + 20 * SECOND, untilUs: T0 + 40 * SECOND })).toEqual(["k1", "h1"]);
    });

    it("keeps the sessions with at least one event that matches the event conditions", async () => {
      expect(await sessionIds({ text: ["drop", "truncate"] })).toEqual(["p2", "p1"]);
      expect(await sessionIds({ identity: "copilot-agent", outcome: "error" })).toEqual(["k1", "p2", "p1"]);
      expect(await sessionIds({ outcome: "denied" })).toEqual(["d2", "d1"]);
      expect(await sessionIds({ kinds: ["exec"], exitStatus: 1 })).toEqual(["k1", "h1"]);
      expect(await sessionIds({ sqlstate: "42501" })).toEqual(["p1"]);
      expect(await sessionIds({ httpStatus: 403, protocol: "kubernetes" })).toEqual(["k1"]);
      // All conditions hold on one event: p1 has a DROP and an ok event, but not an ok DROP.
      expect(await sessionIds({ text: ["drop table users"], outcome: "ok" })).toEqual([]);
    });

    it("pages by keyset with where the next page starts", async () => {
      const first = await store.sessions.search({ limit: 4 });
      expect(first.sessions.map((s) => s.id)).toEqual(["d2", "d1", "k1", "h1"]);
      expect(first.next).toEqual({ startedUs: T0 + 20 * SECOND, id: "h1" });
      await store.sessions.create(session("h0", "alice", "bastion", "ssh", 20)); // same start, lower id: after h1
      const second = await store.sessions.search({ limit: 4, after: first.next! });
      expect(second.sessions.map((s) => s.id)).toEqual(["h0", "p2", "p1"]);
      expect(second.next).toBeNull();
    });
  });

  describe("migration 006", () => {
    it("fills in the session's identity, connection and protocol of events stored before it", async () => {
      const { sql, dispose } = await harness().fresh();
      try {
        await migrate(sql, migrations.slice(0, 5));
        const v5 = createStore(sql, "postgres");
        await v5.record({ sessions: SESSIONS.slice(0, 3), events: EVENTS.filter((e) => ["p1", "p2", "h1"].includes(e.sessionId)) });
        await migrate(sql);
        const upgraded = createStore(sql, "postgres");
        const page = await upgraded.events.search({ identity: "alice" });
        expect(page.events.map(key)).toEqual(["h1#3", "h1#2", "h1#1"]);
        const copies = await sql.query<{ n: number }>("select count(*) as n from events where identity_name is null or connection is null or protocol is null");
        expect(copies[0]?.n).toBe(0);
      } finally {
        await dispose();
      }
    });
  });
}
