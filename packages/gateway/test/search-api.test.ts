// GET /api/v1/events and GET /api/v1/sessions with every filter, the cursor, and paging while
// events are being inserted, on a whole gateway in-process with a real store: Postgres, and the
// embedded store. The record is written straight into the gateway's store (store.record, as the
// shipper does), with the details each listener really writes.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NewSession, SessionEvent } from "@gatehouse/store";
import { validateConfig } from "../src/config/load.js";
import { startGateway, type Gateway } from "../src/gateway.js";
import { createLogger } from "../src/logger.js";
import { createStoreDatabase, type StoreDatabase } from "./support/store-database.js";

const SECOND = 1_000_000;
const DAY = 86_400 * SECOND;
/** Three days ago, whole seconds: inside "the last week" whenever the test runs. */
const BASE = (Math.floor(Date.now() / 1000) - 3 * 86_400) * SECOND;

const session = (id: string, identity: string, connection: string, protocol: string, at: number): NewSession => ({ id, identity: { name: identity }, connection, protocol, startedUs: BASE + at * SECOND });
const ev = (sessionId: string, seq: number, at: number, kind: string, rest: Partial<SessionEvent> = {}): SessionEvent => ({ sessionId, seq, timeUs: BASE + at * SECOND, kind, outcome: "ok", ...rest });

const SESSIONS = [
  session("old", "copilot-agent", "app", "postgres", -10 * 86_400),
  session("p1", "copilot-agent", "app", "postgres", 0),
  session("m1", "copilot-agent", "billing", "mysql", 10),
  session("h1", "alice", "bastion", "ssh", 20),
  session("k1", "copilot-agent", "prod", "kubernetes", 30),
  session("d1", "mallory", "app", "postgres", 40),
  session("d2", "alice", "prod", "kubernetes", 50),
];
const EVENTS = [
  ev("old", 1, -10 * 86_400 + 1, "query", { command: "DROP TABLE archive" }),
  ev("p1", 1, 1, "connect"),
  ev("p1", 2, 2, "query", { command: "SELECT 1", details: { tag: "SELECT 1", rows: 1 } }),
  ev("p1", 3, 3, "query", { command: "DROP TABLE users", outcome: "error", details: { sqlstate: "42501", message: "must be owner of table users" } }),
  ev("p1", 4, 4, "execute", { command: "truncate audit_log", params: [] }),
  ev("m1", 1, 11, "connect"),
  ev("m1", 2, 12, "query", { command: "drop table tmp_x" }),
  ev("m1", 3, 13, "query", { command: "select * from gone", outcome: "error", details: { errno: 1146, sqlstate: "42S02" } }),
  ev("h1", 1, 21, "exec", { command: "rm -rf /tmp/build", details: { exitStatus: 0 } }),
  ev("h1", 2, 22, "exec", { command: "false", outcome: "error", details: { exitStatus: 1 } }),
  ev("k1", 1, 32, "request", { command: "get pods -n prod", details: { verb: "get", httpStatus: 200 } }),
  ev("k1", 2, 33, "request", { command: "delete pods/web-1 -n prod", outcome: "error", details: { verb: "delete", httpStatus: 403 } }),
  ev("k1", 3, 34, "exec", { command: "exec pods/web-1 -n prod -- sh -c 'exit 2'", outcome: "error", details: { httpStatus: 101, exitCode: 2 } }),
  ev("d1", 1, 40, "auth_failed", { outcome: "error", details: { reason: "wrong_key" } }),
  ev("d2", 1, 50, "denied", { command: "get secrets", outcome: "error", details: { reason: "not_allowed" } }),
];

interface EventsAnswer {
  events: Array<SessionEvent & { time: string; identity: string; connection: string; protocol: string }>;
  nextCursor: string | null;
}
interface ErrorAnswer {
  error: { code: string; message: string };
}

const key = (e: { sessionId: string; seq: number }) => `${e.sessionId}#${e.seq}`;

const DRIVERS = [
  ["postgres", true],
  ["embedded", false],
] as const;

