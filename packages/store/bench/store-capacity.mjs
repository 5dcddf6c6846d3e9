// What one Postgres store takes, and what the record costs on its disk. Not a test: a measurement,
// quoted in docs/operations.md ("Store sizing").
//
//   pnpm --filter @gatehouse/store build
//   node packages/store/bench/store-capacity.mjs [--events N] [--shapes 2000x1,200x4] [--per-session E]
//
// STORE_BENCH_URL (default postgres://postgres@127.0.0.1:5432/postgres) names the server; a fresh
// database gatehouse_capacity_<random> is made there and dropped afterwards (--keep leaves it).
//
// The record path is the gateway's: `store.record(batch)` (one `gatehouse_record` statement per
// batch), each writer with one batch in flight, as the gateway's shipper does. A batch holds what the
// journal would: new sessions with their signed `open` checkpoints, their events (hash-chained, the
// bench's usual Postgres statement event), and closes with their seals and signed `seal` checkpoints.
// A shape BxW is W writers (W gateways sharing the store) shipping batches of B events: 2000 is the
// shipper's largest batch (a backlog, or a busy gateway), smaller ones a quieter gateway's 50 ms of
// gathering. Batches are made before each shape is timed, so the numbers are the store's alone.
//
// Reported per shape: events/s, ms per batch (p50, p99), CPU of the store's server processes (the
// database's backends, from /proc; same machine only) per event, and of this client. Then the disk:
// bytes per event over the events partitions (pg_total_relation_size: heap, TOAST and indexes), per
// session (sessions + checkpoints), WAL written per event, and growth per month at 100 events/s.
import { createHash, generateKeyPairSync, randomBytes, sign } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import postgres from "postgres";
import { openStore } from "../dist/index.js";
import { sampleEvent } from "./sample-event.mjs";

const { values: args } = parseArgs({
  options: {
    events: { type: "string", default: "60000" },
    shapes: { type: "string", default: "2000x1,2000x2,200x1,200x4,20x4" },
    "per-session": { type: "string", default: "50" },
    keep: { type: "boolean", default: false },
  },
});
const EVENTS = positive("--events", args.events);
const PER_SESSION = positive("--per-session", args["per-session"]);
const SHAPES = args.shapes.split(",").map((s) => {
  const match = /^(\d+)x(\d+)$/.exec(s.trim());
  if (!match) throw new Error(`--shapes: "${s}" is not BATCHxWRITERS (e.g. 2000x1)`);
  return { batch: Number(match[1]), writers: Number(match[2]) };
});
const ADMIN_URL = process.env.STORE_BENCH_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
const MONTH_SECONDS = 30.44 * 86_400;

