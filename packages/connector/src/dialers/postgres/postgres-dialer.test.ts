// The Postgres dialer on its own, on port 0 where a fake server is needed and against the real
// Postgres on 127.0.0.1:5432 (trust auth) otherwise: the startup driven over the socket under one
// deadline (@gatehouse/protocols/drive), and the socket handed to the relay ready for queries.
import { once } from "node:events";
import { createServer, type AddressInfo, type Server, type Socket } from "node:net";
import type { Duplex } from "node:stream";
import { afterEach, describe, expect, it } from "vitest";
import { pino } from "pino";
import type { OpenStream } from "@gatehouse/proto";
import { decodeDialResult, encodeDialRequest } from "@gatehouse/protocols/postgres";
import { ConnectorError } from "../../errors.js";
import type { DialContext } from "../types.js";
import { dialPostgres } from "./postgres-dialer.js";

const POSTGRES_PORT = Number(process.env.GATEHOUSE_TEST_PG_PORT ?? 5432);

const servers: Server[] = [];
const sockets: Duplex[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

function openTo(port: number, tls = "disable", database = "postgres"): OpenStream {
  return {
    protocol: "postgres",
    connection: "app",
    target: { host: "127.0.0.1", port, options: { tls, database } },
    credential: { user: "postgres" },
    params: encodeDialRequest({ startup: { application_name: "dialer-test" } }),
  } as unknown as OpenStream;
}

function context(overrides: Partial<DialContext> = {}): DialContext {
  return { password: null, logger: pino({ level: "silent" }), signal: new AbortController().signal, timeoutMs: 5_000, ...overrides };
}

/** A fake server on port 0 that does `onSocket` with each connection. */
async function fakeServer(onSocket: (socket: Socket) => void): Promise<number> {
  const server = createServer(onSocket);
  servers.push(server);
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return (server.address() as AddressInfo).port;
}

/** A simple Query on the dialed socket, and the text of its first DataRow's first column. */
async function queryOne(socket: Duplex, sql: string): Promise<string> {
  const body = Buffer.from(`${sql}\0`);
  const header = Buffer.alloc(5);
  header.write("Q", 0);
  header.writeInt32BE(body.length + 4, 1);
  socket.write(Buffer.concat([header, body]));
  let buffered = Buffer.alloc(0);
  let value: string | undefined;
  for await (const chunk of socket) {
    buffered = Buffer.concat([buffered, chunk as Buffer]);
    while (buffered.length >= 5 && buffered.length >= 1 + buffered.readInt32BE(1)) {
      const type = String.fromCharCode(buffered[0]!);
      const message = buffered.subarray(5, 1 + buffered.readInt32BE(1));
      buffered = buffered.subarray(1 + buffered.readInt32BE(1));
      if (type === "D" && value === undefined) value = message.subarray(6, 6 + message.readInt32BE(2)).toString();
      if (type === "E") throw new Error(`server error: ${message.toString()}`);
      if (type === "Z") return value ?? "";
    }
  }
  throw new Error("the socket ended before ReadyForQuery");
}

describe("dialPostgres against the real Postgres", () => {
  it("logs in, reports the server's parameters and cancel key, and hands over a socket ready for queries", async () => {
    const dialed = await dialPostgres(openTo(POSTGRES_PORT), context());
    sockets.push(dialed.socket);
    const result = decodeDialResult(dialed.params ?? {});
    expect(result.parameters.server_version).toMatch(/^\d+/);
    expect(result.parameters.application_name).toBe("dialer-test");
    expect(result.backendKey?.processId).toBeGreaterThan(0);
    expect(result.tls).toBe(false);
    expect(await queryOne(dialed.socket, "select current_setting('application_name') || ':' || pg_backend_pid()")).toBe(`dialer-test:${result.backendKey!.processId}`);
  });

  it("tls prefer: a server without TLS answers 'N' and the startup goes on in plaintext", async () => {
    const dialed = await dialPostgres(openTo(POSTGRES_PORT, "prefer"), context());
    sockets.push(dialed.socket);
    expect(decodeDialResult(dialed.params ?? {}).tls).toBe(false);
    expect(await queryOne(dialed.socket, "select 41 + 1")).toBe("42");
  });

  it("a database the server does not have: its refusal, as TARGET_UNREACHABLE with the SQLSTATE", async () => {
    const error = await dialPostgres(openTo(POSTGRES_PORT, "disable", "gatehouse_no_such_db"), context()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConnectorError);
    expect(error).toMatchObject({ code: "TARGET_UNREACHABLE" });
    expect((error as Error).message).toMatch(/3D000/);
  });
});

describe("dialPostgres: one deadline for the startup", () => {
  it("a server that accepts and never answers is given up on at the deadline", async () => {
    const port = await fakeServer((socket) => socket.on("data", () => undefined));
    const started = Date.now();
    const error = await dialPostgres(openTo(port), context({ timeoutMs: 300 })).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "TARGET_UNREACHABLE" });
    expect((error as Error).message).toMatch(/did not finish the startup within 300 ms/);
    expect(Date.now() - started).toBeLessThan(3_000);
  });

  it("a server that trickles a byte at a time cannot stretch the deadline", async () => {
    // A NoticeResponse sent one byte every 50 ms: each byte is progress, but the deadline holds.
    const notice = Buffer.concat([Buffer.from("N"), Buffer.from([0, 0, 0x10, 0]), Buffer.alloc(0x1000 - 4, 0x41)]);
    const port = await fakeServer((socket) => {
      socket.on("error", () => undefined);
      let at = 0;
      const timer = setInterval(() => (at < notice.length && !socket.destroyed ? socket.write(notice.subarray(at, ++at)) : clearInterval(timer)), 50);
      socket.on("close", () => clearInterval(timer));
    });
    const error = await dialPostgres(openTo(port), context({ timeoutMs: 400 })).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "TARGET_UNREACHABLE" });
    expect((error as Error).message).toMatch(/within 400 ms/);
  });

  it("a server that closes during the startup: TARGET_UNREACHABLE saying so", async () => {
    const port = await fakeServer((socket) => socket.once("data", () => socket.end()));
    const error = await dialPostgres(openTo(port), context()).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "TARGET_UNREACHABLE" });
    expect((error as Error).message).toMatch(/closed the connection during startup/);
  });

  it("the link going away (the dial's signal) ends the startup at once and closes the server connection", async () => {
    let serverSide: Socket | undefined;
    const port = await fakeServer((socket) => {
      serverSide = socket;
      socket.on("error", () => undefined);
      socket.resume(); // flowing, so the client's close reaches it
    });
    const dial = new AbortController();
    const pending = dialPostgres(openTo(port), context({ signal: dial.signal, timeoutMs: 10_000 })).catch((e: unknown) => e);
    while (serverSide === undefined) await new Promise((r) => setTimeout(r, 10));
    const started = Date.now();
    dial.abort();
    const error = await pending;
    expect(error).toBeInstanceOf(ConnectorError);
    expect((error as Error).message).toMatch(/dial cancelled during the startup/);
    expect(Date.now() - started).toBeLessThan(1_000);
    if (!serverSide.closed) await once(serverSide, "close");
  });
});
