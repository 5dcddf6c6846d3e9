// CPU the gateway spends recording one pgbench -S -M extended transaction, without sockets or the
// tunnel: the Postgres observer, the recorder (hash chain), the journal (group commit, fdatasync)
// and the shipper, in one process. Not a test: a measurement, to find what the recording path costs.
//
//   pnpm --filter @gatehouse/gateway build
//   node packages/gateway/bench/recording-path.mjs [--sessions 16] [--seconds 5] [--mode strict|best-effort] [--store none|pg] [--metrics]
//
// --store none: the shipper's store takes each batch at once (the store's own cost left out);
// --store pg: a fresh database on SHIPPER_BENCH_URL (default postgres://postgres@127.0.0.1:5432/postgres).
// --metrics: with the gateway's metrics as the listeners keep them (sessions, commands by outcome, the
// added-latency histogram around each chunk, the fsync histogram), to measure what they cost.
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { readFileSync } from "node:fs";
import {
  PostgresObserver,
  encodeBind,
  encodeCommandComplete,
  encodeDataRow,
  encodeDescribe,
  encodeExecute,
  encodeParse,
  encodeReadyForQuery,
  encodeRowDescription,
  encodeSync,
  encodeBackendMessage,
} from "@gatehouse/protocols/postgres";
import { openStore } from "@gatehouse/store";
import { startRecording } from "../dist/evidence/recording.js";
import { createLogger } from "../dist/logger.js";
import { configSchema } from "../dist/config/schema.js";
import { commandDraft, commandEvent } from "../dist/listeners/postgres/command-events.js";
import { systemClock } from "../dist/clock.js";
import { GatewayMetrics } from "../dist/metrics/gateway-metrics.js";
import { timedInspector } from "../dist/sessions/command-timing.js";

const { values: args } = parseArgs({
  options: {
    sessions: { type: "string", default: "16" },
    seconds: { type: "string", default: "5" },
    mode: { type: "string", default: "strict" },
    store: { type: "string", default: "none" },
    metrics: { type: "boolean", default: false },
  },
});
const SESSIONS = Number(args.sessions);
const SECONDS = Number(args.seconds);
const logger = createLogger("warn");
const settings = configSchema.parse({ recording: { mode: args.mode } }).recording;

const frontend = Buffer.concat([
  encodeParse({ name: "", query: "SELECT abalance FROM pgbench_accounts WHERE aid = $1;", paramTypes: [] }),
  encodeBind({ portal: "", statement: "", paramFormats: [], params: [Buffer.from("48213")], resultFormats: [] }),
  encodeDescribe({ target: "P", name: "" }),
  encodeExecute({ portal: "", maxRows: 0 }),
  encodeSync(),
].map((b) => Buffer.from(b)));
const backend = Buffer.concat([
  Buffer.from([0x31, 0, 0, 0, 4]), // ParseComplete
  Buffer.from([0x32, 0, 0, 0, 4]), // BindComplete
  encodeRowDescription({ fields: [{ name: "abalance", tableOid: 16400, columnIndex: 3, typeOid: 23, typeSize: 4, typeModifier: -1, format: 0 }] }),
  encodeDataRow({ values: [Buffer.from("0")] }),
  encodeCommandComplete({ tag: "SELECT 1" }),
  encodeReadyForQuery({ status: "idle" }),
].map((b) => Buffer.from(b)));

let store;
let cleanup = async () => {};
if (args.store === "pg") {
  const admin = process.env.SHIPPER_BENCH_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
  const name = `gatehouse_bench_${randomBytes(5).toString("hex")}`;
  const a = await openStore({ url: admin, maxConnections: 1 });
  await a.sql.query(`create database ${name}`);
  await a.close();
  const url = new URL(admin);
  url.pathname = `/${name}`;
  store = await openStore({ url: url.toString(), maxConnections: 2 });
  cleanup = async () => {
    await store.close();
    const b = await openStore({ url: admin, maxConnections: 1 });
    await b.sql.query(`drop database ${name} with (force)`);
    await b.close();
  };
} else {
  store = { record: async (batch) => ({ sessions: batch.sessions?.length ?? 0, events: batch.events?.length ?? 0, closed: batch.closes?.length ?? 0, notClosed: [], checkpoints: batch.checkpoints?.length ?? 0, checkpointConflicts: [], chunks: batch.chunks?.length ?? 0 }) };
}