function positive(flag, text) {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${flag}: expected a positive integer, got "${text}"`);
  return n;
}

// ---------------------------------------------------------------------------------------------
// The record a gateway ships: sessions, chained events, seals, signed checkpoints

const gatewayKey = generateKeyPairSync("ed25519");
const sha256 = (text) => createHash("sha256").update(text).digest("hex");

/** One gateway's stream of journal entries, cut into batches of `batch` events. */
function makeBatches(writer, shapeLabel, totalEvents, batch) {
  const keyId = sha256(`bench-gateway-${writer}-${shapeLabel}`).slice(0, 16);
  let checkpointSeq = 0;
  let checkpointHash = sha256(`start-${keyId}`);
  const checkpoint = (kind, sessionId, details, timeUs) => {
    const unsigned = { gateway: keyId, seq: ++checkpointSeq, timeUs, kind, sessionId, details, prevHash: checkpointHash };
    const hash = sha256(checkpointHash + JSON.stringify(unsigned));
    checkpointHash = hash;
    const signature = `ed25519:${keyId}:${sign(null, Buffer.from(hash), gatewayKey.privateKey).toString("base64")}`;
    return { ...unsigned, hash, signature };
  };

  const batches = [];
  let current = { sessions: [], events: [], closes: [], checkpoints: [] };
  let made = 0;
  let n = 0;
  while (made < totalEvents) {
    const id = `${shapeLabel}-w${writer}-s${n++}-${randomBytes(4).toString("hex")}`;
    const startedUs = Date.now() * 1000;
    let prevHash = sha256(`genesis-${id}`);
    current.sessions.push({ id, identity: { name: "bench-agent", method: "access_key" }, connection: "app", protocol: "postgres", connector: "dc1", clientAddress: "10.0.0.7", clientApplication: "psql", startedUs });
    current.checkpoints.push(checkpoint("open", id, { genesis: prevHash, startedUs }, startedUs));
    const events = Math.min(PER_SESSION, totalEvents - made);
    for (let seq = 1; seq <= events; seq++) {
      const event = { ...sampleEvent(id, seq), prevHash };
      event.hash = sha256(prevHash + JSON.stringify(event));
      prevHash = event.hash;
      current.events.push(event);
      made++;
      if (current.events.length === batch) {
        batches.push(current);
        current = { sessions: [], events: [], closes: [], checkpoints: [] };
      }
    }
    const endedUs = Date.now() * 1000;
    const seal = `ed25519:${keyId}:${sign(null, Buffer.from(prevHash), gatewayKey.privateKey).toString("base64")}`;
    current.closes.push({ id, endedUs, endReason: "client_closed", finalHash: prevHash, sealSignature: seal });
    current.checkpoints.push(checkpoint("seal", id, { eventCount: events, finalHash: prevHash, endedUs, endReason: "client_closed" }, endedUs));
  }
  if (current.sessions.length + current.events.length + current.closes.length > 0) batches.push(current);
  return { batches, sessions: n };
}

// ---------------------------------------------------------------------------------------------
// Measuring

/** utime + stime (µs) of these pids, from /proc (clock ticks of 10 ms: USER_HZ 100). */
function cpuUs(pids) {
  let ticks = 0;
  for (const pid of pids) {
    const path = `/proc/${pid}/stat`;
    if (!existsSync(path)) continue;
    const fields = readFileSync(path, "utf8").split(") ")[1].split(" ");
    ticks += Number(fields[11]) + Number(fields[12]);
  }
  return ticks * 10_000;
}

const percentile = (sorted, q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
const r = (x, digits = 1) => Number(x.toFixed(digits));

async function runShape(store, admin, database, { batch, writers }) {
  const label = `b${batch}w${writers}`;
  const perWriter = Math.ceil(EVENTS / writers);
  const made = Array.from({ length: writers }, (_, w) => makeBatches(w, label, perWriter, batch));
  // One statement first, unmeasured per writer connection: plans are made, the month's partition exists.
  await store.ping();
  const backends = async () => (await admin`select pid from pg_stat_activity where datname = ${database}`).map((row) => row.pid);
  const serverBefore = cpuUs(await backends());
  const clientBefore = process.cpuUsage();
  const latencies = [];
  const started = performance.now();
  await Promise.all(
    made.map(async ({ batches }) => {
      for (const b of batches) {
        const t = performance.now();
        await store.record(b);
        latencies.push(performance.now() - t);
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  const serverUs = cpuUs(await backends()) - serverBefore;
  const client = process.cpuUsage(clientBefore);
  const events = perWriter * writers;
  latencies.sort((a, b) => a - b);
  return {
    shape: `${batch} events a batch, ${writers} writer${writers === 1 ? "" : "s"}`,
    events,
    sessions: made.reduce((sum, m) => sum + m.sessions, 0),
    seconds: r(seconds, 2),
    eventsPerSecond: Math.round(events / seconds),
    batchMs: { p50: r(percentile(latencies, 0.5)), p99: r(percentile(latencies, 0.99)) },
    serverCpuUsPerEvent: r(serverUs / events),
    clientCpuUsPerEvent: r((client.user + client.system) / events),
  };
}

async function diskUse(sql) {
  const [events] = await sql`
    select coalesce(sum(pg_total_relation_size(i.inhrelid)), 0)::int8 as bytes,
           coalesce(sum(pg_relation_size(i.inhrelid)), 0)::int8 as heap,
           (select count(*) from events)::int8 as rows,
           count(*)::int as partitions
    from pg_inherits i where i.inhparent = 'events'::regclass`;
  const [others] = await sql`
    select pg_total_relation_size('sessions')::int8 as sessions,
           pg_total_relation_size('checkpoints')::int8 as checkpoints,
           (select count(*) from sessions)::int8 as session_rows`;
  return {
    eventBytes: Number(events.bytes),
    eventHeapBytes: Number(events.heap),
    events: Number(events.rows),
    partitions: events.partitions,
    sessionBytes: Number(others.sessions) + Number(others.checkpoints),
    sessions: Number(others.session_rows),
  };
}

// ---------------------------------------------------------------------------------------------

const database = `gatehouse_capacity_${randomBytes(6).toString("hex")}`;
const admin = postgres(ADMIN_URL, { max: 1, onnotice: () => {} });
await admin.unsafe(`create database ${database}`);
const url = new URL(ADMIN_URL);
url.pathname = `/${database}`;
const store = await openStore({ url: url.toString() });
const sql = postgres(url.toString(), { max: 1, onnotice: () => {} });
try {
  const [server] = await admin`select version() as version, current_setting('shared_buffers') as shared_buffers,
    current_setting('synchronous_commit') as synchronous_commit, current_setting('fsync') as fsync,
    current_setting('wal_level') as wal_level`;
  console.log(`server: ${server.version.split(" on ")[0]}; shared_buffers ${server.shared_buffers}, fsync ${server.fsync}, synchronous_commit ${server.synchronous_commit}, wal_level ${server.wal_level}`);
  console.log(`load average before: ${readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ")}`);
  const walBefore = (await admin`select pg_current_wal_lsn() as lsn`)[0].lsn;
  const results = [];
  for (const shape of SHAPES) {
    const result = await runShape(store, admin, database, shape);
    console.log(JSON.stringify(result));
    results.push(result);
  }
  const walBytes = Number((await admin`select pg_wal_lsn_diff(pg_current_wal_lsn(), ${walBefore}) as bytes`)[0].bytes);
  const disk = await diskUse(sql);
  const perEvent = disk.eventBytes / disk.events;
  const perSession = disk.sessionBytes / disk.sessions;
  const rate = 100;
  const monthEvents = rate * MONTH_SECONDS;
  const monthBytes = monthEvents * perEvent + (monthEvents / PER_SESSION) * perSession;
  const summary = {
    loadAverageAfter: readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" "),
    events: disk.events,
    sessions: disk.sessions,
    eventsPerSession: PER_SESSION,
    bytesPerEvent: Math.round(perEvent),
    heapBytesPerEvent: Math.round(disk.eventHeapBytes / disk.events),
    bytesPerSession: Math.round(perSession),
    walBytesPerEvent: Math.round(walBytes / disk.events),
    growthPerMonthAt100EventsPerSecond: { events: Math.round(monthEvents), GiB: r(monthBytes / 2 ** 30) },
    shapes: results,
  };
  console.log(
    `disk: ${summary.bytesPerEvent} bytes an event (${summary.heapBytesPerEvent} of it the table's heap), ` +
      `${summary.bytesPerSession} a session with its checkpoints, ${summary.walBytesPerEvent} of WAL an event ` +
      `(the whole server's WAL while this ran); at ${rate} events/s: ${(monthEvents / 1e6).toFixed(0)} M events, ` +
      `≈ ${summary.growthPerMonthAt100EventsPerSecond.GiB} GiB a month`,
  );
  console.log(JSON.stringify(summary));
} finally {
  await store.close();
  await sql.end();
  if (args.keep) console.log(`kept database ${database}`);
  else await admin.unsafe(`drop database if exists ${database} with (force)`);
  await admin.end();
}
