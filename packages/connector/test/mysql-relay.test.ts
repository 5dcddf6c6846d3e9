// A MySQL stream through the whole connector (a gateway on port 0 opening it over the tunnel, the
// real MariaDB on 127.0.0.1:3306 behind): the login's report in StreamOpened.params, then packets
// relayed byte for byte — a 20 MiB row (split into 16 MiB pieces by the server) arrives whole with
// its sequence ids, and a KILL stream ends a running statement.
import { once } from "node:events";
import type { TunnelStream } from "@gatehouse/proto";
import { Command, PacketReader, decodeDialResult, decodeKillResult, encodeDialRequest, encodePacket } from "@gatehouse/protocols/mysql";
import { afterEach, describe, expect, it } from "vitest";
import { startConnector } from "../src/index.js";
import { Cleanup, FakeGateway, LogCapture, testSettings } from "./helpers.js";

const MYSQL_PORT = Number(process.env.GATEHOUSE_TEST_MYSQL_PORT ?? 3306);
const cleanup = new Cleanup();
afterEach(() => cleanup.run());

async function setup() {
  const gateway = await FakeGateway.start("connector-token-mysql");
  cleanup.add(() => gateway.close());
  const logs = new LogCapture();
  const connector = startConnector(testSettings(gateway, `127.0.0.1:${MYSQL_PORT}`), { logger: logs.logger });
  cleanup.add(() => connector.stop());
  return gateway.link();
}

function mysqlOpen(sessionId: string, params: Record<string, string>) {
  return {
    sessionId,
    connection: "app",
    protocol: "mysql",
    target: { host: "127.0.0.1", port: MYSQL_PORT, options: { tls: "disable" } },
    credential: { user: "root", passwordRef: "" },
    params,
  };
}

/** The sequence id of every physical packet piece in a byte stream, without buffering the payloads. */
class PieceHeaders {
  readonly sequenceIds: number[] = [];
  private header = Buffer.alloc(0);
  private skip = 0;
  push(chunk: Buffer): void {
    let at = 0;
    while (at < chunk.length) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, chunk.length - at);
        this.skip -= n;
        at += n;
        continue;
      }
      const n = Math.min(4 - this.header.length, chunk.length - at);
      this.header = Buffer.concat([this.header, chunk.subarray(at, at + n)]);
      at += n;
      if (this.header.length === 4) {
        this.sequenceIds.push(this.header[3]!);
        this.skip = this.header.readUIntLE(0, 3);
        this.header = Buffer.alloc(0);
      }
    }
  }
}

/** Sends a COM_QUERY and collects the reply's physical pieces (header + payload) until `done` says the reply is complete. */
async function exchange(stream: TunnelStream, statement: string, done: (packets: Uint8Array[]) => boolean): Promise<{ packets: Uint8Array[]; sequenceIds: number[] }> {
  stream.write(encodePacket(0, Buffer.concat([Buffer.of(Command.COM_QUERY), Buffer.from(statement)])));
  const reader = new PacketReader({ maxPacketSize: 64 * 1024 * 1024 });
  const packets: Uint8Array[] = [];
  const headers = new PieceHeaders();
  const sequenceIds = headers.sequenceIds;
  for await (const chunk of stream) {
    headers.push(chunk as Buffer);
    reader.push(chunk as Buffer);
    for (let packet = reader.read(); packet !== undefined; packet = reader.read()) packets.push(packet.payload);
    if (done(packets)) return { packets, sequenceIds };
  }
  throw new Error("the stream ended before the reply did");
}

describe("a mysql stream through the connector", () => {
  it("reports the server's login and relays a 20 MiB row whole, sequence ids intact", async () => {
    const link = await setup();
    const { stream, opened } = await link.mux.open(mysqlOpen("sess-mysql-1", encodeDialRequest({})));
    stream.on("error", () => undefined); // the link closing at cleanup
    cleanup.add(() => stream.destroy());
    const result = decodeDialResult(opened.params);
    expect(result.serverVersion).toMatch(/MariaDB/);
    expect(result.connectionId).toBeGreaterThan(0);

    const size = 20 * 1024 * 1024;
    // With CLIENT_DEPRECATE_EOF (the default capabilities): column count, 1 definition, the row, OK (0xfe).
    const { packets, sequenceIds } = await exchange(stream, `SELECT REPEAT('y', ${size})`, (p) => p.length === 4);
    const row = packets[2]!;
    // A lenenc string: 20 MiB is over 2^24, so 0xfe + an 8-byte length, then the bytes.
    expect(row[0]).toBe(0xfe);
    expect(Buffer.from(row).readBigUInt64LE(1)).toBe(BigInt(size));
    expect(Buffer.from(row.subarray(9)).equals(Buffer.alloc(size, "y"))).toBe(true);
    expect(packets[3]![0]).toBe(0xfe);
    // 1 column count + 1 definition + the row in 2 pieces (0xffffff + the rest) + OK: ids 1..5.
    expect(sequenceIds).toEqual([1, 2, 3, 4, 5]);
  });

  it("a KILL stream through the tunnel ends the other stream's SELECT SLEEP(30)", async () => {
    const link = await setup();
    const { stream, opened } = await link.mux.open(mysqlOpen("sess-mysql-2", encodeDialRequest({})));
    stream.on("error", () => undefined); // the link closing at cleanup
    cleanup.add(() => stream.destroy());
    const { connectionId } = decodeDialResult(opened.params);
    const started = Date.now();
    const sleeping = exchange(stream, "SELECT SLEEP(30)", (p) => p.some((payload) => payload[0] === 0xff) || p.length >= 4);
    await new Promise((r) => setTimeout(r, 300));
    const killer = await link.mux.open(mysqlOpen("sess-mysql-2", encodeDialRequest({ kill: { connectionId } })));
    killer.stream.on("error", () => undefined);
    expect(decodeKillResult(killer.opened.params)).toEqual({ ok: true });
    killer.stream.resume();
    await once(killer.stream, "end");
    const { packets } = await sleeping;
    const err = packets.find((payload) => payload[0] === 0xff)!;
    expect(err).toBeDefined();
    expect(Buffer.from(err.subarray(9)).toString()).toMatch(/Query execution was interrupted/);
    expect(Date.now() - started).toBeLessThan(10_000);
  });
});
