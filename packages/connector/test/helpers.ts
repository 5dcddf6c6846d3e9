import { EventEmitter, once } from "node:events";
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import { createServer, type AddressInfo, type Server, type Socket } from "node:net";
import { Writable } from "node:stream";
import { Multiplexer, wsLink, type MuxOptions, type TunnelStream } from "@gatehouse/proto";
import { pino, type Logger } from "pino";
import { WebSocketServer, type WebSocket } from "ws";
import { parseConnectorSettings, type ConnectorSettings } from "../src/index.js";

/** Everything a test started, closed in afterEach. */
export class Cleanup {
  readonly #tasks: (() => unknown)[] = [];
  add(task: () => unknown): void {
    this.#tasks.push(task);
  }
  async run(): Promise<void> {
    for (const task of this.#tasks.splice(0).reverse()) await task();
  }
}

export interface FakeGatewayOptions {
  mux?: Omit<MuxOptions, "role" | "onOpen">;
  /** Serve wss:// with this key and certificate. */
  tls?: { key: string; cert: string };
  /** Listen on this port (a gateway coming back where it was); default: any free one. */
  port?: number;
  /** Listen on this address. Default 127.0.0.1. */
  host?: string;
}

export interface GatewayLink {
  ws: WebSocket;
  mux: Multiplexer;
  headers: IncomingMessage["headers"];
  /** Every byte the connector sent on the link after the upgrade, WebSocket framing included. */
  received: Buffer[];
}

/**
 * A minimal gateway: an HTTP server whose /v1/tunnel upgrade checks the connector's bearer token itself
 * (401 otherwise) and drives the proto Multiplexer in the gateway role on each accepted link.
 */
export class FakeGateway extends EventEmitter<{ link: [GatewayLink]; refused: [status: number] }> {
  readonly links: GatewayLink[] = [];
  refusals = 0;
  port = 0;
  readonly #http: HttpServer;
  readonly #wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: 4 * 1024 * 1024 });
  readonly #scheme: "ws" | "wss";

