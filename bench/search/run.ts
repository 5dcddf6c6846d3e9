import { loadavg } from "node:os";
import postgres from "postgres";
import { openStore, type EventCursor, type EventFilter, type SessionFilter, type Store } from "@gatehouse/store";
import { startGatewayProcess, tempDir } from "@gatehouse/e2e/lib/processes";
import { fillEvents, fillSessions, IDENTITIES, sessionsFor } from "./fill.js";

// Search over the record (issue 14): p50/p95 of each query shape on a Postgres store holding
// BENCH_SEARCH_EVENTS events (default 10,000,000), through the store API and one shape through the
// HTTP API, plus what the search's indexes cost the writes. A throwaway database on the local
// server is created, filled with SQL (./fill.ts), measured and dropped.
//
//   pnpm build && pnpm bench search
//   BENCH_SEARCH_EVENTS (10000000), BENCH_ROUNDS (20 timed runs per shape, after 3 warm-ups),
//   BENCH_ONLY (fill,search,http,write), BENCH_KEEP=1 (keep the database and print its name),
//   BENCH_DATABASE (search an existing filled database instead of making one),
//   BENCH_PGHOST/PORT/USER.
// Prints a table, then a one-line JSON summary last.

const PG = { host: process.env.BENCH_PGHOST ?? "127.0.0.1", port: Number(process.env.BENCH_PGPORT ?? 5432), user: process.env.BENCH_PGUSER ?? "postgres" };
const EVENTS = Number(process.env.BENCH_SEARCH_EVENTS ?? 10_000_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 20);
const ONLY = new Set((process.env.BENCH_ONLY ?? "fill,search,http,write").split(","));
const KEEP = process.env.BENCH_KEEP === "1";
const DATABASE = process.env.BENCH_DATABASE ?? `gatehouse_bench_search_${process.pid}`;
const WRITE_EVENTS = Number(process.env.BENCH_WRITE_EVENTS ?? 100_000);

const urlOf = (database: string) => `postgres://${PG.user}@${PG.host}:${PG.port}/${database}`;
const admin = postgres(urlOf("postgres"), { max: 1, onnotice: () => {} });
const summary: Record<string, unknown> = { events: EVENTS, loadAverageAtStart: Number(loadavg()[0]!.toFixed(1)) };
const log = (text: string) => process.stderr.write(`${text}\n`);

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;

/** Runs `fn` 3 times untimed, then ROUNDS times timed; p50/p95 in ms, and how many rows it returned. */
async function measure(fn: () => Promise<number>): Promise<{ p50: number; p95: number; rows: number }> {
  let rows = 0;
  for (let i = 0; i < 3; i++) rows = await fn();
  const ms: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    const start = process.hrtime.bigint();
    await fn();
    ms.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  ms.sort((a, b) => a - b);
  return { p50: percentile(ms, 50), p95: percentile(ms, 95), rows };
}

const results: Array<{ shape: string; via: string; p50: number; p95: number; rows: number }> = [];
function report(shape: string, via: string, r: { p50: number; p95: number; rows: number }): void {
  results.push({ shape, via, ...r });
  console.log(`  ${shape.padEnd(58)} ${via.padEnd(6)} ${r.p50.toFixed(1).padStart(8)} ${r.p95.toFixed(1).padStart(8)} ${String(r.rows).padStart(5)}`);
}

