// Micro-benchmark: MB/s through the Multiplexer over a loopback WebSocket pair.
//
//   node --import tsx bench/mux-throughput.ts [--mib 1024] [--streams 1,100] [--direction both|download|upload]
//        [--split] [--zero-mask] [--runs 3] [--window BYTES] [--payload BYTES] [--message BYTES] [--chunk BYTES]
//
// download = gateway → connector, upload = connector → gateway. By default both ends share this
// thread (one core does the work of both sides); --split runs the connector in a worker thread, as
// two processes on two machines would. --zero-mask gives the client (connector) socket an all-zero
// WebSocket mask, which lets ws skip XOR-ing every payload byte in JavaScript.
// Reports the median of --runs runs, MB per CPU-second (steadier than wall time on a shared machine)
// and, for several streams, the ratio of the fastest to the slowest stream.
import { once } from "node:events";
import type { AddressInfo } from "node:net";
import { parseArgs } from "node:util";
import { isMainThread, parentPort, Worker, workerData } from "node:worker_threads";

import { WebSocket, WebSocketServer } from "ws";

import { type MuxOptions, Multiplexer, type TunnelStream, wsLink } from "../src/index.js";

interface Setup {
  url: string;
  streams: number;
  perStreamBytes: number;
  upload: boolean;
  chunkSize: number;
  zeroMask: boolean;
  tuning: Partial<MuxOptions>;
}

/** Absolute time in ms, comparable across threads. */
const now = (): number => performance.timeOrigin + performance.now();
// Closing the link at the end errors whatever has not finished yet; that is expected here.
const ignore = (): void => {};

async function write(stream: TunnelStream, bytes: number, chunkSize: number): Promise<void> {
  const chunk = Buffer.alloc(chunkSize, 0xab);
  for (let sent = 0; sent < bytes; ) {
    const n = Math.min(chunkSize, bytes - sent);
    sent += n;
    if (!stream.write(n === chunkSize ? chunk : chunk.subarray(0, n))) await once(stream, "drain");
  }
  stream.end();
}

/** Reads to the end; resolves with the time the last byte arrived. */
function read(stream: TunnelStream, expected: number): Promise<number> {
  return new Promise((resolve, reject) => {
    let got = 0;
    stream.on("data", (data: Buffer) => (got += data.length));
    stream.once("end", () => {
      if (got === expected) resolve(now());
      else reject(new Error(`stream ${stream.id}: ${got} of ${expected} bytes`));
      stream.end(); // the other direction is done too
    });
  });
}

/** The connector's end: accepts every stream, then reads (download) or writes (upload) it. */
async function connectorSide(setup: Setup): Promise<number[]> {
  const ws = new WebSocket(setup.url, {
    perMessageDeflate: false,
    ...(setup.zeroMask ? { generateMask: (mask: Buffer) => void mask.fill(0) } : {}),
  });
  const finished: Promise<number>[] = [];
  let allOpen: () => void = ignore;
  const opened = new Promise<void>((resolve) => (allOpen = resolve));
  const connector = new Multiplexer(wsLink(ws), {
    ...setup.tuning,
    role: "connector",
    onOpen: (_open, reply) => {
      const stream = reply.accept().on("error", ignore);
      if (!setup.upload) finished.push(read(stream, setup.perStreamBytes));
      // Upload: the gateway's one-byte "go" marks the start, after every stream is open.
      else stream.once("data", () => void write(stream, setup.perStreamBytes, setup.chunkSize));
      if (finished.length === setup.streams) allOpen();
    },
  });
  await once(ws, "open");
  const closed = once(connector, "close");
  if (setup.upload) {
    await closed;
    return [];
  }
  await opened;
  const doneAt = await Promise.all(finished);
  connector.drain(); // tells the gateway every stream was read
  await closed;
  return doneAt;
}

interface Result {
  mbPerSec: number;
  mbPerCpuSec: number;
  /** Each stream's own rate, MB/s. */
  perStream: number[];
}

