import { createServer, connect, type Server } from "node:net";
import { loadavg } from "node:os";
import { newToken, startConnectorProcess, startGatewayProcess } from "@gatehouse/e2e/lib/processes";
import { cpuSeconds } from "../lib/process-tools.js";

// Throughput through gateway + connector (separate processes, loopback)
// against a direct TCP connection to the same target, in the same run.
// The target sends N bytes on each connection and closes; the client counts.

const TOTAL_BYTES = Number(process.env.BENCH_BYTES ?? 1024 * 1024 * 1024);
const STREAMS = Number(process.env.BENCH_STREAMS ?? 100);
const CHUNK = Buffer.alloc(256 * 1024, 0x61);


function startSource(): Promise<{ server: Server; port: number }> {
  const server = createServer((socket) => {
    socket.setNoDelay(true);
    socket.on("error", () => undefined);
    socket.once("data", (request: Buffer) => {
      let remaining = Number(request.toString("ascii").trim());
      const pump = () => {
        while (remaining > 0) {
          const piece = remaining >= CHUNK.length ? CHUNK : CHUNK.subarray(0, remaining);
          remaining -= piece.length;
          if (!socket.write(piece)) return void socket.once("drain", pump);
        }
        socket.end();
      };
      pump();
    });
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve({ server, port: (server.address() as { port: number }).port })));
}

/** Asks for `bytes` and resolves with the seconds it took to receive them all. */
function fetchBytes(port: number, bytes: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    let received = 0;
    const socket = connect(port, "127.0.0.1", () => socket.write(`${bytes}\n`));
    socket.on("data", (chunk: Buffer) => (received += chunk.length));
    socket.on("error", reject);
    socket.on("close", () => {
      if (received !== bytes) return reject(new Error(`received ${received} of ${bytes} bytes`));
      resolve(Number(process.hrtime.bigint() - started) / 1e9);
    });
  });
}

async function measure(port: number) {
  const one = await fetchBytes(port, TOTAL_BYTES);
  const perStream = Math.floor(TOTAL_BYTES / STREAMS);
  const started = process.hrtime.bigint();
  const times = await Promise.all(Array.from({ length: STREAMS }, () => fetchBytes(port, perStream)));
  const all = Number(process.hrtime.bigint() - started) / 1e9;
  const mb = (bytes: number, s: number) => bytes / 1e6 / s;
  return {
    oneStreamMBps: mb(TOTAL_BYTES, one),
    manyStreamsMBps: mb(perStream * STREAMS, all),
    fairness: Math.max(...times) / Math.min(...times),
  };
}

const source = await startSource();
const credentials = newToken();
const gateway = await startGatewayProcess({
  log: { level: "warn" },
  connectors: [{ name: "bench", tokenSha256: credentials.sha256 }],
  connections: [{ name: "source", protocol: "tcp", connector: "bench", listen: "127.0.0.1:0", target: { host: "127.0.0.1", port: source.port } }],
});
const connector = await startConnectorProcess({ gateway: gateway.apiUrl, name: "bench", token: credentials.token, allow: `127.0.0.1:${source.port}`, extra: { GATEHOUSE_LOG_LEVEL: "info" } });
await connector.waitFor((l) => /connected/.test(l.msg) && !/dis/.test(l.msg));

try {
  await fetchBytes(gateway.tcp.source!.port, 64 * 1024 * 1024); // warm up both paths
  await fetchBytes(source.port, 64 * 1024 * 1024);
  const loadAtStart = loadavg()[0]!;
  const direct = await measure(source.port);
  const cpuBefore = [cpuSeconds(gateway.proc.child.pid!), cpuSeconds(connector.child.pid!)] as const;
  const tunnel = await measure(gateway.tcp.source!.port);
  // CPU per MB relayed (both measurements: one stream, then the streams together).
  const mbRelayed = (2 * TOTAL_BYTES) / 1e6;
  const cpuMsPerMB = {
    gateway: ((cpuSeconds(gateway.proc.child.pid!) - cpuBefore[0]) * 1e3) / mbRelayed,
    connector: ((cpuSeconds(connector.child.pid!) - cpuBefore[1]) * 1e3) / mbRelayed,
  };
  const loadAtEnd = loadavg()[0]!;
  const rows = [
    ["path", "1 stream MB/s", `${STREAMS} streams MB/s`, "slowest/fastest stream"],
    ["direct TCP", direct.oneStreamMBps.toFixed(0), direct.manyStreamsMBps.toFixed(0), direct.fairness.toFixed(2)],
    ["gateway + connector", tunnel.oneStreamMBps.toFixed(0), tunnel.manyStreamsMBps.toFixed(0), tunnel.fairness.toFixed(2)],
    ["ratio (tunnel/direct)", (tunnel.oneStreamMBps / direct.oneStreamMBps).toFixed(2), (tunnel.manyStreamsMBps / direct.manyStreamsMBps).toFixed(2), ""],
  ];
  for (const row of rows) console.log(row.map((c, i) => c.padEnd(i === 0 ? 24 : 22)).join(""));
  console.log(`CPU per MB through the tunnel: gateway ${cpuMsPerMB.gateway.toFixed(1)} ms, connector ${cpuMsPerMB.connector.toFixed(1)} ms; load average ${loadAtStart.toFixed(1)} at the start, ${loadAtEnd.toFixed(1)} at the end`);
  console.log(
    JSON.stringify({
      bench: "tunnel",
      bytes: TOTAL_BYTES,
      streams: STREAMS,
      loadAverage: { start: loadAtStart, end: loadAtEnd },
      direct,
      tunnel,
      cpuMsPerMB,
      ratio: { oneStream: tunnel.oneStreamMBps / direct.oneStreamMBps, manyStreams: tunnel.manyStreamsMBps / direct.manyStreamsMBps },
    }),
  );
} finally {
  await connector.stop();
  await gateway.proc.stop();
  source.server.close();
}
