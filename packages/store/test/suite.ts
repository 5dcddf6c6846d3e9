// The store's behaviour, one suite run against both drivers (store.postgres.test.ts,
// store.embedded.test.ts). Anything here must hold whichever database is underneath.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  createEventWriter,
  createStore,
  GATEWAY_ROLE,
  migrate,
  migrations,
  StoreError,
  type Checkpoint,
  type EventSink,
  type SqlExecutor,
  type NewSession,
  type SessionEvent,
  type Store,
  type NewCancelRoute,
} from "../src/index.js";

export interface Harness {
  /**
   * Opens the store on the suite's database. Called again after `close()` to reopen the same
   * data (the embedded driver's directory allows one open at a time).
   */
  open(): Promise<Store>;
  /** True when the driver runs one transaction at a time (PGlite). */
  serializesTransactions: boolean;
  /** An empty database of the same kind, not migrated, for upgrade tests; `dispose` removes it. */
  fresh(): Promise<{ sql: SqlExecutor; dispose(): Promise<void> }>;
}

/** An arbitrary but fixed start: 2024-03-01T12:00:00.123456Z, with all six µs digits in use. */
const T0 = 1_709_294_400_123_456;

export function newSession(id: string, overrides: Partial<NewSession> = {}): NewSession {
  return {
    id,
    identity: { name: "copilot-agent" },
    connection: "app",
    protocol: "postgres",
    startedUs: T0,
    ...overrides,
  };
}

export function event(sessionId: string, seq: number, overrides: Partial<SessionEvent> = {}): SessionEvent {
  return {
    sessionId,
    seq,
    timeUs: T0 + seq * 1_001,
    kind: "query",
    command: `select ${seq}`,
    outcome: "ok",
    ...overrides,
  };
}

async function expectStoreError(promise: Promise<unknown>, code: StoreError["code"]): Promise<StoreError> {
  const err: unknown = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(StoreError);
  expect((err as StoreError).code).toBe(code);
  return err as StoreError;
}

/** Lets pending promise callbacks and timers of `ms` run. */
const tick = (ms = 0) => new Promise((resolve) => setTimeout(resolve, ms));

