import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import { readFileSync } from "node:fs";
import { StoreError, type SshKeyRecord, type Store } from "@gatehouse/store";
import type { GatewayConfig } from "../config/schema.js";
import { isoFromUs, systemClock, type Clock } from "../clock.js";
import { matchesSha256 } from "../data-dir.js";
import type { Logger } from "../logger.js";
import type { ConnectorRegistry } from "../tunnel/connector-registry.js";
import { parseTtl, type AccessKeys } from "../identity/access-keys.js";
import { parseSshPublicKey, type SshKeys } from "../identity/ssh-keys.js";
import { GatewayError } from "../errors.js";
import type { TunnelServer } from "../tunnel/tunnel-server.js";
import { evidenceRoute, type EvidenceApi } from "./evidence-routes.js";
import { fleetRoute, isFleetPath, type FleetApi } from "./fleet-routes.js";
import { ApiError, readJson, sendError, sendJson } from "./json.js";
import { sendMetrics } from "../metrics/metrics-server.js";
import type { Readiness } from "./readiness.js";
import { chunkView, eventPageView, eventView, sessionPageView, sessionView } from "./views.js";
import { asciicast, jsonLines, STREAM_FORMATS, streamSummaries, type StreamFormat } from "./stream-export.js";
import { BadParameter, parseLimitParameter } from "./session-query.js";
import { eventSearch, sessionSearch } from "./search-query.js";
import type { Console } from "../console/console-routes.js";
import { scopeRequest } from "../console/record-scope.js";
import type { SessionRoutes } from "../console/session-routes.js";
import { ADMIN_VIEWER, type Viewer } from "../console/sign-ins.js";

export interface ApiOptions {
  config: () => GatewayConfig;
  store: Store;
  registry: ConnectorRegistry;
  tunnel: TunnelServer;
  adminTokenSha256: string;
  accessKeys: AccessKeys;
  sshKeys: SshKeys;
  /**
   * The SSH listener's host key and address, for `GET /api/v1/ssh/host-key` (`gatehouse
   * ssh-config`); left out, or undefined, when the gateway has no SSH listener.
   */
  sshHostKey?: () => SshHostKeyView | undefined;
  /**
   * The Kubernetes listener's address and certificate, for `GET /api/v1/kubernetes/endpoint`
   * (`gatehouse kubeconfig`); undefined when the gateway has no Kubernetes listener.
   */
  kubernetesEndpoint?: () => KubernetesEndpointView | undefined;
  logger: Logger;
  /** For /readyz, which anyone reaching the api listener may call: never a store round trip. */
  readiness: () => Readiness | Promise<Readiness>;
  /** For relative times ("since=24h"); the system clock when left out. */
  clock?: Clock;
  /** The checkpoint chain's head and retention signing (api/evidence-routes.ts). */
  evidence: EvidenceApi;
  /** Seal keys and identity settings shared by the gateways of a store (api/fleet-routes.ts); left out: no such routes. */
  fleet?: FleetApi;
  /**
   * GET /metrics (Prometheus text), without the admin token like /healthz: Prometheus scrapes it.
   * Left out when `listen.metrics` serves it on its own listener instead.
   */
  metrics?: () => Promise<{ contentType: string; text: string }>;
  /** The web console at /ui and its cookie sign-ins (console/console-routes.ts); left out: no console. */
  console?: Console;
  /** GET /api/v1/sessions/:id/verify and /live (console/session-routes.ts). */
  sessionRoutes?: SessionRoutes;
  /**
   * The connector links GET /api/v1/connectors lists; left out, this process's own. A worker of
   * `gateway --workers N` lists every worker's (cli/gateway-workers.ts).
   */
  connectorLinks?: () => Promise<ConnectorLinkView[]>;
}

/** One connector link as GET /api/v1/connectors shows it. */
export interface ConnectorLinkView {
  id: string;
  name: string;
  remoteAddress: string;
  connectedUs: number;
  draining: boolean;
  streams: number;
  /** The tunnel's last heartbeat round trip (ms); null before the first. */
  roundTripMs: number | null;
  /** Which gateway worker holds it (with --workers). */
  worker?: number;
}

/** This process's connector links. */
export function connectorLinkViews(registry: ConnectorRegistry, worker?: number): ConnectorLinkView[] {
  return registry.list().map((l) => ({
    id: l.id,
    name: l.name,
    remoteAddress: l.remoteAddress,
    connectedUs: l.connectedUs,
    draining: l.mux.draining,
    streams: l.mux.streamCount,
    roundTripMs: l.mux.roundTripMs ?? null,
    ...(worker === undefined ? {} : { worker }),
  }));
}

