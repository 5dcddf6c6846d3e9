// How long the embedded store blocks the calling thread's event loop. Not a test: a measurement.
//
//   pnpm --filter @gatehouse/store build
//   node packages/store/bench/record-blocking.mjs [--batches N] [--batch B] [--main-thread]
//
// Opens a fresh embedded store in a temporary directory (PGlite on a worker thread, or with
// --main-thread on this one), then ships N batches of B events through `store.record`, one at a
// time, as the gateway's shipper does. Reports, for the open and per batch: wall time, CPU of this
// (main) thread alone (/proc/self/task/<pid>/schedstat), CPU of the whole process, and the event
// loop's delay (perf_hooks.monitorEventLoopDelay) — what every session on the gateway waits.
// The last line is a JSON summary.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { openStore } from "../dist/index.js";
import { sampleEvent } from "./sample-event.mjs";

const { values: args } = parseArgs({
  options: {
    batches: { type: "string", default: "40" },
    batch: { type: "string", default: "500" },
    "main-thread": { type: "boolean", default: false },
  },
});
const BATCHES = Number(args.batches);
const BATCH = Number(args.batch);
const SESSIONS_PER_BATCH = 10;

/** CPU time of the main thread (tid = pid) in µs: the first field of schedstat is ns on CPU. */
function mainThreadCpuUs() {
  return Number(readFileSync(`/proc/self/task/${process.pid}/schedstat`, "utf8").split(" ")[0]) / 1000;
}

function processCpuUs() {
  const { user, system } = process.cpuUsage();
  return user + system;
}

function measureStart() {
  return { wall: performance.now(), main: mainThreadCpuUs(), proc: processCpuUs() };
}

function measureEnd(start) {
  return {
    wallMs: performance.now() - start.wall,
    mainCpuMs: (mainThreadCpuUs() - start.main) / 1000,
    processCpuMs: (processCpuUs() - start.proc) / 1000,
  };
}

function makeBatch(n) {
  const startedUs = Date.now() * 1000;
  const sessions = Array.from({ length: SESSIONS_PER_BATCH }, (_, i) => ({
    id: `b${n}-s${i}`,
    identity: { name: "bench-agent" },
    connection: "app",
    protocol: "postgres",
    startedUs,
  }));
  const events = Array.from({ length: BATCH }, (_, i) =>
    sampleEvent(sessions[i % SESSIONS_PER_BATCH].id, Math.floor(i / SESSIONS_PER_BATCH) + 1),
  );
  return { sessions, events, closes: [] };
}

const r1 = (x) => Math.round(x * 10) / 10;
const sum = (rows, key) => rows.reduce((acc, row) => acc + row[key], 0);
const max = (rows, key) => Math.max(...rows.map((row) => row[key]));

const dir = mkdtempSync(join(tmpdir(), "gatehouse-bench-"));
const thread = args["main-thread"] ? "main" : "worker";
try {
  const openStart = measureStart();
  const store = await openStore({ dataDir: dir, worker: thread === "worker" });
  const open = { ...measureEnd(openStart), rssMiB: Math.round(process.memoryUsage().rss / 2 ** 20) };
  console.log(`open (${thread} thread): ${JSON.stringify(open)}`);
  try {
    // One batch first, unmeasured: the partition for this month is made, statements planned.
    await store.record(makeBatch(-1));
    // The loop's delay is sampled across all batches, with a pause between them (the shipper
    // gathers for 50 ms) so that a batch's stall is recorded even when it ends in a microtask.
    const delay = monitorEventLoopDelay({ resolution: 1 });
    const elu = performance.eventLoopUtilization();
    delay.enable();
    const batches = [];
    for (let n = 0; n < BATCHES; n++) {
      const batch = makeBatch(n);
      const start = measureStart();
      await store.record(batch);
      batches.push(measureEnd(start));
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    delay.disable();
    const per = {
      wallMs: r1(sum(batches, "wallMs") / BATCHES),
      mainCpuMs: r1(sum(batches, "mainCpuMs") / BATCHES),
      processCpuMs: r1(sum(batches, "processCpuMs") / BATCHES),
    };
    const loop = {
      delayMaxMs: r1(delay.max / 1e6),
      delayP99Ms: r1(delay.percentile(99) / 1e6),
      delayMeanMs: r1(delay.mean / 1e6),
      utilization: Math.round(performance.eventLoopUtilization(elu).utilization * 1000) / 1000,
    };
    console.log(`per batch of ${BATCH} events (mean of ${BATCHES}): ${JSON.stringify(per)}`);
    console.log(`event loop over the batches (10 ms pause after each): ${JSON.stringify(loop)}`);
    const rssMiB = Math.round(process.memoryUsage().rss / 2 ** 20);
    console.log(JSON.stringify({ thread, batch: BATCH, batches: BATCHES, open, perBatch: per, loop, rssMiB }));
  } finally {
    await store.close();
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
