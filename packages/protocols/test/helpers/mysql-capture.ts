import * as net from "node:net";
import { PacketReader } from "../../src/mysql/framing.js";

/** A chunk as it crossed the proxy, in the order the proxy saw it. */
export interface CapturedChunk {
  readonly from: "client" | "server";
  readonly bytes: Uint8Array;
}

/** A capture with the handshake cut off: the command phase, as the gateway's observer sees it. */
export interface MysqlCapture {
  /** Client capabilities & server capabilities (what both sides agreed on). */
  readonly capabilities: number;
  readonly chunks: readonly CapturedChunk[];
}

/**
 * A TCP proxy on port 0 in front of a real MariaDB (`target`) that records both directions. `run(port)`
 * drives a real client through it; the recorded bytes are then cut at the end of the handshake
 * (the server's first OK after the greeting) so the rest can be fed to the observer.
 */
export async function captureMysql(run: (port: number) => Promise<void>, target: { host: string; port: number }): Promise<MysqlCapture> {
  const recorded: CapturedChunk[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(target.port, target.host);
    sockets.add(client).add(upstream);
    client.on("data", (data) => {
      recorded.push({ from: "client", bytes: new Uint8Array(data) });
      upstream.write(data);
    });
    upstream.on("data", (data) => {
      recorded.push({ from: "server", bytes: new Uint8Array(data) });
      client.write(data);
    });
    client.on("close", () => upstream.end());
    upstream.on("close", () => client.end());
    client.on("error", () => upstream.destroy());
    upstream.on("error", () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  try {
    await run((server.address() as net.AddressInfo).port);
    // Let the last bytes (COM_QUIT, the final reply) cross.
    await new Promise((resolve) => setTimeout(resolve, 100));
  } finally {
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => server.close(resolve));
  }
  return cutHandshake(recorded);
}

/** Drop the handshake: the server's packets up to its first OK after the greeting, the client's packets before its first command (sequence id 0). */
function cutHandshake(recorded: readonly CapturedChunk[]): MysqlCapture {
  const serverReader = new PacketReader();
  let serverCapabilities = 0;
  let clientCapabilities = 0;
  let serverDone = false;
  let serverPackets = 0;
  const out: CapturedChunk[] = [];
  for (const chunk of recorded) {
    if (chunk.from === "server") {
      if (serverDone) {
        out.push(chunk);
        continue;
      }
      // Packets of one chunk: find where the handshake's OK ends within it.
      serverReader.push(chunk.bytes);
      for (let packet = serverReader.read(); packet !== undefined; packet = serverReader.read()) {
        if (serverPackets++ === 0) {
          const p = packet.payload;
          const versionEnd = p.indexOf(0, 1);
          const low = p[versionEnd + 1 + 4 + 8 + 1]! | (p[versionEnd + 1 + 4 + 8 + 2]! << 8);
          const high = p[versionEnd + 1 + 4 + 8 + 6]! | (p[versionEnd + 1 + 4 + 8 + 7]! << 8);
          serverCapabilities = (low | (high << 16)) >>> 0;
        } else if (packet.payload[0] === 0x00) {
          serverDone = true;
          const rest = chunk.bytes.subarray(chunk.bytes.byteLength - serverReader.buffered);
          if (rest.byteLength > 0) out.push({ from: "server", bytes: rest });
          break;
        }
      }
      continue;
    }
    // The client speaks in the command phase only after the server's OK: everything before is handshake.
    if (serverDone) {
      out.push(chunk);
      continue;
    }
    if (clientCapabilities === 0) {
      const p = chunk.bytes.subarray(4);
      clientCapabilities = (p[0]! | (p[1]! << 8) | (p[2]! << 16) | (p[3]! << 24)) >>> 0;
    }
  }
  return { capabilities: (clientCapabilities & serverCapabilities) >>> 0, chunks: out };
}

export function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.byteLength;
  }
  return out;
}
