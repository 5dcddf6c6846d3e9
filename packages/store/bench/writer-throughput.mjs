// Sustained events/s through the EventWriter into a store. Not a test: a measurement.
//
//   pnpm --filter @gatehouse/store build
//   node packages/store/bench/writer-throughput.mjs [--events N] [--sessions K] [--embedded]
//
// Postgres: STORE_BENCH_URL (default postgres://postgres@127.0.0.1:5432/postgres) names the
// server; a fresh database gatehouse_bench_<random> is created there and dropped afterwards.
// Two shapes of load are measured:
//   pipelined — one producer keeps the writer's queue full (best-effort recording);
//   strict    — K sessions, each waiting for its event to be committed before the next
//               (strict recording: a command is forwarded only once its event is durable).
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import postgres from "postgres";
import { createEventWriter, openStore } from "../dist/index.js";
import { sampleEvent } from "./sample-event.mjs";

const { values: args } = parseArgs({
  options: {
    events: { type: "string", default: "200000" },
    sessions: { type: "string", default: "1000" },
    "max-batch": { type: "string", default: "500" },
    embedded: { type: "boolean", default: false },
  },
});
const EVENTS = Number(args.events);
const SESSIONS = Number(args.sessions);
const MAX_BATCH = Number(args["max-batch"]);
const ADMIN_URL = process.env.STORE_BENCH_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";

async function withStore(fn) {
  if (args.embedded) {
    const dir = mkdtempSync(join(tmpdir(), "gatehouse-bench-"));
    const store = await openStore({ dataDir: dir });
    try {
      return await fn(store, `embedded (PGlite) in ${dir}`);
    } finally {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }
  const name = `gatehouse_bench_${randomBytes(6).toString("hex")}`;
  const admin = postgres(ADMIN_URL, { max: 1, onnotice: () => {} });
  await admin.unsafe(`create database ${name}`);
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  const store = await openStore({ url: url.toString() });
  try {
    return await fn(store, `postgres ${url.host}/${name}`);
  } finally {
    await store.close();
    await admin.unsafe(`drop database if exists ${name} with (force)`);
    await admin.end();
  }
}

async function createSessions(store, prefix) {
  const ids = Array.from({ length: SESSIONS }, (_, i) => `${prefix}-${i}`);
  const startedUs = Date.now() * 1000;
  for (const id of ids) {
    await store.sessions.create({
      id,
      identity: { name: "bench-agent" },
      connection: "app",
      protocol: "postgres",
      startedUs,
    });
  }
  return ids;
}

function report(label, events, ms, writer, cpuStart, latencies) {
  const s = writer.stats;
  const cpu = process.cpuUsage(cpuStart);
  const line = {
    shape: label,
    events,
    seconds: +(ms / 1000).toFixed(2),
    eventsPerSecond: Math.round((events / ms) * 1000),
    batches: s.batches,
    meanBatch: Math.round(s.written / Math.max(1, s.batches)),
    failed: s.failedEvents,
    // CPU this process spent (the writer, JSON, the driver): the rest of the time is the database's.
    clientCpuSeconds: +((cpu.user + cpu.system) / 1e6).toFixed(2),
  };
  if (latencies) {
    latencies.sort((a, b) => a - b);
    const at = (q) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))];
    line.commitLatencyMs = { p50: +at(0.5).toFixed(2), p99: +at(0.99).toFixed(2) };
  }
  console.log(JSON.stringify(line));
}

async function pipelined(store) {
  const ids = await createSessions(store, "p");
  const writer = createEventWriter(store, { maxBatch: MAX_BATCH });
  const seqs = new Array(ids.length).fill(0);
  const cpuStart = process.cpuUsage();
  const started = performance.now();
  const writes = [];
  for (let i = 0; i < EVENTS; i++) {
    const k = i % ids.length;
    writes.push(writer.write(sampleEvent(ids[k], ++seqs[k])));
    // Let the writer work once per maxQueued events, as a producer reading sockets would.
    if (i % 10_000 === 9_999) await new Promise((resolve) => setImmediate(resolve));
  }
  await Promise.all(writes);
  report("pipelined", EVENTS, performance.now() - started, writer, cpuStart);
  await writer.close();
}

async function strict(store) {
  const ids = await createSessions(store, "s");
  const writer = createEventWriter(store, { maxBatch: MAX_BATCH });
  const perSession = Math.ceil(EVENTS / ids.length);
  const latencies = [];
  const cpuStart = process.cpuUsage();
  const started = performance.now();
  await Promise.all(
    ids.map(async (id) => {
      for (let seq = 1; seq <= perSession; seq++) {
        const t = performance.now();
        await writer.write(sampleEvent(id, seq));
        latencies.push(performance.now() - t);
      }
    }),
  );
  report(`strict, ${ids.length} sessions`, perSession * ids.length, performance.now() - started, writer, cpuStart, latencies);
  await writer.close();
}

await withStore(async (store, where) => {
  console.log(`store: ${where}; maxBatch ${MAX_BATCH}; ${EVENTS} events over ${SESSIONS} sessions`);
  await pipelined(store);
  await strict(store);
  const [row] = await store.sql.query("select count(*) as n from events");
  console.log(`events stored: ${row.n}`);
});
