import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import { readFileSync } from "node:fs";
import type { SessionFilter, Store } from "@gatehouse/store";
import type { GatewayConfig } from "../config/schema.js";
import { usFromText } from "../clock.js";
import { matchesSha256 } from "../data-dir.js";
import type { Logger } from "../logger.js";
import type { ConnectorRegistry } from "../tunnel/connector-registry.js";
import type { TunnelServer } from "../tunnel/tunnel-server.js";
import { ApiError, sendError, sendJson } from "./json.js";
import { eventView, sessionView } from "./views.js";

export interface ApiOptions {
  config: () => GatewayConfig;
  store: Store;
  registry: ConnectorRegistry;
  tunnel: TunnelServer;
  adminTokenSha256: string;
  logger: Logger;
}

/** The api listener: health, the read API over the record, and the connector tunnel upgrade. */
export function createApiServer(options: ApiOptions): Server {
  const tls = options.config().api.tls;
  const handler = (request: IncomingMessage, response: ServerResponse) => {
    route(request, response, options).catch((error: unknown) => {
      const apiError = error instanceof ApiError ? error : new ApiError("internal", "internal error");
      if (!(error instanceof ApiError)) options.logger.error({ err: error, url: request.url }, "api request failed");
      if (!response.headersSent) sendError(response, apiError);
      else response.destroy();
    });
  };
  const server = tls
    ? createHttpsServer({ cert: readFileSync(tls.cert), key: readFileSync(tls.key) }, handler)
    : createHttpServer(handler);
  server.on("upgrade", (request, socket, head) => {
    if (!options.tunnel.handleUpgrade(request, socket, head)) {
      socket.end("HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
    }
  });
  return server;
}

async function route(request: IncomingMessage, response: ServerResponse, options: ApiOptions): Promise<void> {
  const url = new URL(request.url ?? "/", "http://gateway");
  if (request.method !== "GET") throw new ApiError("method_not_allowed", `${request.method} is not supported`);

  if (url.pathname === "/healthz") return sendJson(response, 200, { status: "ok" });
  if (url.pathname === "/readyz") return readyz(response, options);

  if (!url.pathname.startsWith("/api/")) throw new ApiError("not_found", `no route for ${url.pathname}`);
  authorize(request, options.adminTokenSha256);

  if (url.pathname === "/api/v1/sessions") {
    const sessions = await storeCall(() => options.store.sessions.list(sessionFilter(url.searchParams)));
    return sendJson(response, 200, { sessions: sessions.map(sessionView) });
  }
  const match = /^\/api\/v1\/sessions\/([^/]+)$/.exec(url.pathname);
  if (match) {
    const found = await storeCall(() => options.store.sessions.get(decodeURIComponent(match[1]!)));
    if (!found) throw new ApiError("not_found", `no session ${match[1]}`);
    return sendJson(response, 200, { session: sessionView(found.session), events: found.events.map(eventView) });
  }
  if (url.pathname === "/api/v1/connectors") {
    const connectors = options.registry.list().map((l) => ({
      id: l.id,
      name: l.name,
      remoteAddress: l.remoteAddress,
      connectedUs: l.connectedUs,
      draining: l.mux.draining,
      streams: l.mux.streamCount,
    }));
    return sendJson(response, 200, { connectors });
  }
  throw new ApiError("not_found", `no route for ${url.pathname}`);
}

async function readyz(response: ServerResponse, options: ApiOptions): Promise<void> {
  let store = "ok";
  try {
    await options.store.ping();
  } catch (error) {
    store = `unreachable: ${(error as Error).message}`;
  }
  const ready = store === "ok";
  sendJson(response, ready ? 200 : 503, { status: ready ? "ready" : "not_ready", checks: { store, config: "loaded" } });
}

function authorize(request: IncomingMessage, adminTokenSha256: string): void {
  const token = /^Bearer (.+)$/i.exec(request.headers.authorization ?? "")?.[1];
  if (!token) throw new ApiError("unauthorized", "an admin token is required (Authorization: Bearer …)");
  if (!matchesSha256(token, adminTokenSha256)) throw new ApiError("unauthorized", "the admin token is not valid");
}

function sessionFilter(params: URLSearchParams): SessionFilter {
  const filter: SessionFilter = {};
  const identity = params.get("identity");
  const connection = params.get("connection");
  if (identity) filter.identity = identity;
  if (connection) filter.connection = connection;
  for (const key of ["since", "until"] as const) {
    const text = params.get(key);
    if (text === null) continue;
    const us = usFromText(text);
    if (us === undefined) throw new ApiError("bad_request", `${key}: expected an ISO 8601 time or microseconds, got "${text}"`);
    filter[key === "since" ? "sinceUs" : "untilUs"] = us;
  }
  const limit = params.get("limit");
  if (limit !== null) {
    const n = Number(limit);
    if (!Number.isInteger(n) || n < 1 || n > 1000) throw new ApiError("bad_request", `limit: expected an integer from 1 to 1000, got "${limit}"`);
    filter.limit = n;
  }
  return filter;
}

async function storeCall<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (cause) {
    throw new ApiError("store_unavailable", `the store could not answer: ${(cause as Error).message}`);
  }
}
