// Baseline for bench/mux-throughput.ts: plain ws, no tunnel, both ends in this process, 1 GiB each way.
//   node --import tsx bench/ws-baseline.ts [messageBytes=65536]
import { once } from "node:events";
import type { AddressInfo } from "node:net";
import { WebSocket, WebSocketServer } from "ws";
const size = Number(process.argv[2] ?? 65536);
const total = 1024 * 1024 * 1024;
const wss = new WebSocketServer({ host: "127.0.0.1", port: 0 });
await once(wss, "listening");
const accepted = once(wss, "connection") as Promise<[WebSocket]>;
const client = new WebSocket(`ws://127.0.0.1:${(wss.address() as AddressInfo).port}`);
const [[server]] = await Promise.all([accepted, once(client, "open")]);
for (const [from, to, label] of [[server, client, "server→client"], [client, server, "client→server"]] as const) {
  let got = 0;
  const cpuStart = process.cpuUsage();
  const start = performance.now();
  const done = new Promise<void>((resolve) => { const h = (d: Buffer) => { got += d.length; if (got >= total) { to.off("message", h); resolve(); } }; to.on("message", h); });
  const buf = Buffer.alloc(size, 1);
  for (let sent = 0; sent < total; sent += size) {
    from.send(buf);
    if (from.bufferedAmount > 1 << 20) await new Promise<void>((r) => from.send(Buffer.alloc(0), () => r()));
  }
  await done;
  const cpu = process.cpuUsage(cpuStart);
  const perCpu = total / ((cpu.user + cpu.system) / 1e6) / 1e6;
  console.log(label, size, ((total / (performance.now() - start)) * 1000 / 1e6).toFixed(0), "MB/s", `(${perCpu.toFixed(0)} MB per CPU-second)`);
}
client.terminate(); server.terminate(); wss.close();