describe.each(DRIVERS)("search API on the %s store", (_driver, postgres) => {
  let gateway: Gateway;
  let database: StoreDatabase | undefined;
  let dir: string;
  let adminToken: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "gatehouse-search-api-"));
    database = postgres ? await createStoreDatabase() : undefined;
    const quiet = new Writable({ write: (_chunk, _encoding, done) => done() });
    const config = { dataDir: join(dir, "data"), listen: { api: "127.0.0.1:0" }, ...(database ? { store: { url: database.url() } } : {}) };
    gateway = await startGateway(validateConfig(config), { logger: createLogger("warn", quiet), onAdminTokenGenerated: (token) => (adminToken = token) });
    await gateway.store.record({ sessions: SESSIONS, events: EVENTS });
  });

  afterAll(async () => {
    await gateway?.close();
    await database?.drop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function get<T>(path: string): Promise<{ status: number; body: T }> {
    const response = await fetch(`${gateway.apiUrl}${path}`, { headers: { Authorization: `Bearer ${adminToken}` } });
    return { status: response.status, body: (await response.json()) as T };
  }

  /** The keys of the events a query finds (every page), checking each was answered. */
  async function events(query: string): Promise<string[]> {
    return everyPage<EventsAnswer>("/api/v1/events", query, (body) => body.events.map(key));
  }

  /**
   * The ids of the sessions a query finds (every page: the paging test's writer leaves ever more
   * sessions behind, newer than the fixtures, as many as the store took while it ran).
   */
  async function sessions(query: string): Promise<string[]> {
    return everyPage<{ sessions: Array<{ id: string }>; nextCursor: string | null }>("/api/v1/sessions", query, (body) => body.sessions.map((s) => s.id));
  }

  async function everyPage<T extends { nextCursor: string | null }>(path: string, query: string, items: (body: T) => string[]): Promise<string[]> {
    const found: string[] = [];
    let cursor: string | null = null;
    do {
      const { status, body }: { status: number; body: T } = await get<T>(`${path}?limit=1000&${query}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
      expect(status, JSON.stringify(body)).toBe(200);
      found.push(...items(body));
      cursor = body.nextCursor;
    } while (cursor !== null);
    return found;
  }

  describe("GET /api/v1/events", () => {
    it("answers newest first with the event fields and whose session it is", async () => {
      const { body } = await get<EventsAnswer>("/api/v1/events?limit=3");
      expect(body.events.map(key)).toEqual(["d2#1", "d1#1", "k1#3"]);
      expect(body.events[2]).toEqual({
        sessionId: "k1",
        seq: 3,
        timeUs: BASE + 34 * SECOND,
        time: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000000Z$/),
        kind: "exec",
        command: "exec pods/web-1 -n prod -- sh -c 'exit 2'",
        params: null,
        outcome: "error",
        details: { httpStatus: 101, exitCode: 2 },
        durationUs: null,
        prevHash: null,
        hash: null,
        identity: "copilot-agent",
        connection: "prod",
        protocol: "kubernetes",
      });
      expect(typeof body.nextCursor).toBe("string");
      expect((await get<EventsAnswer>("/api/v1/events")).body.events).toHaveLength(EVENTS.length); // default 50
    });

    it.each([
      ["identity=alice", ["d2#1", "h1#2", "h1#1"]],
      ["connection=billing", ["m1#3", "m1#2", "m1#1"]],
      ["protocol=ssh", ["h1#2", "h1#1"]],
      ["kind=exec", ["k1#3", "h1#2", "h1#1"]],
      ["kind=connect,execute", ["m1#1", "p1#4", "p1#1"]],
      ["kind=connect&kind=execute", ["m1#1", "p1#4", "p1#1"]],
      ["outcome=ok&since=4d", ["k1#1", "h1#1", "m1#2", "m1#1", "p1#4", "p1#2", "p1#1"]],
      ["outcome=error", ["k1#3", "k1#2", "h1#2", "m1#3", "p1#3"]],
      ["outcome=denied", ["d2#1", "d1#1"]],
      ["since=7d", EVENTS.filter((e) => e.sessionId !== "old").map(key).reverse()],
      [`since=${BASE + 33 * SECOND}&until=${new Date((BASE + 50 * SECOND) / 1000).toISOString()}`, ["d1#1", "k1#3", "k1#2"]],
      ["q=DROP%20table", ["m1#2", "p1#3", "old#1"]],
      ["q=drop&q=TRUNCATE", ["m1#2", "p1#4", "p1#3", "old#1"]],
      ["q=50%25", []],
      ["sqlstate=42501", ["p1#3"]],
      ["sqlstate=42s02", ["m1#3"]],
      ["exitStatus=1", ["h1#2"]],
      ["exitStatus=2", ["k1#3"]],
      ["exitStatus=0", ["h1#1"]],
      ["httpStatus=403", ["k1#2"]],
      ["identity=copilot-agent&since=7d&q=drop&q=truncate", ["m1#2", "p1#4", "p1#3"]],
    ])("%s", async (query, expected) => {
      expect(await events(query)).toEqual(expected);
    });

    it("pages with an opaque cursor until nextCursor is null", async () => {
      const all = await events("");
      const walked: string[] = [];
      let cursor: string | null = null;
      do {
        const { body }: { body: EventsAnswer } = await get<EventsAnswer>(`/api/v1/events?limit=4${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
        walked.push(...body.events.map(key));
        cursor = body.nextCursor;
      } while (cursor !== null);
      expect(walked).toEqual(all);
      // The cursor keeps the filters' order: the second page of one identity's events.
      const first = await get<EventsAnswer>("/api/v1/events?identity=copilot-agent&limit=2");
      const second = await get<EventsAnswer>(`/api/v1/events?identity=copilot-agent&limit=2&cursor=${encodeURIComponent(first.body.nextCursor!)}`);
      expect([...first.body.events, ...second.body.events].map(key)).toEqual(["k1#3", "k1#2", "k1#1", "m1#3"]);
    });

    it.each([
      ["limit=0", "limit"],
      ["limit=1001", "limit"],
      ["since=last-week", "since"],
      ["until=tomorrow", "until"],
      ["outcome=failed", "outcome"],
      ["kind=select", "kind"],
      ["protocol=http", "protocol"],
      ["sqlstate=4250", "sqlstate"],
      ["exitStatus=one", "exitStatus"],
      ["httpStatus=42", "httpStatus"],
      [`q=${"x".repeat(1001)}`, "q"],
      ["cursor=nonsense", "cursor"],
      ["identiy=alice", "identiy"],
    ])("%s is a 400 naming %s", async (query, parameter) => {
      const { status, body } = await get<ErrorAnswer>(`/api/v1/events?${query}`);
      expect(status).toBe(400);
      expect(body.error.code).toBe("bad_request");
      expect(body.error.message).toMatch(new RegExp(`^${parameter}: `));
    });

    it("refuses a sessions cursor", async () => {
      const { body: page } = await get<{ nextCursor: string }>("/api/v1/sessions?limit=1");
      const { status, body } = await get<ErrorAnswer>(`/api/v1/events?cursor=${encodeURIComponent(page.nextCursor)}`);
      expect(status).toBe(400);
      expect(body.error.message).toMatch(/^cursor: /);
    });

    it("pages without duplicates or skips while another task inserts events", async () => {
      const existing = await events("");
      const listed = new Set<string>();
      let duplicates = 0;
      let stop = false;
      let inserted = 0;
      // Inserts newer events, older events, and events in the very µs of existing ones, as fast as
      // the store takes them, for as long as the paging runs.
      const writer = (async () => {
        for (let i = 1; !stop; i++) {
          const id = `live-${i}`;
          const at = [60, -1, 21, 3][i % 4]!;
          await gateway.store.record({ sessions: [session(id, "writer", "app", "postgres", at)], events: [ev(id, 1, at, "query", { command: `select ${i}` }), ev(id, 2, at + 0.5, "query")] });
          inserted += 2;
        }
      })();
      try {
        let cursor: string | null = null;
        do {
          const { body }: { body: EventsAnswer } = await get<EventsAnswer>(`/api/v1/events?limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
          for (const e of body.events) {
            if (listed.has(key(e))) duplicates++;
            listed.add(key(e));
          }
          cursor = body.nextCursor;
          await new Promise((resolve) => setTimeout(resolve, 5)); // room for the writer between pages
        } while (cursor !== null);
      } finally {
        stop = true;
        await writer;
      }
      expect(inserted).toBeGreaterThan(0);
      expect(duplicates).toBe(0);
      expect(existing.filter((k) => !listed.has(k))).toEqual([]);
    });
  });

  describe("GET /api/v1/sessions", () => {
    it.each([
      ["identity=copilot-agent", ["k1", "m1", "p1", "old"]],
      ["protocol=kubernetes", ["d2", "k1"]],
      ["connection=app&since=7d", ["d1", "p1"]],
      ["q=drop&q=truncate&since=7d", ["m1", "p1"]],
      ["outcome=denied", ["d2", "d1"]],
      ["kind=exec&exitStatus=2", ["k1"]],
      ["sqlstate=42S02", ["m1"]],
      ["httpStatus=403", ["k1"]],
    ])("%s", async (query, expected) => {
      expect((await sessions(query)).filter((id) => !id.startsWith("live-"))).toEqual(expected);
    });

    it("pages with a cursor, and refuses an events cursor", async () => {
      const first = await get<{ sessions: Array<{ id: string }>; nextCursor: string }>("/api/v1/sessions?identity=copilot-agent&limit=3");
      expect(first.body.sessions.map((s) => s.id)).toEqual(["k1", "m1", "p1"]);
      const second = await get<{ sessions: Array<{ id: string }>; nextCursor: string | null }>(`/api/v1/sessions?identity=copilot-agent&limit=3&cursor=${encodeURIComponent(first.body.nextCursor)}`);
      expect(second.body).toMatchObject({ sessions: [{ id: "old" }], nextCursor: null });
      const events = await get<EventsAnswer>("/api/v1/events?limit=1");
      expect((await get<ErrorAnswer>(`/api/v1/sessions?cursor=${encodeURIComponent(events.body.nextCursor!)}`)).status).toBe(400);
    });
  });
});
