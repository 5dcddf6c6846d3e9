// Micro-benchmark: small request/response round trips through the Multiplexer over a loopback
// WebSocket pair — the pattern of a database client (pgbench -S), where per-message costs matter
// and bytes do not.
//
//   node --import tsx bench/mux-rr.ts [--streams 1,16] [--seconds 3] [--request 64] [--response 128]
//        [--split] [--runs 3]
//
// Each stream keeps one request in flight: the gateway end writes `--request` bytes, the connector
// end answers `--response` bytes, and the next request goes once the whole answer is in. Both ends
// share this thread unless --split (connector in a worker thread). Reports round trips per second
// and CPU µs per round trip (process CPU time, both ends together), medians of --runs.
import { once } from "node:events";
import type { AddressInfo } from "node:net";
import { parseArgs } from "node:util";
import { isMainThread, parentPort, Worker, workerData } from "node:worker_threads";

import { WebSocket, WebSocketServer } from "ws";

import { Multiplexer, type TunnelStream, wsLink } from "../src/index.js";

interface Setup {
  url: string;
  request: number;
  response: number;
}

const ignore = (): void => {};

/** The connector's end: answers every full request with `response` bytes. */
async function connectorSide(setup: Setup): Promise<void> {
  const ws = new WebSocket(setup.url, { perMessageDeflate: false });
  const answer = Buffer.alloc(setup.response, 0x5a);
  const connector = new Multiplexer(wsLink(ws), {
    role: "connector",
    onOpen: (_open, reply) => {
      const stream = reply.accept().on("error", ignore);
      let got = 0;
      stream.on("data", (chunk: Buffer) => {
        got += chunk.length;
        while (got >= setup.request) {
          got -= setup.request;
          stream.write(answer);
        }
      });
    },
  });
  await once(connector, "close");
}

async function run(streams: number, seconds: number, setup: Omit<Setup, "url">, split: boolean) {
  const wss = new WebSocketServer({ host: "127.0.0.1", port: 0, perMessageDeflate: false });
  await once(wss, "listening");
  const url = `ws://127.0.0.1:${(wss.address() as AddressInfo).port}`;
  const accepted = once(wss, "connection") as Promise<[WebSocket]>;
  const remoteDone = split
    ? new Promise<void>((resolve, reject) => {
        // Node 20 does not apply --import loaders to a worker's own entry: register tsx first.
        const entry = `import(${JSON.stringify(import.meta.resolve("tsx/esm/api"))})
          .then((tsx) => tsx.register())
          .then(() => import(${JSON.stringify(import.meta.url)}));`;
        const worker = new Worker(entry, { eval: true, workerData: { ...setup, url } });
        worker.once("exit", () => resolve()).once("error", reject);
      })
    : connectorSide({ ...setup, url });
  const [server] = await accepted;
  const gateway = new Multiplexer(wsLink(server), { role: "gateway" });
  const opened: TunnelStream[] = [];
  for (let i = 0; i < streams; i++) opened.push((await gateway.open({ protocol: "tcp" })).stream.on("error", ignore));

  const request = Buffer.alloc(setup.request, 0xa5);
  let roundTrips = 0;
  let running = true;
  for (const stream of opened) {
    let got = 0;
    stream.on("data", (chunk: Buffer) => {
      got += chunk.length;
      if (got < setup.response) return;
      got -= setup.response;
      roundTrips++;
      if (running) stream.write(request);
    });
  }
  // Warm up (JIT), then measure.
  for (const stream of opened) stream.write(request);
  await new Promise((resolve) => setTimeout(resolve, 500));
  const startTrips = roundTrips;
  const cpuStart = process.cpuUsage();
  const start = performance.now();
  await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
  const cpu = process.cpuUsage(cpuStart);
  const elapsed = (performance.now() - start) / 1000;
  const trips = roundTrips - startTrips;
  running = false;
  gateway.close("bench done");
  await remoteDone;
  server.terminate();
  await new Promise((resolve) => wss.close(resolve));
  return { perSec: trips / elapsed, cpuUs: (cpu.user + cpu.system) / trips };
}

async function main(): Promise<void> {
  const { values: args } = parseArgs({
    options: {
      streams: { type: "string", default: "1,16" },
      seconds: { type: "string", default: "3" },
      request: { type: "string", default: "64" },
      response: { type: "string", default: "128" },
      split: { type: "boolean", default: false },
      runs: { type: "string", default: "3" },
    },
  });
  const setup = { request: Number(args.request), response: Number(args.response) };
  const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
  for (const streams of args.streams.split(",").map(Number)) {
    const results = [];
    for (let i = 0; i < Number(args.runs); i++) results.push(await run(streams, Number(args.seconds), setup, args.split));
    console.log(
      `${String(streams).padStart(3)} stream(s): ${median(results.map((r) => r.perSec)).toFixed(0)} round trips/s, ` +
        `${median(results.map((r) => r.cpuUs)).toFixed(1)} CPU µs per round trip ` +
        `(runs ${results.map((r) => r.cpuUs.toFixed(1)).join("/")})`,
    );
  }
}

if (isMainThread) {
  await main();
} else {
  // --split: this worker is the connector.
  await connectorSide(workerData as Setup);
  parentPort?.close();
}