const made = process.env.BENCH_DATABASE === undefined;
if (made) await admin.unsafe(`create database ${DATABASE}`);
let store: Store | undefined;
try {
  store = await openStore({ url: urlOf(DATABASE), maxConnections: 4 });
  const sql = postgres(urlOf(DATABASE), { max: 1, onnotice: () => {} });
  try {
    if (ONLY.has("fill") && made) summary.fill = await fill(sql);
    const n = (await sql<{ n: string }[]>`select count(*)::text as n from events`)[0]!.n;
    summary.eventsStored = Number(n);
    const nowUs = Date.now() * 1000;
    const DAY = 86_400_000_000;
    if (ONLY.has("search")) {
      console.log(`search on ${Number(n).toLocaleString("en")} events (p50 / p95 in ms over ${ROUNDS} runs, rows returned)`);
      console.log(`  ${"shape".padEnd(58)} ${"via".padEnd(6)} ${"p50".padStart(8)} ${"p95".padStart(8)} ${"rows".padStart(5)}`);
      const rare = IDENTITIES.at(-1)![0];
      const shapes: Array<[string, EventFilter]> = [
        ["newest 50, no filter", {}],
        ["identity (a third of the record)", { identity: "copilot-agent" }],
        [`identity (1%: ${rare})`, { identity: rare }],
        ["connection (1 of 30)", { connection: "orders-db" }],
        ["protocol=ssh", { protocol: "ssh" }],
        ["protocol=tcp (rare)", { protocol: "tcp" }],
        ["kind=exec", { kinds: ["exec"] }],
        ["outcome=error", { outcome: "error" }],
        ["outcome=denied", { outcome: "denied" }],
        ["since=24h", { sinceUs: nowUs - DAY }],
        ["one day, 30 days ago", { sinceUs: nowUs - 30 * DAY, untilUs: nowUs - 29 * DAY }],
        ["text, common (orders)", { text: ["orders"] }],
        ["text, rare (drop table)", { text: ["drop table"] }],
        ["text, nowhere (no such text)", { text: ["no such text"] }],
        ["sqlstate=42501", { sqlstate: "42501" }],
        ["exitStatus=127", { exitStatus: 127 }],
        ["httpStatus=403", { httpStatus: 403 }],
        ["identity + kind=query + outcome=error", { identity: "claude-agent", kinds: ["query"], outcome: "error" }],
        ["DROP or TRUNCATE by copilot-agent, last 7 days", { identity: "copilot-agent", sinceUs: nowUs - 7 * DAY, text: ["drop", "truncate"] }],
        ["DROP or TRUNCATE by copilot-agent, last 365 days", { identity: "copilot-agent", sinceUs: nowUs - 365 * DAY, text: ["drop", "truncate"] }],
      ];
      for (const [shape, filter] of shapes) report(shape, "store", await measure(async () => (await store!.events.search(filter)).events.length));
      // Deep in the record: the page after the first 1000 (a keyset page costs the same at any depth).
      const deep = (await store.events.search({ limit: 1000 })).next as EventCursor;
      report("page after the first 1000 (cursor)", "store", await measure(async () => (await store!.events.search({ after: deep })).events.length));
      const deepIdentity = (await store.events.search({ identity: "copilot-agent", limit: 1000 })).next as EventCursor;
      report("identity, page after the first 1000 (cursor)", "store", await measure(async () => (await store!.events.search({ identity: "copilot-agent", after: deepIdentity })).events.length));

      const sessionShapes: Array<[string, SessionFilter]> = [
        ["sessions: newest 50", {}],
        ["sessions: identity", { identity: "copilot-agent" }],
        ["sessions: protocol=kubernetes", { protocol: "kubernetes" }],
        ["sessions: outcome=denied", { outcome: "denied" }],
        ["sessions: with a DROP or TRUNCATE, last 7 days", { sinceUs: nowUs - 7 * DAY, text: ["drop", "truncate"] }],
        ["sessions: with sqlstate=42501", { sqlstate: "42501" }],
      ];
      for (const [shape, filter] of sessionShapes) report(shape, "store", await measure(async () => (await store!.sessions.list(filter)).length));

      // What migration 006's copies on events buy: the same identity search by joining sessions.
      const byJoin = (identity: string) => async () =>
        (
          await sql.unsafe(
            `select session_id, seq from events e where e.session_id in (select id from sessions where identity_name = $1)
             order by e.ts desc, e.session_id desc, e.seq desc limit 51`,
            [identity],
          )
        ).length;
      report("identity (a third) by joining sessions, no copies", "sql", await measure(byJoin("copilot-agent")));
      report(`identity (1%) by joining sessions, no copies`, "sql", await measure(byJoin(rare)));
    }
    if (ONLY.has("http")) await http(nowUs);
  } finally {
    await sql.end();
  }
  if (ONLY.has("write")) summary.write = await writeCost();
} finally {
  await store?.close();
  if (made && !KEEP) await admin.unsafe(`drop database if exists ${DATABASE} with (force)`);
  else log(`kept database ${DATABASE}`);
  await admin.end();
}

summary.results = results;
summary.loadAverageAtEnd = Number(loadavg()[0]!.toFixed(1));
console.log(JSON.stringify({ search: summary }));

/**
 * Fills the database: the search indexes are dropped first and built again at the end (much faster
 * than keeping them up to date row by row), so what is searched is exactly the migrated schema.
 */
