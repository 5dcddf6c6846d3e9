import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import { randomUUID } from "node:crypto";
import { WebSocketServer, type WebSocket } from "ws";
import { Multiplexer, wsLink } from "@gatehouse/proto";
import type { ConnectorConfig, GatewayConfig } from "../config/schema.js";
import { matchesSha256 } from "../data-dir.js";
import type { Logger } from "../logger.js";
import type { Clock } from "../clock.js";
import { ConnectorRegistry, type ConnectorLink } from "./connector-registry.js";

export const TUNNEL_PATH = "/v1/tunnel";
/** A frame larger than this closes the link before it is buffered (the mux checks the same limit per frame). */
const MAX_WS_MESSAGE_BYTES = 4 * 1024 * 1024;

export interface TunnelServerOptions {
  config: () => GatewayConfig;
  registry: ConnectorRegistry;
  logger: Logger;
  clock: Clock;
  /** Set when this gateway is one worker of `gatehouse gateway --workers N` (cli/gateway-workers.ts). */
  worker?: WorkerSlot;
}

/** Which worker of how many this process is. */
export interface WorkerSlot {
  index: number;
  count: number;
}

/**
 * Headers of the tunnel upgrade. The connector sends its process's instance id; the gateway answers
 * which worker took the link and how many there are, so a connector keeps a link to each worker:
 * connections reach the workers round-robin, and a session is served by the worker that accepted
 * it, through a link that worker holds.
 */
export const INSTANCE_HEADER = "gatehouse-connector-instance";
export const WORKER_HEADER = "gatehouse-worker";
export const WORKERS_HEADER = "gatehouse-workers";

/**
 * Accepts connector WebSockets on /v1/tunnel. The connector proves itself
 * with a bearer token whose SHA-256 is in the config under its name.
 */
export class TunnelServer {
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: MAX_WS_MESSAGE_BYTES, perMessageDeflate: false });

  constructor(private readonly options: TunnelServerOptions) {
    const { index, count } = options.worker ?? { index: 0, count: 1 };
    this.wss.on("headers", (headers) => headers.push(`Gatehouse-Worker: ${index}`, `Gatehouse-Workers: ${count}`));
  }

  /** Handles an HTTP upgrade; returns false when the path is not ours. */
  handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): boolean {
    if (new URL(request.url ?? "/", "http://x").pathname !== TUNNEL_PATH) return false;
    const remoteAddress = request.socket.remoteAddress ?? "unknown";
    const name = headerValue(request, "gatehouse-connector");
    const token = /^Bearer (.+)$/i.exec(headerValue(request, "authorization") ?? "")?.[1];
    const entries = name ? this.connectorEntries(name) : [];
    const connector = token ? entries.find((entry) => matchesSha256(token, entry.tokenSha256)) : undefined;
    if (!connector) {
      const reason = !name ? "no Gatehouse-Connector header" : entries.length === 0 ? `unknown connector "${name}"` : "wrong token";
      this.options.logger.warn({ connector: name ?? null, remoteAddress, reason }, "connector refused at tunnel upgrade");
      // A name missing from `connectors` is a configuration mistake, not a bad secret: a 403 that says so,
      // so the connector's log does not send its operator hunting for a token problem. Names are not
      // secrets (the token is), so saying which name is unknown gives nothing away.
      if (name && entries.length === 0) refuse(socket, 403, "Forbidden", `unknown connector "${name}": not in the gateway's connectors`);
      else refuse(socket, 401, "Unauthorized", name ? "wrong connector token" : "no Gatehouse-Connector header");
      return true;
    }
    const instance = headerValue(request, INSTANCE_HEADER);
    if (this.options.worker && instance && this.options.registry.list().some((l) => l.instance === instance && !l.mux.draining)) {
      // Another worker is the one this connector still lacks: it dials again at once, and the
      // round-robin hands the next connection to the next worker.
      const { index, count } = this.options.worker;
      refuse(socket, 409, "Conflict", `worker ${index} of ${count} already holds a link from this connector process`, [`Gatehouse-Worker: ${index}`, `Gatehouse-Workers: ${count}`]);
      return true;
    }
    this.wss.handleUpgrade(request, socket, head, (ws) => this.accept(ws, connector.name, remoteAddress, instance));
    return true;
  }

  close(): void {
    for (const link of this.options.registry.list()) link.mux.close("gateway shutting down");
    this.wss.close();
  }

  /**
   * The config's entries for a name. A name may be listed more than once, each with its own token
   * hash: that is how a token is rotated without refusing anyone (old and new both valid meanwhile).
   */
  private connectorEntries(name: string): ConnectorConfig[] {
    return this.options.config().connectors.filter((c) => c.name === name);
  }

  private accept(ws: WebSocket, name: string, remoteAddress: string, instance: string | undefined): void {
    ws.binaryType = "nodebuffer";
    const { tunnel } = this.options.config();
    const mux = new Multiplexer(wsLink(ws), {
      role: "gateway",
      pingIntervalMs: tunnel.pingIntervalMs,
      deadAfterMs: tunnel.deadAfterMs,
      openTimeoutMs: tunnel.openTimeoutMs,
    });
    const link: ConnectorLink = { id: randomUUID(), name, remoteAddress, connectedUs: this.options.clock(), mux, ...(instance ? { instance } : {}) };
    const log = this.options.logger.child({ connector: name, connectorId: link.id });
    this.options.registry.add(link);
    log.info({ remoteAddress }, "connector connected");
    mux.on("drain", () => log.info("connector is draining; no new streams go to it"));
    mux.on("close", (reason: string) => {
      this.options.registry.remove(link);
      log.info({ reason }, "connector disconnected");
    });
  }
}

function refuse(socket: Duplex, status: number, statusText: string, message: string, extraHeaders: string[] = []): void {
  const body = Buffer.from(message, "utf8");
  const headers = ["Content-Type: text/plain; charset=utf-8", "Connection: close", `Content-Length: ${body.length}`, ...extraHeaders];
  socket.end(`HTTP/1.1 ${status} ${statusText}\r\n${headers.join("\r\n")}\r\n\r\n${message}`);
}

function headerValue(request: IncomingMessage, name: string): string | undefined {
  const value = request.headers[name];
  return Array.isArray(value) ? value[0] : value;
}