/** What `GET /api/v1/ssh/host-key` answers. */
export interface SshHostKeyView {
  /** The OpenSSH public key line: "ssh-ed25519 AAAA…" (no comment). */
  publicKey: string;
  /** "SHA256:…", as ssh prints it at first connection. */
  fingerprint: string;
  /** The listener's address as configured (`listen.ssh`), "host:port". */
  listen: string;
}

/** What `GET /api/v1/kubernetes/endpoint` answers. */
export interface KubernetesEndpointView {
  /** The listener's address as configured (`listen.kubernetes`), "host:port". */
  listen: string;
  /** The listener's certificate (PEM): a kubeconfig's certificate-authority-data when it is self-signed. */
  certificatePem: string;
  /** Where it came from: generated (self-signed) or configured. */
  source: string;
  /** The path prefix before a connection's name: kubeconfig's server is https://HOST:PORT/k8s/CONNECTION. */
  pathPrefix: string;
}

/**
 * The host-key answer for the SSH listener's public key (its `.pub` line, OpenSSH format) and its
 * `listen.ssh` address: the line without its comment, and its SHA256 fingerprint.
 */
export function sshHostKeyView(publicKeyLine: string, listen: string): SshHostKeyView {
  const parsed = parseSshPublicKey(publicKeyLine);
  return { publicKey: parsed.publicKey, fingerprint: parsed.fingerprint, listen };
}