async function fill(sql: postgres.Sql): Promise<Record<string, number>> {
  const timings: Record<string, number> = {};
  const timed = async <T>(what: string, fn: () => Promise<T>): Promise<T> => {
    const start = Date.now();
    const result = await fn();
    timings[what] = (Date.now() - start) / 1000;
    log(`  ${what}: ${timings[what]!.toFixed(1)} s`);
    return result;
  };
  const sessions = sessionsFor(EVENTS);
  log(`filling ${DATABASE}: ${sessions.toLocaleString("en")} sessions, about ${EVENTS.toLocaleString("en")} events`);
  await sql`set synchronous_commit = off`;
  await sql`set maintenance_work_mem = '256MB'`;
  const indexes = await sql<{ indexname: string; indexdef: string }[]>`
    select indexname, indexdef from pg_indexes where tablename = 'events' and indexname <> 'events_pkey' order by indexname`;
  for (const { indexname } of indexes) await sql.unsafe(`drop index ${indexname}`);
  await sql`alter table events drop constraint events_pkey`;
  await timed("sessions", () => fillSessions(sql, sessions));
  await sql`select gatehouse_ensure_event_partitions(now() - interval '366 days', now() + interval '1 day')`;
  let inserted = 0;
  await timed("events", async () => {
    // One month of sessions per statement, so progress shows and no statement grows huge.
    const now = new Date();
    for (let month = 13; month >= 0; month--) {
      const from = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - month, 1));
      const to = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - month + 1, 1));
      inserted += await fillEvents(sql, from, to);
      log(`    ${from.toISOString().slice(0, 7)}: ${inserted.toLocaleString("en")} events`);
    }
  });
  timings.eventsInserted = inserted;
  await timed("index events_pkey", () => sql`alter table events add primary key (session_id, seq, ts)`);
  // pg_indexes gives the parent's definition as "ON ONLY events": without ONLY, the partitions get theirs too.
  for (const { indexname, indexdef } of indexes) await timed(`index ${indexname}`, () => sql.unsafe(indexdef.replace(" ON ONLY ", " ON ")));
  await timed("analyze", () => sql`analyze events, sessions`);
  return timings;
}

/** The question through the gateway's HTTP API, as the web console and the CLI ask it. */
async function http(nowUs: number): Promise<void> {
  const gateway = await startGatewayProcess({ log: { level: "warn" }, store: { url: urlOf(DATABASE) } }, tempDir("gatehouse-bench-search-"));
  try {
    const get = (query: string) => async () => {
      const response = await fetch(`${gateway.apiUrl}/api/v1/events?${query}`, { headers: { Authorization: `Bearer ${gateway.adminToken}` } });
      if (!response.ok) throw new Error(`GET /api/v1/events?${query}: ${response.status} ${await response.text()}`);
      return ((await response.json()) as { events: unknown[] }).events.length;
    };
    report("newest 50, no filter", "http", await measure(get("")));
    report("DROP or TRUNCATE by copilot-agent, last 7 days", "http", await measure(get("identity=copilot-agent&since=7d&q=drop&q=truncate")));
    report("outcome=error, limit=1000", "http", await measure(get("outcome=error&limit=1000")));
    void nowUs;
  } finally {
    await gateway.proc.stop();
  }
}

/**
 * What the search costs the writes: events/s through store.record (the shipper's call) into a fresh
 * store, with migration 006's indexes and with them dropped. Commands differ per event, as they do
 * for real (the trigram index's work grows with distinct text).
 */
async function writeCost(): Promise<Record<string, number>> {
  const database = `${DATABASE}_write`;
  const out: Record<string, number> = {};
  await admin.unsafe(`create database ${database}`);
  try {
    const writer = await openStore({ url: urlOf(database), maxConnections: 2 });
    try {
      const run = async (label: string) => {
        const sessions = Array.from({ length: 100 }, (_, i) => ({ id: `${label}-${i}`, identity: { name: IDENTITIES[i % IDENTITIES.length]![0] }, connection: "orders-db", protocol: "postgres", startedUs: Date.now() * 1000 }));
        await writer.record({ sessions });
        const start = process.hrtime.bigint();
        const batch = 500;
        for (let done = 0; done < WRITE_EVENTS; done += batch) {
          const events = Array.from({ length: batch }, (_, j) => {
            const i = done + j;
            return { sessionId: `${label}-${i % 100}`, seq: Math.floor(i / 100) + 1, timeUs: Date.now() * 1000 + j, kind: "execute", command: `SELECT id, email FROM users WHERE org_id = ${i * 7919} AND name LIKE 'user${i}%'`, params: [String(i)], outcome: "ok" as const, details: { tag: "SELECT 1", rows: 1 }, durationUs: 800 };
          });
          await writer.record({ events });
        }
        const seconds = Number(process.hrtime.bigint() - start) / 1e9;
        out[label] = Math.round(WRITE_EVENTS / seconds);
        console.log(`  ${label.padEnd(40)} ${out[label]!.toLocaleString("en")} events/s`);
      };
      console.log(`writes through store.record, batches of 500, ${WRITE_EVENTS.toLocaleString("en")} events each`);
      await run("with the search indexes");
      await writer.sql.query("drop index events_command_trgm_idx");
      await run("without the trigram index");
      for (const index of ["events_identity_newest_idx", "events_connection_newest_idx"]) await writer.sql.query(`drop index ${index}`);
      await run("without trigram, identity, connection");
    } finally {
      await writer.close();
    }
  } finally {
    await admin.unsafe(`drop database if exists ${database} with (force)`);
  }
  return out;
}