async function run(setup: Omit<Setup, "url">, split: boolean): Promise<Result> {
  const wss = new WebSocketServer({ host: "127.0.0.1", port: 0, perMessageDeflate: false });
  await once(wss, "listening");
  const url = `ws://127.0.0.1:${(wss.address() as AddressInfo).port}`;
  const accepted = once(wss, "connection") as Promise<[WebSocket]>;
  const remoteDone = split
    ? new Promise<number[]>((resolve, reject) => {
        // Node 20 does not apply --import loaders to a worker's own entry: register tsx first.
        const entry = `import(${JSON.stringify(import.meta.resolve("tsx/esm/api"))})
          .then((tsx) => tsx.register())
          .then(() => import(${JSON.stringify(import.meta.url)}));`;
        const worker = new Worker(entry, { eval: true, workerData: { ...setup, url } });
        worker.once("message", resolve).once("error", reject);
      })
    : connectorSide({ ...setup, url });
  const [server] = await accepted;
  // (Created after an await, but safe: the connector sends nothing before the gateway opens a stream.)
  const gateway = new Multiplexer(wsLink(server), { ...setup.tuning, role: "gateway" });
  const streams: TunnelStream[] = [];
  for (let i = 0; i < setup.streams; i++) {
    streams.push((await gateway.open({ protocol: "tcp" })).stream.on("error", ignore));
  }

  const cpuStart = process.cpuUsage();
  const start = now();
  let doneAt: number[];
  if (setup.upload) {
    const reads = streams.map((stream) => read(stream, setup.perStreamBytes));
    for (const stream of streams) stream.write(Buffer.of(1));
    doneAt = await Promise.all(reads);
  } else {
    for (const stream of streams) {
      void write(stream, setup.perStreamBytes, setup.chunkSize);
      stream.resume(); // the connector's end() after reading
    }
    // The connector drains (Drain frame) once every stream was read: its results come back then.
    await once(gateway, "drain");
    doneAt = [];
  }
  const end = now();
  const cpu = process.cpuUsage(cpuStart);
  gateway.close("bench done");
  const remote = await remoteDone;
  if (!setup.upload) doneAt = remote;
  server.terminate();
  await new Promise((resolve) => wss.close(resolve));

  const bytes = setup.perStreamBytes * setup.streams;
  const lastDone = Math.max(end, ...doneAt);
  return {
    mbPerSec: bytes / ((lastDone - start) / 1000) / 1e6,
    mbPerCpuSec: bytes / ((cpu.user + cpu.system) / 1e6) / 1e6,
    perStream: doneAt.map((at) => setup.perStreamBytes / ((at - start) / 1000) / 1e6),
  };
}

async function main(): Promise<void> {
  const { values: args } = parseArgs({
    options: {
      mib: { type: "string", default: "1024" },
      streams: { type: "string", default: "1,100" },
      direction: { type: "string", default: "both" },
      split: { type: "boolean", default: false },
      "zero-mask": { type: "boolean", default: false },
      runs: { type: "string", default: "3" },
      window: { type: "string" },
      payload: { type: "string" },
      message: { type: "string" },
      chunk: { type: "string", default: String(64 * 1024) },
    },
  });
  const tuning: Partial<MuxOptions> = {
    ...(args.window ? { initialWindow: Number(args.window) } : {}),
    ...(args.payload ? { maxDataPayload: Number(args.payload) } : {}),
    ...(args.message ? { maxMessageBytes: Number(args.message) } : {}),
  };
  const directions = args.direction === "both" ? [false, true] : [args.direction === "upload"];
  const totalBytes = Number(args.mib) * 1024 * 1024;
  for (const streams of args.streams.split(",").map(Number)) {
    for (const upload of directions) {
      const setup = {
        streams,
        perStreamBytes: Math.floor(totalBytes / streams),
        upload,
        chunkSize: Number(args.chunk),
        zeroMask: args["zero-mask"],
        tuning,
      };
      const results: Result[] = [];
      for (let i = 0; i < Number(args.runs); i++) results.push(await run(setup, args.split));
      const median = (values: number[]) => values.sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
      const rates = results.map((r) => r.mbPerSec);
      const mid = results.find((r) => r.mbPerSec === median([...rates]))!;
      const label = upload ? "connector→gateway" : "gateway→connector";
      console.log(
        `${String(streams).padStart(3)} stream(s) ${label}: ${median([...rates]).toFixed(0)} MB/s` +
          ` (runs ${rates.map((r) => r.toFixed(0)).join("/")}; ${median(results.map((r) => r.mbPerCpuSec)).toFixed(0)} MB per CPU-second)` +
          (streams > 1
            ? `, fastest/slowest stream ${(Math.max(...mid.perStream) / Math.min(...mid.perStream)).toFixed(2)}`
            : ""),
      );
    }
  }
}

if (isMainThread) {
  await main();
} else {
  // --split: this worker is the connector.
  parentPort!.postMessage(await connectorSide(workerData as Setup));
}
