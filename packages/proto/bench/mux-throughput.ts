// Micro-benchmark: MB/s through the Multiplexer over a loopback WebSocket pair (both ends in this
// process, so the one CPU it gets does the work of both sides).
//   node --import tsx bench/mux-throughput.ts [--mib 1024] [--streams 1,100] [--direction both]
//        [--window BYTES] [--payload BYTES] [--message BYTES] [--chunk BYTES] [--zero-mask]
import { once } from "node:events";
import type { AddressInfo } from "node:net";
import { parseArgs } from "node:util";

import { WebSocket, WebSocketServer } from "ws";

import { type MuxOptions, Multiplexer, type TunnelStream, wsLink } from "../src/index.js";

const { values: args } = parseArgs({
  options: {
    mib: { type: "string", default: "1024" },
    streams: { type: "string", default: "1,100" },
    direction: { type: "string", default: "both" },
    window: { type: "string" },
    payload: { type: "string" },
    message: { type: "string" },
    chunk: { type: "string", default: String(64 * 1024) },
    "zero-mask": { type: "boolean", default: false },
    runs: { type: "string", default: "3" },
  },
});

const totalBytes = Number(args.mib) * 1024 * 1024;
const chunkSize = Number(args.chunk);
const tuning: Partial<MuxOptions> = {
  ...(args.window ? { initialWindow: Number(args.window) } : {}),
  ...(args.payload ? { maxDataPayload: Number(args.payload) } : {}),
  ...(args.message ? { maxMessageBytes: Number(args.message) } : {}),
};

// Closing the link at the end errors whatever has not finished yet; that is expected here.
const ignore = (): void => {};

interface Result {
  mbPerSec: number;
  perStream: number[];
}

async function run(streams: number, upload: boolean): Promise<Result> {
  const wss = new WebSocketServer({ host: "127.0.0.1", port: 0, perMessageDeflate: false });
  await once(wss, "listening");
  const { port } = wss.address() as AddressInfo;
  const accepted = once(wss, "connection") as Promise<[WebSocket]>;
  // A zero mask is legal WebSocket and lets ws skip XOR-ing (and copying) every client payload.
  const client = new WebSocket(`ws://127.0.0.1:${port}`, {
    perMessageDeflate: false,
    ...(args["zero-mask"] ? { generateMask: (mask: Buffer) => void mask.fill(0) } : {}),
  });
  const [[server]] = await Promise.all([accepted, once(client, "open")]);

  const connectorStreams: TunnelStream[] = [];
  const gateway = new Multiplexer(wsLink(server), { ...tuning, role: "gateway" });
  const connector = new Multiplexer(wsLink(client), {
    ...tuning,
    role: "connector",
    onOpen: (_open, reply) => connectorStreams.push(reply.accept().on("error", ignore)),
  });
  const gatewayStreams: TunnelStream[] = [];
  for (let i = 0; i < streams; i++) gatewayStreams.push((await gateway.open({ protocol: "tcp" })).stream.on("error", ignore));

  const perStreamBytes = Math.floor(totalBytes / streams);
  const chunk = Buffer.alloc(chunkSize, 0xab);
  const start = performance.now();
  const finished = gatewayStreams.map(async (_, i) => {
    const writer = upload ? connectorStreams[i]! : gatewayStreams[i]!;
    const reader = upload ? gatewayStreams[i]! : connectorStreams[i]!;
    const read = (async () => {
      let got = 0;
      for await (const data of reader) got += (data as Buffer).length;
      if (got !== perStreamBytes) throw new Error(`stream ${i}: ${got} of ${perStreamBytes} bytes`);
      return performance.now();
    })();
    for (let sent = 0; sent < perStreamBytes; ) {
      const n = Math.min(chunkSize, perStreamBytes - sent);
      sent += n;
      if (!writer.write(n === chunkSize ? chunk : chunk.subarray(0, n))) await once(writer, "drain");
    }
    writer.end();
    const done = await read;
    reader.end(); // let both streams finish
    return (perStreamBytes / (done - start)) * 1000;
  });
  const perStream = await Promise.all(finished);
  const seconds = (performance.now() - start) / 1000;
  gateway.close("bench done");
  connector.close("bench done");
  client.terminate();
  server.terminate();
  await new Promise((resolve) => wss.close(resolve));
  return { mbPerSec: (perStreamBytes * streams) / seconds / 1e6, perStream };
}

const directions = args.direction === "both" ? [false, true] : [args.direction === "upload"];
for (const streams of args.streams.split(",").map(Number)) {
  for (const upload of directions) {
    // The machine is shared: report the median of several runs, and the spread.
    const results: Result[] = [];
    for (let i = 0; i < Number(args.runs); i++) results.push(await run(streams, upload));
    results.sort((a, b) => a.mbPerSec - b.mbPerSec);
    const { mbPerSec, perStream } = results[Math.floor(results.length / 2)]!;
    const fastest = Math.max(...perStream);
    const slowest = Math.min(...perStream);
    const label = upload ? "connector→gateway" : "gateway→connector";
    const spread = results.map((r) => r.mbPerSec.toFixed(0)).join("/");
    console.log(
      `${String(streams).padStart(3)} stream(s) ${label}: ${mbPerSec.toFixed(0)} MB/s median of ${spread}` +
        (streams > 1 ? `, fastest/slowest stream ${(fastest / slowest).toFixed(2)}` : ""),
    );
  }
}