/** The api listener: health, the read API over the record, and the connector tunnel upgrade. */
export function createApiServer(options: ApiOptions): Server {
  const tls = options.config().api.tls;
  const handler = (request: IncomingMessage, response: ServerResponse) => {
    route(request, response, options).catch((error: unknown) => {
      const apiError = error instanceof ApiError ? error : error instanceof BadParameter ? new ApiError("bad_request", error.message) : new ApiError("internal", "internal error");
      if (!(error instanceof ApiError) && !(error instanceof BadParameter)) options.logger.error({ err: error, url: request.url }, "api request failed");
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
  const method = request.method ?? "GET";
  if (url.pathname === "/healthz") return sendJson(response, 200, { status: "ok" });
  if (url.pathname === "/readyz") {
    const { ready, body } = await options.readiness();
    return sendJson(response, ready ? 200 : 503, body);
  }
  if (url.pathname === "/metrics" && options.metrics) return sendMetrics(response, await options.metrics());

  if (options.console && (url.pathname === "/ui" || url.pathname.startsWith("/ui/"))) return options.console.handle(request, response, url);

  if (!url.pathname.startsWith("/api/")) throw new ApiError("not_found", `no route for ${url.pathname}`);
  const viewer = authorize(request, options);
  if (viewer !== ADMIN_VIEWER) await scopeRequest(viewer, method, url, options.store);

  if (url.pathname === "/api/v1/keys" || url.pathname.startsWith("/api/v1/keys/")) return keysRoute(request, response, url, options);
  if (url.pathname === "/api/v1/ssh/host-key") {
    if (method !== "GET") throw new ApiError("method_not_allowed", `${method} is not supported on ${url.pathname}`);
    const hostKey = options.sshHostKey?.();
    if (!hostKey) throw new ApiError("not_found", "this gateway has no SSH listener (listen.ssh is not configured), so it has no SSH host key");
    return sendJson(response, 200, hostKey);
  }
  if (url.pathname === "/api/v1/kubernetes/endpoint") {
    if (method !== "GET") throw new ApiError("method_not_allowed", `${method} is not supported on ${url.pathname}`);
    const endpoint = options.kubernetesEndpoint?.();
    if (!endpoint) throw new ApiError("not_found", "this gateway has no Kubernetes listener (listen.kubernetes is not configured)");
    return sendJson(response, 200, endpoint);
  }
  if (options.fleet && isFleetPath(url.pathname)) return fleetRoute(request, response, url, options.store, options.fleet, options.clock ?? systemClock, readJson);
  if (url.pathname.startsWith("/api/v1/checkpoints") || url.pathname === "/api/v1/retention") {
    return evidenceRoute(request, response, url, options.store, options.evidence, readJson);
  }
  if (method !== "GET") throw new ApiError("method_not_allowed", `${method} is not supported on ${url.pathname}`);
  if (options.sessionRoutes && (await options.sessionRoutes.handle(request, response, url))) return;

  if (url.pathname === "/api/v1/evidence") {
    // The record exactly as stored, in session id order, for `gatehouse verify` to recompute.
    const limitText = url.searchParams.get("limit");
    const limit = limitText === null ? 200 : parseLimitParameter("limit", limitText, 1000);
    const after = url.searchParams.get("after") ?? undefined;
    const sessions = await storeCall(() => options.store.sessions.scan(after === undefined ? { limit } : { afterId: after, limit }));
    const ids = sessions.map((s) => s.id);
    const events = await storeCall(() => options.store.events.forSessions(ids));
    const chunks = await storeCall(() => options.store.streams.chunks(ids));
    return sendJson(response, 200, { sessions, events, chunks: chunks.map(chunkView) });
  }
  if (url.pathname === "/api/v1/sessions") {
    // Checked before the store is asked: a bad parameter is the caller's 400, not the store's 503.
    const filter = sessionSearch(url.searchParams, options.clock ?? systemClock);
    return sendJson(response, 200, sessionPageView(await storeCall(() => options.store.sessions.search(filter))));
  }
  if (url.pathname === "/api/v1/events") {
    const filter = eventSearch(url.searchParams, options.clock ?? systemClock);
    return sendJson(response, 200, eventPageView(await storeCall(() => options.store.events.search(filter))));
  }
  const match = /^\/api\/v1\/sessions\/([^/]+)$/.exec(url.pathname);
  if (match) {
    const found = await storeCall(() => options.store.sessions.get(decodeURIComponent(match[1]!)));
    if (!found) throw new ApiError("not_found", `no session ${match[1]}`);
    return sendJson(response, 200, { session: sessionView(found.session), events: found.events.map(eventView) });
  }
  const chunksMatch = /^\/api\/v1\/sessions\/([^/]+)\/chunks$/.exec(url.pathname);
  if (chunksMatch) {
    const id = decodeURIComponent(chunksMatch[1]!);
    const chunks = await storeCall(() => options.store.streams.chunks([id]));
    return sendJson(response, 200, { chunks: chunks.map(chunkView) });
  }
  const streamMatch = /^\/api\/v1\/sessions\/([^/]+)\/streams\/([^/]+)$/.exec(url.pathname);
  if (streamMatch) return streamRoute(response, url, options, decodeURIComponent(streamMatch[1]!), streamMatch[2]!);
  if (url.pathname === "/api/v1/connectors") {
    const connectors = options.connectorLinks ? await options.connectorLinks() : connectorLinkViews(options.registry);
    // The configured connections and how many tunnels of their connector are attached (the console's page).
    const connections = options.config().connections.map((c) => ({ name: c.name, protocol: c.protocol, connector: c.connector, attached: connectors.filter((l) => l.name === c.connector).length }));
    return sendJson(response, 200, { connectors, connections });
  }
  throw new ApiError("not_found", `no route for ${url.pathname}`);
}

/**
 * GET /api/v1/sessions/:id/streams/:streamId?format=asciicast|jsonl — one recorded byte stream
 * (`first`: the session's first stream). The chunks come as stored; `gatehouse verify` is what
 * says whether they are intact.
 */
async function streamRoute(response: ServerResponse, url: URL, options: ApiOptions, id: string, streamText: string): Promise<void> {
  const format = (url.searchParams.get("format") ?? "asciicast") as StreamFormat;
  if (!STREAM_FORMATS.includes(format)) throw new ApiError("bad_request", `format: expected ${STREAM_FORMATS.join(" or ")}, got "${format}"`);
  if (streamText !== "first" && !/^[1-9]\d{0,8}$/.test(streamText)) throw new ApiError("bad_request", `stream: expected a stream number or "first", got "${streamText}"`);
  const found = await storeCall(() => options.store.sessions.get(id));
  if (!found) throw new ApiError("not_found", `no session ${id}`);
  const summaries = streamSummaries(found.events);
  let streamId: number;
  if (streamText === "first") {
    const first = summaries[0]?.streamId ?? (await storeCall(() => options.store.streams.chunks([id])))[0]?.streamId;
    if (first === undefined) throw new ApiError("not_found", `session ${id} recorded no stream`);
    streamId = first;
  } else streamId = Number(streamText);
  const chunks = await storeCall(() => options.store.streams.chunks([id], streamId));
  const summary = summaries.find((s) => s.streamId === streamId);
  if (!summary && chunks.length === 0) throw new ApiError("not_found", `session ${id} has no stream ${streamId}`);
  const text = format === "asciicast" ? asciicast(found.session, summary, chunks) : jsonLines(found.session, summary, streamId, chunks);
  const type = format === "asciicast" ? "application/x-asciicast" : "application/jsonl";
  response.writeHead(200, { "Content-Type": `${type}; charset=utf-8`, "Content-Length": Buffer.byteLength(text), "Cache-Control": "no-store" });
  response.end(text);
}

// Access keys and SSH keys are one list to an operator: listed together (`sshKeys` beside `keys`),
// revoked by id whichever kind it is.
async function keysRoute(request: IncomingMessage, response: ServerResponse, url: URL, options: ApiOptions): Promise<void> {
  const method = request.method ?? "GET";
  if (url.pathname === "/api/v1/keys" && method === "GET") {
    const identity = url.searchParams.get("identity") ?? undefined;
    const keys = await storeCall(() => options.accessKeys.list(identity));
    const sshKeys = await storeCall(() => options.sshKeys.list(identity));
    return sendJson(response, 200, { keys: keys.map(keyView), sshKeys: sshKeys.map(sshKeyView) });
  }
  if (url.pathname === "/api/v1/keys/ssh" && method === "POST") {
    const body = await readJson(request);
    const identity = identityOf(body);
    const ttlUs = ttlOf(body);
    if (typeof body.publicKey !== "string") throw new ApiError("bad_request", 'publicKey: expected the OpenSSH public key line ("ssh-ed25519 AAAA… comment")');
    const publicKey = body.publicKey;
    let added;
    try {
      added = await options.sshKeys.add(identity, publicKey, ttlUs === undefined ? {} : { ttlUs });
    } catch (error) {
      if (error instanceof GatewayError && error.code === "SSH_KEY_INVALID") throw new ApiError("bad_request", `publicKey: ${error.message}`);
      if (error instanceof GatewayError && error.code === "SSH_KEY_TAKEN") throw new ApiError("conflict", error.message);
      if (error instanceof StoreError) throw new ApiError("store_unavailable", `the store could not answer: ${error.message}`);
      throw error;
    }
    options.logger.info({ keyId: added.id, identity, fingerprint: added.fingerprint }, "ssh key registered");
    return sendJson(response, 201, sshKeyView(added));
  }
  if (url.pathname === "/api/v1/keys" && method === "POST") {
    const body = await readJson(request);
    const identity = identityOf(body);
    const ttlUs = ttlOf(body);
    const created = await storeCall(() => options.accessKeys.create(identity, ttlUs === undefined ? {} : { ttlUs }));
    options.logger.info({ keyId: created.id, identity }, "access key created");
    return sendJson(response, 201, { ...keyView({ ...created, revokedUs: null, lastUsedUs: null }), key: created.key });
  }
  const match = /^\/api\/v1\/keys\/([^/]+)$/.exec(url.pathname);
  if (match && method === "DELETE") {
    const id = decodeURIComponent(match[1]!);
    const revoked = (await storeCall(() => options.accessKeys.revoke(id))) || (await storeCall(() => options.sshKeys.revoke(id)));
    if (!revoked) throw new ApiError("not_found", `no live key ${id}`);
    options.logger.info({ keyId: id }, "key revoked");
    return sendJson(response, 200, { id, revoked: true });
  }
  throw new ApiError("method_not_allowed", `${method} is not supported on ${url.pathname}`);
}

function identityOf(body: Record<string, unknown>): string {
  const identity = typeof body.identity === "string" ? body.identity : "";
  if (!/^[A-Za-z0-9][A-Za-z0-9._@-]{0,62}$/.test(identity)) throw new ApiError("bad_request", "identity: expected a name of letters, digits, '.', '_', '@' or '-'");
  return identity;
}

function ttlOf(body: Record<string, unknown>): number | undefined {
  if (body.expires === undefined || body.expires === null) return undefined;
  const ttlUs = typeof body.expires === "string" ? parseTtl(body.expires) : undefined;
  if (ttlUs === undefined) throw new ApiError("bad_request", 'expires: expected a duration such as "30d", "12h", "90m"');
  return ttlUs;
}

function sshKeyView(key: SshKeyRecord) {
  return {
    ...keyView(key),
    algorithm: key.algorithm,
    fingerprint: key.fingerprint,
    comment: key.comment,
    publicKey: key.publicKey,
  };
}

function keyView(key: { id: string; identity: string; createdUs: number; expiresUs: number | null; revokedUs: number | null; lastUsedUs: number | null }) {
  return {
    id: key.id,
    identity: key.identity,
    createdAt: isoFromUs(key.createdUs),
    expiresAt: key.expiresUs === null ? null : isoFromUs(key.expiresUs),
    revokedAt: key.revokedUs === null ? null : isoFromUs(key.revokedUs),
    lastUsedAt: key.lastUsedUs === null ? null : isoFromUs(key.lastUsedUs),
  };
}


/** The admin token (Authorization: Bearer), else a console sign-in's cookie (console/sign-ins.ts). */
function authorize(request: IncomingMessage, options: ApiOptions): Viewer {
  const token = /^Bearer (.+)$/i.exec(request.headers.authorization ?? "")?.[1];
  if (token) {
    if (!matchesSha256(token, options.adminTokenSha256)) throw new ApiError("unauthorized", "the admin token is not valid");
    return ADMIN_VIEWER;
  }
  const viewer = options.console?.viewerOf(request);
  if (viewer) return viewer;
  throw new ApiError("unauthorized", "an admin token is required (Authorization: Bearer …), or a console sign-in");
}

async function storeCall<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (cause) {
    throw new ApiError("store_unavailable", `the store could not answer: ${(cause as Error).message}`);
  }
}