export function defineStoreSuite(harness: () => Harness): void {
  let store: Store;

  beforeAll(async () => {
    store = await harness().open();
  });
  afterAll(async () => {
    await store?.close();
  });
  beforeEach(async () => {
    await store.sql.query("truncate events, sessions, access_keys, checkpoints, stream_chunks");
  });

  const countEvents = async (sessionId?: string): Promise<number> => {
    const rows = await store.sql.query<{ n: number }>(
      sessionId === undefined
        ? "select count(*) as n from events"
        : "select count(*) as n from events where session_id = $1",
      sessionId === undefined ? [] : [sessionId],
    );
    return rows[0]?.n ?? -1;
  };

  describe("migrations", () => {
    it("records every migration once and applies nothing the second time", async () => {
      const rows = await store.sql.query<{ version: number; name: string }>(
        "select version, name from schema_migrations order by version",
      );
      expect(rows).toEqual(migrations.map((m) => ({ version: m.version, name: m.name })));
      expect(await migrate(store.sql)).toEqual({ applied: [], version: migrations.at(-1)!.version });
    });

    it("reopens an existing store without migrating again, keeping its data", async () => {
      await store.sessions.create(newSession("kept"));
      await store.close();
      store = await harness().open();
      expect((await store.sessions.get("kept"))?.session.id).toBe("kept");
      const rows = await store.sql.query<{ n: number }>("select count(*) as n from schema_migrations");
      expect(rows[0]?.n).toBe(migrations.length);
    });

    it("takes a list with a gap in its versions, and refuses one out of order", async () => {
      const { sql, dispose } = await harness().fresh();
      try {
        const gapped = [migrations[0]!, { version: 3, name: "gap_probe", statements: ["create table gap_probe (x int)"] }];
        expect(await migrate(sql, gapped)).toEqual({ applied: [1, 3], version: 3 });
        expect(await migrate(sql, gapped)).toEqual({ applied: [], version: 3 });
        const backwards = [migrations[0]!, { version: 3, name: "a", statements: [] }, { version: 2, name: "b", statements: [] }];
        await expectStoreError(migrate(sql, backwards), "MIGRATION_FAILED");
      } finally {
        await dispose();
      }
    });

    it("refuses a schema migrated by a newer gatehouse", async () => {
      await store.sql.query("insert into schema_migrations (version, name) values (999, 'future')");
      try {
        const err = await expectStoreError(migrate(store.sql), "SCHEMA_TOO_NEW");
        expect(err.message).toContain("999");
      } finally {
        await store.sql.query("delete from schema_migrations where version = 999");
      }
    });
  });

  describe("executor", () => {
    it("returns int8 as a number when exact and as a bigint beyond 2^53", async () => {
      const [row] = await store.sql.query<{ small: unknown; big: unknown; n: unknown }>(
        "select 3::int8 as small, 9007199254740993::int8 as big, count(*) as n from (values (1), (2)) v",
      );
      expect(row).toEqual({ small: 3, big: 9007199254740993n, n: 2 });
    });

    it("sends objects as JSON text and passes strings through to jsonb and timestamptz untouched", async () => {
      const [row] = await store.sql.query<{ a: unknown; b: unknown; us: unknown }>(
        "select $1::jsonb as a, $2::jsonb as b, (extract(epoch from $3::timestamptz) * 1000000)::int8 as us",
        [{ x: [1, "two", null] }, '{"y":true}', "2024-03-01T12:00:00.123456Z"],
      );
      expect(row).toEqual({ a: { x: [1, "two", null] }, b: { y: true }, us: T0 });
    });

    it("commits a transaction, rolls back a failed one, and rolls back only a failed savepoint", async () => {
      await store.sql.transaction(async (tx) => {
        await tx.query("insert into access_keys (id, identity, verifiers, created_at) values ('a', 'x', '{}', now())");
      });
      await expect(
        store.sql.transaction(async (tx) => {
          await tx.query("insert into access_keys (id, identity, verifiers, created_at) values ('b', 'x', '{}', now())");
          throw new Error("changed my mind");
        }),
      ).rejects.toThrow("changed my mind");
      await store.sql.transaction(async (tx) => {
        await tx.query("insert into access_keys (id, identity, verifiers, created_at) values ('c', 'x', '{}', now())");
        await expect(
          tx.transaction(async (inner) => {
            await inner.query("insert into access_keys (id, identity, verifiers, created_at) values ('d', 'x', '{}', now())");
            throw new Error("inner only");
          }),
        ).rejects.toThrow("inner only");
      });
      const rows = await store.sql.query<{ id: string }>("select id from access_keys order by id");
      expect(rows.map((r) => r.id)).toEqual(["a", "c"]);
    });

    it("reports a bad statement as QUERY_FAILED with its SQLSTATE", async () => {
      const err = await expectStoreError(store.sql.query("select * from no_such_table"), "QUERY_FAILED");
      expect(err.context.sqlstate).toBe("42P01");
    });

    it("runs concurrent transactions completely apart when the driver has one session", async () => {
      const log: string[] = [];
      const tx = (name: string) =>
        store.sql.transaction(async (t) => {
          log.push(`${name} begin`);
          await t.query("select 1");
          await tick(20);
          await t.query("select 1");
          log.push(`${name} end`);
        });
      // A plain query issued meanwhile must not land inside either transaction either.
      const plain = store.sql.query("select 1").then(() => log.push("plain"));
      await Promise.all([tx("A"), tx("B"), plain]);
      if (harness().serializesTransactions) {
        const a = log.indexOf("A begin");
        const b = log.indexOf("B begin");
        const [first, second] = a < b ? ["A", "B"] : ["B", "A"];
        expect(log.indexOf(`${first} end`)).toBe(log.indexOf(`${first} begin`) + 1);
        expect(log.indexOf(`${second} end`)).toBe(log.indexOf(`${second} begin`) + 1);
      } else {
        expect(log).toHaveLength(5);
      }
    });
  });

  describe("sessions", () => {
    it("stores every field and reads it back", async () => {
      const full = newSession("s-full", {
        identity: {
          name: "alice",
          issuer: "https://idp.example.com",
          subject: "u-123",
          groups: ["sre", "db-readers"],
          method: "oidc",
        },
        connection: "billing",
        protocol: "mysql",
        connector: "dc1",
        clientAddress: "10.0.0.7:53211",
        clientApplication: "psql",
        startedUs: T0 + 7,
      });
      await store.sessions.create(full);
      await store.sessions.create(newSession("s-min"));
      const got = await store.sessions.get("s-full");
      expect(got).toEqual({
        session: {
          ...full,
          endedUs: null,
          endReason: null,
          eventCount: 0,
          finalHash: null,
          sealSignature: null,
        },
        events: [],
      });
      expect((await store.sessions.get("s-min"))?.session).toEqual({
        id: "s-min",
        identity: { name: "copilot-agent", issuer: null, subject: null, groups: [], method: null },
        connection: "app",
        protocol: "postgres",
        connector: null,
        clientAddress: null,
        clientApplication: null,
        startedUs: T0,
        endedUs: null,
        endReason: null,
        eventCount: 0,
        finalHash: null,
        sealSignature: null,
      });
      expect(await store.sessions.get("nope")).toBeNull();
    });

    it("refuses a second session with the same id", async () => {
      await store.sessions.create(newSession("dup"));
      const err = await expectStoreError(store.sessions.create(newSession("dup")), "CONFLICT");
      expect(err.context.sqlstate).toBe("23505");
    });

    it("closes a session once, with its seal, and says why a close did nothing", async () => {
      await store.sessions.create(newSession("c1"));
      await store.sessions.close({
        id: "c1",
        endedUs: T0 + 5_000_001,
        endReason: "client_closed",
        finalHash: "ab".repeat(32),
        sealSignature: "sig",
      });
      const got = (await store.sessions.get("c1"))?.session;
      expect(got).toMatchObject({
        endedUs: T0 + 5_000_001,
        endReason: "client_closed",
        finalHash: "ab".repeat(32),
        sealSignature: "sig",
      });
      await expectStoreError(store.sessions.close({ id: "c1", endedUs: T0 + 9, endReason: "again" }), "CONFLICT");
      expect((await store.sessions.get("c1"))?.session.endReason).toBe("client_closed");
      await expectStoreError(store.sessions.close({ id: "ghost", endedUs: T0, endReason: "x" }), "NOT_FOUND");
    });

    it("lists newest first, ties broken by id, and filters by identity, connection and time", async () => {
      const specs: [string, string, string, number][] = [
        ["s1", "alice", "app", T0],
        ["s2", "bob", "app", T0 + 1],
        ["s3", "alice", "billing", T0 + 2],
        ["s4", "bob", "billing", T0 + 2], // same start as s3
        ["s5", "alice", "app", T0 + 3],
      ];
      for (const [id, name, connection, startedUs] of specs) {
        await store.sessions.create(newSession(id, { identity: { name }, connection, startedUs }));
      }
      const ids = async (filter: Parameters<Store["sessions"]["list"]>[0]) =>
        (await store.sessions.list(filter)).map((s) => s.id);
      expect(await ids({})).toEqual(["s5", "s4", "s3", "s2", "s1"]);
      expect(await ids({ identity: "alice" })).toEqual(["s5", "s3", "s1"]);
      expect(await ids({ connection: "billing" })).toEqual(["s4", "s3"]);
      expect(await ids({ identity: "bob", connection: "app" })).toEqual(["s2"]);
      expect(await ids({ sinceUs: T0 + 2 })).toEqual(["s5", "s4", "s3"]); // inclusive
      expect(await ids({ untilUs: T0 + 2 })).toEqual(["s2", "s1"]); // exclusive
      expect(await ids({ sinceUs: T0 + 1, untilUs: T0 + 3, identity: "alice" })).toEqual(["s3"]);
      expect(await ids({ limit: 2 })).toEqual(["s5", "s4"]);
      expect(await ids({ identity: "nobody" })).toEqual([]);
      await expectStoreError(store.sessions.list({ limit: 0 }), "INVALID_ARGUMENT");
      await expectStoreError(store.sessions.list({ limit: 2.5 }), "INVALID_ARGUMENT");
    });

    it("lists 50 by default and at most 1000", async () => {
      await store.sql.query(
        `insert into sessions (id, identity_name, connection, protocol, started_at)
         select 'g' || lpad(i::text, 5, '0'), 'gen', 'app', 'postgres', now() - i * interval '1 second'
         from generate_series(1, 1005) as i`,
      );
      const page = await store.sessions.list();
      expect(page).toHaveLength(50);
      expect(page[0]?.id).toBe("g00001");
      expect(await store.sessions.list({ limit: 5000 })).toHaveLength(1000);
    });

    it("finds the last session started", async () => {
      expect(await store.sessions.last()).toBeNull();
      await store.sessions.create(newSession("old", { startedUs: T0 }));
      await store.sessions.create(newSession("new", { startedUs: T0 + 1 }));
      await store.sessions.create(newSession("older", { startedUs: T0 - 1 }));
      expect((await store.sessions.last())?.id).toBe("new");
    });
  });

  describe("events", () => {
    it("returns a session's events in seq order with every field", async () => {
      await store.sessions.create(newSession("e1"));
      const rich = event("e1", 2, {
        kind: "execute",
        command: "select $1::int, $2",
        params: [42, "it's \"quoted\"", null, { nested: [true] }],
        outcome: "error",
        details: { sqlstate: "22P02", message: "bad input", rows: 0 },
        durationUs: 1234,
        prevHash: "00".repeat(32),
        hash: "ff".repeat(32),
      });
      // Inserted out of order, across two batches.
      await store.events.insertBatch([event("e1", 3), rich]);
      await store.events.insertBatch([event("e1", 1, { kind: "connect", command: null, outcome: null })]);
      const got = await store.sessions.get("e1");
      expect(got?.session.eventCount).toBe(3);
      expect(got?.events.map((e) => e.seq)).toEqual([1, 2, 3]);
      expect(got?.events[1]).toEqual(rich);
      expect(got?.events[0]).toEqual({
        sessionId: "e1",
        seq: 1,
        timeUs: T0 + 1_001,
        kind: "connect",
        command: null,
        params: null,
        outcome: null,
        details: null,
        durationUs: null,
        prevHash: null,
        hash: null,
      });
    });

    it("keeps µs timestamps exact, both ways", async () => {
      const times = [
        T0,
        T0 + 1,
        T0 + 999_999,
        1_999_999_999_999_999, // 2033, all digits 9
        1, // 1970-01-01T00:00:00.000001
        -1, // 1969-12-31T23:59:59.999999
        Number.MAX_SAFE_INTEGER, // 2255
      ];
      for (const [i, t] of times.entries()) {
        await store.sessions.create(newSession(`t${i}`, { startedUs: t }));
        await store.sessions.close({ id: `t${i}`, endedUs: t, endReason: "done" });
      }
      await store.events.insertBatch(times.map((t, i) => event("t0", i + 1, { timeUs: t })));
      for (const [i, t] of times.entries()) {
        const s = (await store.sessions.get(`t${i}`))?.session;
        expect([s?.startedUs, s?.endedUs]).toEqual([t, t]);
      }
      const events = (await store.sessions.get("t0"))?.events ?? [];
      expect(events.map((e) => e.timeUs)).toEqual(times);
      // And what Postgres itself sees is the same instant, not a float neighbour of it.
      const [row] = await store.sql.query<{ text: string }>(
        "select to_char(started_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') as text from sessions where id = 't0'",
      );
      expect(row?.text).toBe("2024-03-01 12:00:00.123456");
    });

    it("inserts 10,000 events in one batch across sessions and counts them per session", async () => {
      await store.sessions.create(newSession("big"));
      await store.sessions.create(newSession("small"));
      // Every 100th event belongs to "small"; each session's seqs count up from 1.
      const next = { big: 0, small: 0 };
      const batch = Array.from({ length: 10_000 }, (_, i) => {
        const id = i % 100 === 99 ? "small" : "big";
        return event(id, ++next[id]);
      });
      await store.events.insertBatch(batch);
      expect(await countEvents("big")).toBe(9_900);
      expect(await countEvents("small")).toBe(100);
      const big = await store.sessions.get("big");
      expect(big?.session.eventCount).toBe(9_900);
      expect(big?.events.map((e) => e.seq)).toEqual(Array.from({ length: 9_900 }, (_, i) => i + 1));
      expect((await store.sessions.get("small"))?.session.eventCount).toBe(100);
    });

    it("fails a batch whole: an unknown session, a stored seq, a bad value", async () => {
      await store.sessions.create(newSession("w"));
      await store.events.insertBatch([event("w", 1)]);
      const orphan = await expectStoreError(
        store.events.insertBatch([event("w", 2), event("ghost", 1)]),
        "NOT_FOUND",
      );
      expect(orphan.context.sqlstate).toBe("23503");
      const dup = await expectStoreError(store.events.insertBatch([event("w", 3), event("w", 1)]), "CONFLICT");
      expect(dup.context.sqlstate).toBe("23505");
      await expectStoreError(store.events.insertBatch([event("w", 0)]), "INVALID_ARGUMENT");
      await expectStoreError(store.events.insertBatch([event("w", 4, { timeUs: 1.5 })]), "INVALID_ARGUMENT");
      await expectStoreError(
        store.events.insertBatch([event("w", 5, { params: [10n] })]),
        "INVALID_ARGUMENT",
      );
      expect(await countEvents()).toBe(1);
      expect((await store.sessions.get("w"))?.session.eventCount).toBe(1);
      await store.events.insertBatch([]); // nothing to do, no error
    });

    it("names the event holding text Postgres cannot store, and stores look-alikes that are fine", async () => {
      await store.sessions.create(newSession("nul"));
      const nul = await expectStoreError(
        store.events.insertBatch([event("nul", 1), event("nul", 2, { command: "cat a\u0000b" })]),
        "INVALID_ARGUMENT",
      );
      expect(nul.message).toContain("nul#2");
      const lone = await expectStoreError(
        store.events.insertBatch([event("nul", 3, { details: { stderr: "\ud800" } })]),
        "INVALID_ARGUMENT",
      );
      expect(lone.message).toContain("nul#3");
      expect(await countEvents("nul")).toBe(0);
      // A literal backslash-u-0000, an escaped backslash before a real escape, an emoji (a
      // surrogate pair) are all storable.
      const fine = [String.raw`\u0000`, String.raw`\\u0041`, "🙂", "tab\there"];
      await store.events.insertBatch(fine.map((command, i) => event("nul", i + 1, { command, params: [command] })));
      const stored = (await store.sessions.get("nul"))?.events ?? [];
      expect(stored.map((e) => [e.command, e.params])).toEqual(fine.map((c) => [c, [c]]));
    });
  });

  describe("event writer", () => {
    /** The real store, counting round trips and optionally holding them until `release()`. */
    const countingSink = (target: () => Store) => {
      let gate: Promise<void> | undefined;
      let open: (() => void) | undefined;
      const sink = {
        calls: 0,
        sizes: [] as number[],
        hold() {
          gate = new Promise((resolve) => (open = resolve));
        },
        release() {
          open?.();
          gate = undefined;
        },
        events: {
          insertBatch: async (events: readonly SessionEvent[]) => {
            sink.calls++;
            sink.sizes.push(events.length);
            await gate;
            await target().events.insertBatch(events);
          },
        },
      };
      return sink;
    };

    it("commits many events in few round trips, one batch at a time", async () => {
      await store.sessions.create(newSession("wb"));
      const sink = countingSink(() => store);
      const writer = createEventWriter(sink, { maxBatch: 500 });
      const n = 5_000;
      await Promise.all(Array.from({ length: n }, (_, i) => writer.write(event("wb", i + 1))));
      expect(await countEvents("wb")).toBe(n);
      expect(sink.calls).toBeLessThanOrEqual(20);
      expect(Math.max(...sink.sizes)).toBeLessThanOrEqual(500);
      expect(writer.stats).toMatchObject({ written: n, batches: sink.calls, queued: 0, failedEvents: 0 });
      await writer.close();
    });

    it("sends a lone event after the flush interval and resolves the write on commit", async () => {
      await store.sessions.create(newSession("wl"));
      const writer = createEventWriter(store, { flushIntervalMs: 1 });
      await writer.write(event("wl", 1));
      expect(await countEvents("wl")).toBe(1);
      await writer.close();
      await expectStoreError(writer.write(event("wl", 2)), "CLOSED");
    });

    it("makes writers wait for room at maxQueued and loses nothing", async () => {
      await store.sessions.create(newSession("bp"));
      const sink = countingSink(() => store);
      const writer = createEventWriter(sink, { maxBatch: 10, maxQueued: 100, flushIntervalMs: 0 });
      sink.hold();
      let committed = 0;
      const writes = Array.from({ length: 300 }, (_, i) =>
        writer.write(event("bp", i + 1)).then(() => void committed++),
      );
      await tick(20);
      // One batch of 10 is stuck in flight, 100 are queued, the other 190 wait for room.
      expect(writer.stats).toMatchObject({ inFlight: 10, queued: 100, waiting: 190 });
      expect(committed).toBe(0);
      sink.release();
      await Promise.all(writes);
      expect(committed).toBe(300);
      expect(await countEvents("bp")).toBe(300);
      expect(writer.stats).toMatchObject({ queued: 0, waiting: 0, written: 300 });
      await writer.close();
    });

    it("rejects every write of a failed batch, then carries on with the next", async () => {
      await store.sessions.create(newSession("wf"));
      await store.events.insertBatch([event("wf", 1)]);
      const writer = createEventWriter(store, { flushIntervalMs: 50 });
      // Both land in one batch (same interval); seq 1 violates the primary key.
      const good = writer.write(event("wf", 2));
      const bad = writer.write(event("wf", 1));
      const [a, b] = await Promise.allSettled([good, bad]);
      for (const result of [a, b]) {
        expect(result.status).toBe("rejected");
        const err = (result as PromiseRejectedResult).reason as StoreError;
        expect(err).toBeInstanceOf(StoreError);
        expect(err.code).toBe("WRITE_FAILED");
        expect((err.cause as StoreError).code).toBe("CONFLICT");
      }
      expect(writer.stats).toMatchObject({ failedBatches: 1, failedEvents: 2 });
      await writer.write(event("wf", 2));
      expect(await countEvents("wf")).toBe(2);
      await writer.close();
    });

    it("surfaces a store that went away as rejected writes, and recovers when it is back", async () => {
      await store.sessions.create(newSession("wd"));
      let current = store;
      const sink: EventSink = { events: { insertBatch: (events) => current.events.insertBatch(events) } };
      const writer = createEventWriter(sink);
      await writer.write(event("wd", 1));
      await store.close();
      const err = await expectStoreError(writer.write(event("wd", 2)), "WRITE_FAILED");
      expect((err.cause as StoreError).code).toBe("CLOSED");
      store = await harness().open();
      current = store;
      await writer.write(event("wd", 2));
      expect(await countEvents("wd")).toBe(2);
      await writer.close();
    });

    it("flush() waits for everything written before it", async () => {
      await store.sessions.create(newSession("wfl"));
      const writer = createEventWriter(store, { flushIntervalMs: 10_000, maxBatch: 7 });
      const writes = Array.from({ length: 30 }, (_, i) => writer.write(event("wfl", i + 1)));
      await writer.flush();
      expect(await countEvents("wfl")).toBe(30);
      await Promise.all(writes);
      await writer.close();
    });
  });

  describe("evidence", () => {
    const close = (id: string, overrides: Partial<Parameters<Store["sessions"]["close"]>[0]> = {}) => ({
      id,
      endedUs: T0 + 9_000_000,
      endReason: "client_closed",
      finalHash: "cd".repeat(32),
      sealSignature: "ed25519:k:sig",
      ...overrides,
    });

    it("records sessions, events and closes in one idempotent batch", async () => {
      const batch = {
        sessions: [newSession("r1", { identity: { name: "alice", groups: ["sre"], method: "oidc" as const } }), newSession("r2")],
        events: [event("r1", 1), event("r1", 2, { params: ["x", null], details: { rows: 1 } }), event("r2", 1)],
        closes: [close("r1")],
      };
      expect(await store.record(batch)).toEqual({ sessions: 2, events: 3, closed: 1, notClosed: [], checkpoints: 0, checkpointConflicts: [], chunks: 0 });
      // The same shipment again (an acknowledgement lost on the way back): nothing changes.
      expect(await store.record(batch)).toEqual({
        sessions: 0,
        events: 0,
        closed: 0,
        notClosed: [{ id: "r1", status: "already_closed" }],
        checkpoints: 0,
        checkpointConflicts: [],
        chunks: 0,
      });
      const r1 = await store.sessions.get("r1");
      expect(r1?.session).toMatchObject({
        identity: { name: "alice", groups: ["sre"], method: "oidc" },
        eventCount: 2,
        endReason: "client_closed",
        finalHash: "cd".repeat(32),
        sealSignature: "ed25519:k:sig",
      });
      expect(r1?.events.map((e) => e.seq)).toEqual([1, 2]);
      expect(await countEvents()).toBe(3);
      // A replay overlapping new events inserts only the new ones.
      expect(await store.record({ events: [event("r2", 1), event("r2", 2)] })).toMatchObject({ events: 1 });
      expect((await store.sessions.get("r2"))?.session.eventCount).toBe(2);
      expect(await store.record({ closes: [close("ghost")] })).toMatchObject({ notClosed: [{ id: "ghost", status: "not_found" }] });
      await expectStoreError(store.record({ events: [event("nobody", 1)] }), "NOT_FOUND");
      await expectStoreError(store.record({ events: [event("r2", 3, { command: "a\u0000b" })] }), "INVALID_ARGUMENT");
      expect(await store.record({})).toEqual({ sessions: 0, events: 0, closed: 0, notClosed: [], checkpoints: 0, checkpointConflicts: [], chunks: 0 });
    });

    const checkpoint = (gateway: string, seq: number, overrides: Partial<Checkpoint> = {}): Checkpoint => ({
      gateway,
      seq,
      timeUs: T0 + seq,
      kind: "open",
      sessionId: `cp-${seq}`,
      details: { genesis: "ab".repeat(32), n: seq },
      prevHash: "00".repeat(32),
      hash: seq.toString(16).padStart(64, "0"),
      signature: "ed25519:k:sig",
      ...overrides,
    });

    it("keeps checkpoints once each, reports a second chain under one key, and pages through them", async () => {
      const batch = { sessions: [newSession("cp-1")], checkpoints: [checkpoint("gw-a", 1), checkpoint("gw-a", 2, { kind: "seal" }), checkpoint("gw-b", 1, { sessionId: null, details: null })] };
      expect(await store.record(batch)).toMatchObject({ sessions: 1, checkpoints: 3, checkpointConflicts: [] });
      // Replayed: nothing new. The same (gateway, seq) with another hash: reported, not stored.
      expect(await store.record(batch)).toMatchObject({ checkpoints: 0, checkpointConflicts: [] });
      expect(await store.record({ checkpoints: [checkpoint("gw-a", 2, { hash: "ff".repeat(32) })] })).toMatchObject({
        checkpoints: 0,
        checkpointConflicts: [{ gateway: "gw-a", seq: 2 }],
      });
      expect(await store.checkpoints.scan()).toEqual([checkpoint("gw-a", 1), checkpoint("gw-a", 2, { kind: "seal" }), checkpoint("gw-b", 1, { sessionId: null, details: null })]);
      expect((await store.checkpoints.scan({ after: { gateway: "gw-a", seq: 1 }, limit: 1 })).map((c) => [c.gateway, c.seq])).toEqual([["gw-a", 2]]);
      expect((await store.checkpoints.scan({ after: { gateway: "gw-a", seq: 2 } })).map((c) => [c.gateway, c.seq])).toEqual([["gw-b", 1]]);
      expect((await store.checkpoints.last("gw-a"))?.seq).toBe(2);
      expect(await store.checkpoints.last("gw-none")).toBeNull();
    });

    it("keeps stream chunks once each, as the exact bytes, and retention removes them with their session", async () => {
      const chunk = (sessionId: string, streamId: number, seq: number, data: Uint8Array, direction: "i" | "o" | "e" | "r" = "o") => ({
        sessionId,
        streamId,
        seq,
        timeUs: T0 + seq,
        direction,
        data,
        prevHash: "00".repeat(32),
        hash: seq.toString(16).padStart(64, "0"),
      });
      const binary = new Uint8Array(Array.from({ length: 256 }, (_, i) => i));
      const big = new Uint8Array(100_000).fill(7);
      const batch = {
        sessions: [newSession("st-1", { startedUs: Date.UTC(2021, 0, 3) * 1000 })],
        events: [event("st-1", 1, { timeUs: Date.UTC(2021, 0, 3) * 1000 })],
        chunks: [chunk("st-1", 1, 1, new TextEncoder().encode("80x24"), "r"), chunk("st-1", 1, 2, binary, "i"), chunk("st-1", 2, 1, big, "e")],
        closes: [close("st-1", { endedUs: Date.UTC(2021, 0, 4) * 1000 })],
      };
      expect(await store.record(batch)).toMatchObject({ sessions: 1, chunks: 3 });
      expect(await store.record(batch)).toMatchObject({ sessions: 0, chunks: 0 });
      const stored = await store.streams.chunks(["st-1"]);
      expect(stored.map((c) => [c.streamId, c.seq, c.direction, c.data.byteLength])).toEqual([[1, 1, "r", 5], [1, 2, "i", 256], [2, 1, "e", 100_000]]);
      expect(Buffer.from(stored[1]!.data).equals(Buffer.from(binary))).toBe(true);
      expect(stored[2]).toEqual({ ...chunk("st-1", 2, 1, big, "e"), data: Buffer.from(big) });
      expect((await store.streams.chunks(["st-1"], 2)).map((c) => c.streamId)).toEqual([2]);
      await expectStoreError(store.record({ chunks: [chunk("st-1", 1, 3, binary, "x" as "o")] }), "INVALID_ARGUMENT");
      await store.retention.dropBefore(Date.UTC(2021, 1, 1) * 1000);
      expect(await store.sessions.get("st-1")).toBeNull();
      expect(await store.streams.chunks(["st-1"])).toEqual([]);
    });

    it("puts events in monthly partitions made on demand, and retention drops whole old ones", async () => {
      const jan = Date.UTC(2023, 0, 15) * 1000;
      const feb = Date.UTC(2023, 1, 15) * 1000;
      // Start without partitions (earlier tests left empty ones), which also shows that the store
      // makes a partition again when one it had seen was dropped.
      for (const p of await store.retention.partitions()) await store.sql.query(`drop table "${p.name}"`);
      expect(await store.retention.partitions()).toEqual([]);
      await store.record({
        sessions: [
          newSession("old", { startedUs: jan }),
          newSession("straddles", { startedUs: jan + 1 }),
          newSession("open-old", { startedUs: jan + 2 }),
          newSession("recent", { startedUs: T0 }),
        ],
        events: [
          event("old", 1, { timeUs: jan }),
          event("straddles", 1, { timeUs: jan + 5 }),
          event("straddles", 2, { timeUs: feb }),
          event("open-old", 1, { timeUs: jan + 6 }),
          event("recent", 1, { timeUs: T0 }),
        ],
        closes: [close("old", { endedUs: jan + 10 }), close("straddles", { endedUs: feb + 10 }), close("recent")],
      });
      const names = (await store.retention.partitions()).map((p) => p.name);
      expect(names).toEqual(expect.arrayContaining(["events_y2023m01", "events_y2023m02", "events_y2024m03"]));
      const [first] = await store.retention.partitions();
      expect(first).toEqual({ name: "events_y2023m01", fromUs: Date.UTC(2023, 0, 1) * 1000, toUs: Date.UTC(2023, 1, 1) * 1000 });

      // A cutoff inside February keeps February whole.
      const cutoff = Date.UTC(2023, 1, 20) * 1000;
      const dry = await store.retention.dropBefore(cutoff, { dryRun: true });
      expect(dry.dropped.map((p) => p.name)).toEqual(["events_y2023m01"]);
      expect(dry).toMatchObject({ sessionsDeleted: 2, straddlingEventsDeleted: 1 });
      expect(await countEvents()).toBe(5);

      const done = await store.retention.dropBefore(cutoff);
      expect(done).toEqual(dry);
      expect((await store.retention.partitions()).map((p) => p.name)).not.toContain("events_y2023m01");
      expect(await store.sessions.get("old")).toBeNull();
      expect(await store.sessions.get("straddles")).toBeNull();
      // Still open: kept (its gateway will close it), with what is left of its events.
      expect((await store.sessions.get("open-old"))?.events).toEqual([]);
      expect((await store.sessions.get("recent"))?.events).toHaveLength(1);
      expect(await countEvents()).toBe(1);
      expect(await store.retention.dropBefore(cutoff)).toEqual({ dropped: [], sessionsDeleted: 0, straddlingEventsDeleted: 0 });
    });

    it("retention removes only sessions that ended by the time it is given", async () => {
      const jan = Date.UTC(2022, 0, 15) * 1000;
      await store.record({
        sessions: [newSession("ended-early", { startedUs: jan }), newSession("ended-late", { startedUs: jan + 1 })],
        events: [event("ended-early", 1, { timeUs: jan }), event("ended-late", 1, { timeUs: jan + 1 })],
        closes: [close("ended-early", { endedUs: jan + 10 }), close("ended-late", { endedUs: jan + 1_000 })],
      });
      const result = await store.retention.dropBefore(Date.UTC(2022, 1, 1) * 1000, { endedByUs: jan + 500 });
      expect(result.dropped.map((p) => p.name)).toContain("events_y2022m01");
      expect(await store.sessions.get("ended-early")).toBeNull();
      expect((await store.sessions.get("ended-late"))?.session.endedUs).toBe(jan + 1_000);
    });

    it("scans every session in id order and reads the events of many sessions at once", async () => {
      for (const id of ["s-b", "s-a", "s-c"]) await store.sessions.create(newSession(id));
      await store.events.insertBatch([event("s-b", 2), event("s-a", 1), event("s-b", 1), event("s-c", 1)]);
      expect((await store.sessions.scan({ limit: 2 })).map((s) => s.id)).toEqual(["s-a", "s-b"]);
      expect((await store.sessions.scan({ afterId: "s-b" })).map((s) => s.id)).toEqual(["s-c"]);
      const events = await store.events.forSessions(["s-b", "s-a"]);
      expect(events.map((e) => `${e.sessionId}#${e.seq}`)).toEqual(["s-a#1", "s-b#1", "s-b#2"]);
      expect(await store.events.forSessions([])).toEqual([]);
    });

    it("lets the gateway's role insert and read, close an open session once, and never update or delete events", async () => {
      await store.record({ sessions: [newSession("ro"), newSession("ro-open")], events: [event("ro", 1)] });
      await store.sql.transaction(async (tx) => {
        await tx.query(`set local role ${GATEWAY_ROLE}`);
        const asGateway = createStore(tx, "postgres");
        // What the gateway does, all allowed.
        await asGateway.sessions.create(newSession("ro-2"));
        await asGateway.record({ events: [event("ro", 2)], closes: [close("ro")] });
        await asGateway.sessions.close(close("ro-open"));
        expect((await asGateway.sessions.get("ro"))?.events).toHaveLength(2);
        // What it may not do. Each attempt in a savepoint, so the transaction survives the error.
        const refused = async (statement: string) => {
          const err = await expectStoreError(tx.transaction((sp) => sp.query(statement)), "QUERY_FAILED");
          expect(err.context.sqlstate).toBe("42501"); // insufficient_privilege
        };
        await refused("update events set command = 'drop table x' where session_id = 'ro'");
        await refused("delete from events where session_id = 'ro'");
        await refused("truncate events");
        await refused("update sessions set end_reason = 'rewritten' where id = 'ro'");
        await refused("delete from sessions where id = 'ro'");
        await refused("drop table events_y2024m03");
        // Its checkpoints: written through gatehouse_record and read, never changed.
        await asGateway.record({ checkpoints: [checkpoint("gw-ro", 1)] });
        expect((await asGateway.checkpoints.last("gw-ro"))?.seq).toBe(1);
        await refused("update checkpoints set kind = 'state' where gateway = 'gw-ro'");
        await refused("delete from checkpoints where gateway = 'gw-ro'");
        // Its stream chunks: likewise.
        const chunk = { sessionId: "ro", streamId: 1, seq: 1, timeUs: T0, direction: "o" as const, data: new Uint8Array([1, 2, 3]), prevHash: "00".repeat(32), hash: "11".repeat(32) };
        expect(await asGateway.record({ chunks: [chunk] })).toMatchObject({ chunks: 1 });
        expect(await asGateway.streams.chunks(["ro"])).toHaveLength(1);
        await refused("update stream_chunks set data = '\\x00' where session_id = 'ro'");
        await refused("delete from stream_chunks where session_id = 'ro'");
        // A seal is never overwritten, even through the function.
        await expectStoreError(asGateway.sessions.close(close("ro", { endReason: "rewritten" })), "CONFLICT");
      });
      expect((await store.sessions.get("ro"))?.session.endReason).toBe("client_closed");
    });

    it("upgrades a store from migration 001, moving its events into partitions", async () => {
      const { sql, dispose } = await harness().fresh();
      try {
        await migrate(sql, migrations.slice(0, 1));
        const v1 = createStore(sql, "postgres");
        await v1.sessions.create(newSession("v1"));
        await sql.query("select gatehouse_insert_events($1::jsonb)", [
          JSON.stringify([
            { session_id: "v1", seq: 1, ts: "2024-03-01T12:00:00.123456Z", kind: "query", command: "select 1", params: [1] },
            { session_id: "v1", seq: 2, ts: "2023-07-01T00:00:00Z", kind: "query", details: { rows: 2 } },
          ]),
        ]);
        expect(await migrate(sql)).toEqual({ applied: migrations.slice(1).map((m) => m.version), version: migrations.at(-1)!.version });
        const upgraded = createStore(sql, "postgres");
        const got = await upgraded.sessions.get("v1");
        expect(got?.session.eventCount).toBe(2);
        expect(got?.events.map((e) => [e.seq, e.timeUs, e.command, e.params, e.details])).toEqual([
          [1, T0, "select 1", [1], null],
          [2, Date.UTC(2023, 6, 1) * 1000, null, null, { rows: 2 }],
        ]);
        expect((await upgraded.retention.partitions()).map((p) => p.name)).toEqual(["events_y2023m07", "events_y2024m03"]);
      } finally {
        await dispose();
      }
    });
  });

  describe("cancel routes", () => {
    const route = (key: string, overrides: Partial<NewCancelRoute> = {}): NewCancelRoute => ({
      routeKey: key,
      protocol: "postgres",
      gateway: "gw-a",
      sessionId: "s-1",
      identity: "copilot-agent",
      ...overrides,
    });
    beforeEach(async () => {
      await store.sql.query("delete from cancel_routes");
    });

    it("publishes, finds, refuses another session's live key, takes over an expired one, renews and removes", async () => {
      expect(await store.cancelRoutes.publish(route("pg:aa"), 60)).toBe(true);
      expect(await store.cancelRoutes.find("pg:aa")).toEqual(route("pg:aa"));
      expect(await store.cancelRoutes.find("pg:bb")).toBeNull();
      // The same key for another gateway's session, while the first lives: refused, the first kept.
      expect(await store.cancelRoutes.publish(route("pg:aa", { gateway: "gw-b", sessionId: "s-2" }), 60)).toBe(false);
      expect((await store.cancelRoutes.find("pg:aa"))?.gateway).toBe("gw-a");
      // An expired route (its gateway crashed) no longer counts, and is taken over.
      expect(await store.cancelRoutes.publish(route("mysql:7", { protocol: "mysql" }), -1)).toBe(true);
      expect(await store.cancelRoutes.find("mysql:7")).toBeNull();
      expect(await store.cancelRoutes.publish(route("mysql:7", { protocol: "mysql", gateway: "gw-b", sessionId: "s-3" }), 60)).toBe(true);
      expect((await store.cancelRoutes.find("mysql:7"))?.gateway).toBe("gw-b");
      // Renewing keeps a gateway's rows and sweeps expired ones of any gateway.
      await store.cancelRoutes.publish(route("pg:dead", { gateway: "gw-c" }), -1);
      expect(await store.cancelRoutes.renew("gw-a", 60)).toBe(1);
      expect((await store.sql.query<{ route_key: string }>("select route_key from cancel_routes order by 1")).map((r) => r.route_key)).toEqual(["mysql:7", "pg:aa"]);
      // Only the owning gateway's rows are removed.
      await store.cancelRoutes.remove("gw-a", ["pg:aa", "mysql:7"]);
      expect(await store.cancelRoutes.find("pg:aa")).toBeNull();
      expect(await store.cancelRoutes.find("mysql:7")).not.toBeNull();
    });

    it("lets the gateway's role publish, find, renew and remove routes", async () => {
      await store.sql.transaction(async (tx) => {
        await tx.query(`set local role ${GATEWAY_ROLE}`);
        const asGateway = createStore(tx, "postgres");
        expect(await asGateway.cancelRoutes.publish(route("pg:role"), 60)).toBe(true);
        expect(await asGateway.cancelRoutes.find("pg:role")).not.toBeNull();
        expect(await asGateway.cancelRoutes.renew("gw-a", 60)).toBe(1);
        await asGateway.cancelRoutes.remove("gw-a", ["pg:role"]);
        expect(await asGateway.cancelRoutes.find("pg:role")).toBeNull();
      });
    });
  });

  describe("access keys", () => {
    it("creates, reads, lists, touches and revokes", async () => {
      const verifiers = { sha256: "9f86d08188", scram: { salt: "c2FsdA==", iterations: 4096 } };
      await store.accessKeys.create({ id: "k1", identity: "agent", verifiers, createdUs: T0 });
      await store.accessKeys.create({
        id: "k2",
        identity: "agent",
        verifiers: {},
        createdUs: T0 + 1,
        expiresUs: T0 + 86_400_000_001,
      });
      await store.accessKeys.create({ id: "k3", identity: "other", verifiers: {}, createdUs: T0 + 2 });
      await expectStoreError(
        store.accessKeys.create({ id: "k1", identity: "x", verifiers: {}, createdUs: T0 }),
        "CONFLICT",
      );

      expect(await store.accessKeys.get("k1")).toEqual({
        id: "k1",
        identity: "agent",
        verifiers,
        createdUs: T0,
        expiresUs: null,
        revokedUs: null,
        lastUsedUs: null,
      });
      expect((await store.accessKeys.get("k2"))?.expiresUs).toBe(T0 + 86_400_000_001);
      expect(await store.accessKeys.get("nope")).toBeNull();
      expect((await store.accessKeys.list()).map((k) => k.id)).toEqual(["k1", "k2", "k3"]);
      expect((await store.accessKeys.list({ identity: "agent" })).map((k) => k.id)).toEqual(["k1", "k2"]);

      await store.accessKeys.touch("k1", T0 + 10);
      await store.accessKeys.touch("k1", T0 + 5); // reported late: the latest use stays
      expect((await store.accessKeys.get("k1"))?.lastUsedUs).toBe(T0 + 10);

      expect(await store.accessKeys.revoke("k1", T0 + 20)).toBe(true);
      expect(await store.accessKeys.revoke("k1", T0 + 30)).toBe(false);
      expect(await store.accessKeys.revoke("nope", T0)).toBe(false);
      expect((await store.accessKeys.get("k1"))?.revokedUs).toBe(T0 + 20);
      expect((await store.accessKeys.list({ identity: "agent" })).map((k) => k.id)).toEqual(["k2"]);
      expect(
        (await store.accessKeys.list({ identity: "agent", includeRevoked: true })).map((k) => k.id),
      ).toEqual(["k1", "k2"]);
    });
  });

  it("answers ping", async () => {
    await store.ping();
  });
}
