// Events per second the journal's shipper moves into a real Postgres store. Not a test: a measurement.
//
//   pnpm --filter @gatehouse/store build && pnpm --filter @gatehouse/gateway build
//   node packages/gateway/bench/shipper-throughput.mjs [--events N] [--sessions K] [--seconds S] [--batch B]
//
// SHIPPER_BENCH_URL (default postgres://postgres@127.0.0.1:5432/postgres) names the server; a fresh
// database gatehouse_bench_<random> is made there and dropped afterwards. Two measurements:
//   backlog — N events already durable in the journal (the store was down), shipped from cold:
//             what a gateway catches up at once the store is back;
//   live    — events recorded as fast as one process can (hash chain, journal, fsync) for S
//             seconds while the shipper runs: whether it keeps up, and at what rate.
// The last line is a JSON summary.
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { openStore } from "@gatehouse/store";
import { startRecording } from "../dist/evidence/recording.js";
import { createLogger } from "../dist/logger.js";
import { configSchema } from "../dist/config/schema.js";

const { values: args } = parseArgs({
  options: {
    events: { type: "string", default: "200000" },
    sessions: { type: "string", default: "100" },
    seconds: { type: "string", default: "10" },
    batch: { type: "string", default: "2000" },
  },
});
const EVENTS = Number(args.events);
const SESSIONS = Number(args.sessions);
const SECONDS = Number(args.seconds);
/** The shipper's maxBatch (entries per store statement). */
const BATCH = Number(args.batch);
const ADMIN_URL = process.env.SHIPPER_BENCH_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
const logger = createLogger("warn");
const settings = configSchema.parse({ recording: { mode: "best-effort", journal: { maxBytes: 8 * 1024 * 1024 * 1024, segmentBytes: 64 * 1024 * 1024 } } }).recording;

/** A realistic Postgres statement event: text, bound parameters, command tag and rows. */
function event(seq) {
  return {
    kind: "execute",
    command: "select id, email, created_at from users where org_id = $1 and created_at > $2 order by id limit 100",
    params: [String(seq % 97), "2024-01-01T00:00:00Z"],
    outcome: "ok",
    details: { tag: "SELECT 100", rows: 100, transaction: "I", statement: "", portal: "" },
    durationUs: 830 + (seq % 200),
  };
}

async function withDatabase(fn) {
  const name = `gatehouse_bench_${randomBytes(5).toString("hex")}`;
  const admin = await openStore({ url: ADMIN_URL, maxConnections: 1 });
  await admin.sql.query(`create database ${name}`);
  await admin.close();
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  const store = await openStore({ url: url.toString(), maxConnections: 4 });
  try {
    return await fn(store);
  } finally {
    await store.close();
    const again = await openStore({ url: ADMIN_URL, maxConnections: 1 });
    await again.sql.query(`drop database if exists ${name} with (force)`);
    await again.close();
  }
}

/** A store stand-in that refuses everything: the store is down while the backlog builds. */
const down = { record: () => Promise.reject(Object.assign(new Error("the store is down"), { name: "StoreError", code: "CONNECT_FAILED", context: {} })) };

async function backlog(store) {
  const dir = mkdtempSync(join(tmpdir(), "gatehouse-shipper-bench-"));
  try {
    // Fill the journal while the store is "down", then stop that gateway.
    const filling = await startRecording({ dataDir: dir, store: down, settings, clock: () => Date.now() * 1000, logger, shipper: { retryMinMs: 60_000, retryMaxMs: 60_000 } });
    const sessions = await Promise.all(Array.from({ length: SESSIONS }, () => filling.recorder.open({ identity: { name: "bench" }, connection: "app", protocol: "postgres" })));
    for (let i = 0; i < EVENTS; i++) {
      void sessions[i % SESSIONS].record(event(i));
      if (i % 5000 === 4999) await new Promise((r) => setImmediate(r));
    }
    for (const s of sessions) await s.close("client_closed");
    await filling.journal.whenDurable(filling.journal.lastLsn);
    await filling.shipper.stop();
    await filling.journal.close();

    // A new start against the live store: recovery, then shipping the whole backlog.
    const started = process.hrtime.bigint();
    const shipping = await startRecording({ dataDir: dir, store, settings, clock: () => Date.now() * 1000, logger, shipper: { maxBatch: BATCH } });
    // startRecording returns once the journal is recovered and the shipper started.
    const recovered = process.hrtime.bigint();
    const drained = await shipping.shipper.drain(600_000);
    const recoverySeconds = Number(recovered - started) / 1e9;
    const seconds = Number(process.hrtime.bigint() - recovered) / 1e9;
    const stats = shipping.shipper.stats;
    await shipping.close();
    if (!drained) throw new Error("the backlog did not drain in 10 minutes");
    const [row] = await store.sql.query("select count(*)::int8 as n from events");
    if (row.n !== EVENTS) throw new Error(`expected ${EVENTS} events in the store, found ${row.n}`);
    return { events: stats.events, batches: stats.batches, recoverySeconds, seconds, eventsPerSecond: stats.events / seconds };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function live(store) {
  const dir = mkdtempSync(join(tmpdir(), "gatehouse-shipper-bench-"));
  try {
    await store.sql.query("truncate events, sessions");
    const recording = await startRecording({ dataDir: dir, store, settings, clock: () => Date.now() * 1000, logger, shipper: { maxBatch: BATCH } });
    const sessions = await Promise.all(Array.from({ length: SESSIONS }, () => recording.recorder.open({ identity: { name: "bench" }, connection: "app", protocol: "postgres" })));
    const started = process.hrtime.bigint();
    const deadline = Date.now() + SECONDS * 1000;
    let produced = 0;
    while (Date.now() < deadline) {
      for (let i = 0; i < 2000; i++) void sessions[produced % SESSIONS].record(event(produced++));
      // Let the journal's writes, the shipper and the store's replies run between bursts.
      await new Promise((r) => setImmediate(r));
    }
    const producing = Number(process.hrtime.bigint() - started) / 1e9;
    const lagAtEnd = recording.journal.lastLsn - recording.journal.ackedLsn;
    const shippedDuring = recording.shipper.stats.events;
    await recording.shipper.drain(600_000);
    const total = Number(process.hrtime.bigint() - started) / 1e9;
    for (const s of sessions) await s.close("client_closed");
    await recording.close();
    return {
      produced,
      producedPerSecond: produced / producing,
      shippedPerSecondWhileProducing: shippedDuring / producing,
      lagEntriesAtEnd: lagAtEnd,
      eventsPerSecondOverall: produced / total,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const result = await withDatabase(async (store) => ({ backlog: await backlog(store), live: await live(store) }));
console.log(
  `backlog: ${result.backlog.events} events shipped in ${result.backlog.seconds.toFixed(2)} s = ${Math.round(result.backlog.eventsPerSecond)} events/s ` +
    `(${result.backlog.batches} batches; reading the journal back first took ${result.backlog.recoverySeconds.toFixed(2)} s)`,
);
console.log(
  `live:    ${result.live.produced} events recorded at ${Math.round(result.live.producedPerSecond)}/s, shipped ${Math.round(result.live.shippedPerSecondWhileProducing)}/s meanwhile ` +
    `(lag at the end ${result.live.lagEntriesAtEnd} entries), ${Math.round(result.live.eventsPerSecondOverall)} events/s end to end`,
);
console.log(JSON.stringify({ shipper: result }));