  constructor(
    readonly token: string,
    options: FakeGatewayOptions = {},
  ) {
    super();
    const notFound = (_req: IncomingMessage, res: import("node:http").ServerResponse): void => void res.writeHead(404).end();
    this.#http = options.tls === undefined ? createHttpServer(notFound) : createHttpsServer(options.tls, notFound);
    this.#scheme = options.tls === undefined ? "ws" : "wss";
    const muxOptions = options.mux ?? {};
    this.#http.on("upgrade", (req: IncomingMessage, socket: Socket, head: Buffer) => {
      if (new URL(req.url ?? "/", "http://x").pathname !== "/v1/tunnel") {
        socket.end("HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
        return;
      }
      if (req.headers.authorization !== `Bearer ${this.token}` || !req.headers["gatehouse-connector"]) {
        this.refusals++;
        socket.end("HTTP/1.1 401 Unauthorized\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
        this.emit("refused", 401);
        return;
      }
      this.#wss.handleUpgrade(req, socket, head, (ws) => {
        const received: Buffer[] = head.length > 0 ? [Buffer.from(head)] : [];
        socket.on("data", (chunk: Buffer) => received.push(chunk));
        const link = { ws, mux: new Multiplexer(wsLink(ws), { ...muxOptions, role: "gateway" }), headers: req.headers, received };
        this.links.push(link);
        this.emit("link", link);
      });
    });
  }

  static async start(token: string, options?: FakeGatewayOptions): Promise<FakeGateway> {
    const gw = new FakeGateway(token, options);
    gw.#http.listen(options?.port ?? 0, options?.host ?? "127.0.0.1");
    await once(gw.#http, "listening");
    gw.port = (gw.#http.address() as AddressInfo).port;
    return gw;
  }

  get url(): string {
    return `${this.#scheme}://127.0.0.1:${this.port}`;
  }

  /** The link after `count` links have been seen (1 = the first). */
  async link(count = 1): Promise<GatewayLink> {
    while (this.links.length < count) await once(this, "link");
    return this.links[count - 1]!;
  }

  async close(): Promise<void> {
    for (const { mux } of this.links) mux.close("test over");
    for (const ws of this.#wss.clients) ws.terminate();
    this.#http.closeAllConnections();
    await new Promise((r) => this.#http.close(r));
  }
}

/** A TCP echo target that keeps half-open connections (it answers the client's FIN with its own). */
export class EchoServer {
  readonly sockets: Socket[] = [];
  port = 0;
  readonly #server: Server;

  private constructor(onSocket?: (s: Socket) => void) {
    this.#server = createServer({ allowHalfOpen: true }, (socket) => {
      this.sockets.push(socket);
      socket.on("error", () => {});
      if (onSocket) onSocket(socket);
      else socket.pipe(socket);
    });
  }

  static async start(onSocket?: (s: Socket) => void): Promise<EchoServer> {
    const echo = new EchoServer(onSocket);
    echo.#server.listen(0, "127.0.0.1");
    await once(echo.#server, "listening");
    echo.port = (echo.#server.address() as AddressInfo).port;
    return echo;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise((r) => this.#server.close(r));
  }
}

/** A pino logger whose JSON lines the test can read and wait for. */
export class LogCapture {
  readonly lines: Record<string, unknown>[] = [];
  readonly #events = new EventEmitter();
  readonly logger: Logger;

  constructor() {
    const sink = new Writable({
      write: (chunk: Buffer, _enc, cb) => {
        for (const line of chunk.toString("utf8").split("\n")) {
          if (line.trim() === "") continue;
          const parsed = JSON.parse(line) as Record<string, unknown>;
          this.lines.push(parsed);
          this.#events.emit("line", parsed);
        }
        cb();
      },
    });
    this.logger = pino({ level: "debug" }, sink);
  }

  find(predicate: (line: Record<string, unknown>) => boolean): Record<string, unknown>[] {
    return this.lines.filter(predicate);
  }

  /** Resolves once `count` lines match. */
  async waitFor(predicate: (line: Record<string, unknown>) => boolean, count = 1): Promise<Record<string, unknown>[]> {
    while (this.find(predicate).length < count) await once(this.#events, "line");
    return this.find(predicate);
  }
}

export function testSettings(
  gateway: FakeGateway,
  allow: string,
  extra: { argv?: string[]; env?: NodeJS.ProcessEnv; token?: string } = {},
): ConnectorSettings {
  const argv = ["--gateway", gateway.url, "--name", "dc1", "--token", extra.token ?? gateway.token, "--allow", allow];
  const settings = parseConnectorSettings([...argv, ...(extra.argv ?? [])], extra.env ?? {});
  // Quick reconnects keep the tests short; the policy itself is unit-tested in backoff.test.ts.
  return { ...settings, backoff: { baseMs: 20, capMs: 100, resetAfterMs: 60_000 } };
}

/** Reads a stream to its end. */
export async function readAll(stream: TunnelStream | Socket): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

export function tcpOpen(target: { host: string; port: number }, extra: { sessionId?: string; passwordRef?: string; protocol?: string } = {}) {
  return {
    sessionId: extra.sessionId ?? "session-1",
    connection: "echo",
    protocol: extra.protocol ?? "tcp",
    target: { host: target.host, port: target.port, options: {} },
    credential: { user: "", passwordRef: extra.passwordRef ?? "" },
    params: {},
  };
}

export function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** The masking key of each WebSocket frame in `bytes` (a client's frames, which RFC 6455 requires to be masked). */
export function frameMasks(bytes: Buffer): Buffer[] {
  const masks: Buffer[] = [];
  let pos = 0;
  while (pos + 2 <= bytes.length) {
    const masked = (bytes[pos + 1]! & 0x80) !== 0;
    let length = bytes[pos + 1]! & 0x7f;
    let header = 2;
    if (length === 126) {
      length = bytes.readUInt16BE(pos + 2);
      header = 4;
    } else if (length === 127) {
      length = Number(bytes.readBigUInt64BE(pos + 2));
      header = 10;
    }
    if (!masked) throw new Error(`unmasked frame at byte ${pos}`);
    masks.push(bytes.subarray(pos + header, pos + header + 4));
    pos += header + 4 + length;
  }
  return masks;
}

/** The sequence id of every physical packet piece in a byte stream, without buffering the payloads (MySQL framing: 3-byte length, sequence id). */
export class PieceHeaders {
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