/** CPU µs used so far by the store's server processes (--store pg: its backends for our database). */
async function storeServerCpuUs() {
  if (args.store !== "pg") return 0;
  const rows = await store.sql.query("select pid from pg_stat_activity where datname = current_database()");
  let ticks = 0;
  for (const { pid } of rows) {
    try {
      const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // a backend that has gone
    }
  }
  return (ticks * 1e6) / 100; // USER_HZ
}

const dataDir = mkdtempSync(join(tmpdir(), "gatehouse-recording-bench-"));
const metrics = args.metrics ? new GatewayMetrics({ processMetrics: false }) : undefined;
const recording = await startRecording({ dataDir, store, settings, clock: systemClock, logger, metrics });
let txs = 0;
let stop = false;
async function session(i) {
  const recorded = await recording.recorder.open({ identity: { name: `agent-${i}`, method: "access_key" }, connection: "app", protocol: "postgres", connector: "c1", clientAddress: "127.0.0.1", clientApplication: "pgbench" });
  const observer = new PostgresObserver(
    {
      commandStarted: (c) => recorded.commandStarted(c, commandDraft(c)),
      commandCompleted: (c, o) => void recorded.commandCompleted(c, commandEvent(c, o)).catch(() => undefined),
    },
    { now: systemClock, maxParamBytes: 4096, standardConformingStrings: true },
  );
  // As the Postgres listener's relay calls it (timed when metrics are on).
  const up = timedInspector(recorded, (chunk) => {
    observer.frontend(chunk);
    return recorded.writeAhead();
  });
  while (!stop) {
    const wait = up(frontend);
    if (wait) await wait;
    else await new Promise((r) => setImmediate(r)); // let other sessions run, as sockets would
    observer.backend(backend);
    txs++;
  }
  await recorded.close("client_closed");
}
const server0 = await storeServerCpuUs();
const delay = monitorEventLoopDelay({ resolution: 1 });
const cpu0 = process.cpuUsage();
const t0 = performance.now();
delay.enable();
const runs = Array.from({ length: SESSIONS }, (_, i) => session(i));
await new Promise((r) => setTimeout(r, SECONDS * 1000));
stop = true;
await Promise.all(runs);
const elapsed = (performance.now() - t0) / 1000;
const cpu = process.cpuUsage(cpu0);
delay.disable();
const flushes = recording.journal.stats.flushes;
const batches = recording.shipper.stats.batches;
const drained = await recording.shipper.drain(30_000);
const cpuAll = process.cpuUsage(cpu0);
const serverUs = (await storeServerCpuUs()) - server0;
await recording.close();
rmSync(dataDir, { recursive: true, force: true });
await cleanup();
const us = (cpu.user + cpu.system) / txs;
console.log(`${args.mode}, store ${args.store}, ${SESSIONS} sessions${metrics ? ", metrics on" : ""}: ${Math.round(txs / elapsed)} tx/s, CPU ${us.toFixed(1)} µs/tx (user ${(cpu.user / txs).toFixed(1)}, system ${(cpu.system / txs).toFixed(1)}), incl. drain ${((cpuAll.user + cpuAll.system) / txs).toFixed(1)} µs/tx, event-loop delay p99 ${(delay.percentile(99) / 1e6).toFixed(2)} ms max ${(delay.max / 1e6).toFixed(1)} ms, drained ${drained}; ${(txs / flushes).toFixed(1)} tx per journal flush, ${(txs / Math.max(1, batches)).toFixed(0)} per store batch${args.store === "pg" ? `; the store's Postgres backends ${(serverUs / txs).toFixed(1)} µs/tx` : ""}`);
console.log(JSON.stringify({ bench: "recording-path", mode: args.mode, store: args.store, metrics: args.metrics, sessions: SESSIONS, txPerSec: txs / elapsed, cpuUsPerTx: us }));
