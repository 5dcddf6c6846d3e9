import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Socket } from "node:net";
import type { Duplex } from "node:stream";
import { TLSSocket } from "node:tls";
import { requestInfo } from "@gatehouse/protocols/kubernetes";
import type { Identity } from "@gatehouse/store";
import type { HostPort } from "../../config/address.js";
import type { GatewayConfig } from "../../config/schema.js";
import type { CredentialChecker } from "../../identity/credential-checker.js";
import type { Logger } from "../../logger.js";
import { cutClaim, type RefusalRecords } from "../../sessions/refusal-records.js";
import type { SessionBroker } from "../../sessions/session-broker.js";
import type { TlsMaterial } from "../../tls-material.js";
import type { AdmissionLimits } from "../admission-limits.js";
import type { AuthThrottle } from "../../identity/auth-throttle.js";
import { ListenerSteps, isCredentialsUnavailable, isRecordingUnavailable, recordingRefusalReason, type ListenerStepsDeps } from "../listener-steps.js";
import type { ListenerState } from "../server-watch.js";
import { serveApiRequest } from "./api-request.js";
import { KubeClientConnection, openFailureRefusal, type KubeSession, type SessionOpening } from "./kube-client-connection.js";
import { refusal, replyRefusal, replyRefusalOnSocket, type Refusal } from "./kube-replies.js";
import { serveUpgrade } from "./upgrade-request.js";

export interface KubernetesListenerDeps extends ListenerStepsDeps {
  config: () => GatewayConfig;
  broker: SessionBroker;
  credentials: CredentialChecker;
  tls: TlsMaterial;
}

/** Where a connection's API is served: `https://GATEWAY/k8s/CONNECTION` is kubeconfig's `server`. */
export const KUBE_PATH_PREFIX = "/k8s/";

/** How long an idle kept-alive client connection stays open between requests (ms). */
const KEEP_ALIVE_MS = 60_000;

type Authenticated = { ok: true; identity: Identity; keyId?: string } | { ok: false; refused: Refusal };

/**
 * The Kubernetes API endpoint: HTTPS (HTTP/1.1) with the gateway's certificate. A request names
 * its connection by path (`/k8s/CONNECTION/api/v1/...`), proves its identity with a bearer
 * credential (an access key as `IDENTITY:KEY`, or an OIDC access token), and is relayed to the
 * cluster through the connection's connector, one tunnel stream per request
 * (protocols/src/kubernetes/relay-contract.ts), recorded as one event each. Upgrades (exec,
 * attach, port-forward) are relayed as raw bytes after the 101; an exec over WebSocket is also
 * recorded as a byte stream. One session per client connection and identity: one kubectl run.
 */
export class KubernetesListener {
  readonly limits: AdmissionLimits;
  readonly throttle: AuthThrottle;
  readonly refusals: RefusalRecords;
  private readonly steps: ListenerSteps;
  /** Node's HTTP/1.1 server, never listening itself: each accepted socket is handed to it once its TLS is up. */
  private readonly http: Server;
  private readonly clients = new WeakMap<Duplex, KubeClientConnection>();

  constructor(private readonly deps: KubernetesListenerDeps) {
    this.steps = new ListenerSteps(deps, "kubernetes", (socket) => this.serve(socket));
    ({ limits: this.limits, throttle: this.throttle, refusals: this.refusals } = this.steps);
    // No request timeout: a watch or `logs -f` is a request that lasts as long as the client wants.
    this.http = createServer({ requestTimeout: 0, keepAliveTimeout: KEEP_ALIVE_MS, maxHeaderSize: 64 * 1024 });
    this.http.timeout = 0;
    this.http.on("request", (req: IncomingMessage, res: ServerResponse) => this.onRequest(req, res));
    this.http.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => this.onUpgrade(req, socket, head));
    this.http.on("clientError", (_error: Error, socket: Duplex) => {
      if (socket.writable) socket.end("HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
      else socket.destroy();
    });
  }

  listen(at: HostPort): Promise<HostPort> {
    return this.steps.listen(at);
  }

  /** Whether it takes clients (for /readyz). */
  get state(): ListenerState {
    return this.steps.state;
  }

  close(): Promise<void> {
    return this.steps.close();
  }

  /** Graceful stop: no new clients; connections still open when `grace` aborts are closed (HTTP has no goodbye of its own). */
  drain(grace: AbortSignal): Promise<void> {
    return this.steps.drain(grace);
  }

  /** One client socket: TLS, then Node's HTTP server reads its requests; when it closes, its sessions end. */
  private async serve(raw: Socket): Promise<void> {
    raw.on("error", () => undefined);
    const clientAddress = raw.remoteAddress ?? null;
    const log = this.deps.logger.child({ protocol: "kubernetes", clientAddress });
    const handshake = this.limits.enterHandshake(clientAddress);
    if (!handshake.ok) {
      this.steps.logLimit(handshake, log, "connection closed");
      raw.destroy();
      return;
    }
    const closed = new Promise<void>((resolve) => raw.once("close", () => resolve()));
    const tls = new TLSSocket(raw, { isServer: true, secureContext: this.deps.tls.context, ALPNProtocols: ["http/1.1"] });
    tls.on("error", () => undefined);
    // The TLS handshake and the first request's head have one deadline.
    const deadline = setTimeout(() => tls.destroy(), this.deps.config().limits.handshakeTimeoutMs);
    tls.once("secure", () => handshake.release());
    const client = new KubeClientConnection(clientAddress, log);
    this.clients.set(tls, client);
    client.firstRequest = () => clearTimeout(deadline);
    const forget = this.steps.openSessions.add(() => tls.destroy());
    this.http.emit("connection", tls);
    try {
      await closed;
    } finally {
      clearTimeout(deadline);
      handshake.release();
      forget();
    }
    await client.end((kube) => this.endSession(kube));
  }

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    const client = req.socket ? this.clients.get(req.socket) : undefined;
    if (!client) {
      res.destroy();
      return;
    }
    client.firstRequest();
    void client.track(this.handle(client, req, { res })).catch((error: unknown) => {
      client.log.error({ err: error }, "kubernetes request failed");
      replyRefusal(res, refusal("InternalError", "internal gateway error"));
    });
  }

  private onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on("error", () => undefined);
    const client = this.clients.get(socket);
    if (!client) {
      socket.destroy();
      return;
    }
    client.firstRequest();
    void client.track(this.handle(client, req, { upgraded: { socket, head } })).catch((error: unknown) => {
      client.log.error({ err: error }, "kubernetes upgrade failed");
      replyRefusalOnSocket(socket, refusal("InternalError", "internal gateway error"));
    });
  }

  /** One request: who asks, for which connection, its session; then relayed (api-request.ts, upgrade-request.ts). */
  private async handle(client: KubeClientConnection, req: IncomingMessage, reply: { res: ServerResponse } | { upgraded: { socket: Duplex; head: Buffer } }): Promise<void> {
    const route = parseRoute(req.url ?? "/");
    const info = route ? requestInfo({ method: req.method ?? "GET", url: route.path }) : undefined;
    const refuse = (refused: Refusal) => ("upgraded" in reply ? replyRefusalOnSocket(reply.upgraded.socket, refused) : replyRefusal(reply.res, refused, !info?.isResourceRequest));
    const auth = await this.authenticate(client, req, route?.connection ?? "");
    if (!auth.ok) return refuse(auth.refused);
    const { identity } = auth;
    const userAgent = cutClaim(String(req.headers["user-agent"] ?? ""), 64);
    const connection = route ? this.deps.config().connections.find((c) => c.name === route.connection && c.protocol === "kubernetes") : undefined;
    if (!route || !connection || !info) {
      const message = route
        ? `gatehouse: unknown connection "${cutClaim(route.connection, 64)}" (no kubernetes connection of that name)`
        : `gatehouse: the gateway serves Kubernetes connections at ${KUBE_PATH_PREFIX}CONNECTION (gatehouse kubeconfig --connection NAME writes a kubeconfig)`;
      await this.steps.recordAuthenticated({
        connection: route?.connection ?? "",
        protocol: "kubernetes",
        identity,
        clientAddress: client.clientAddress,
        clientApplication: userAgent,
        kind: "denied",
        endReason: "unknown_connection",
        details: { reason: "unknown_connection", message, path: cutClaim(req.url ?? "", 256) },
      });
      return refuse(refusal("NotFound", message));
    }
    const opening = await client.session(identity, connection.name, () => this.openSession(client, identity, auth.keyId, connection.name, userAgent));
    if (!opening.ok) return refuse(opening.refused);
    if ("upgraded" in reply) await serveUpgrade(this.deps, opening.value, req, reply.upgraded.socket, reply.upgraded.head, route.path, info);
    else await serveApiRequest(this.deps, opening.value, req, reply.res, route.path, info);
  }

  /**
   * The request's bearer credential: checked once per client connection (again when it changes,
   * or its token expires), with the same throttle and refusal records as every listener.
   */
  private async authenticate(client: KubeClientConnection, req: IncomingMessage, connection: string): Promise<Authenticated> {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? "");
    const unauthorized = (message: string) => ({ ok: false as const, refused: refusal("Unauthorized", `gatehouse: ${message}`) });
    const record = (name: string, details: Record<string, unknown>) =>
      void this.refusals
        .record({
          connection,
          protocol: "kubernetes",
          identity: { name, method: null },
          clientAddress: client.clientAddress,
          clientApplication: cutClaim(String(req.headers["user-agent"] ?? ""), 64),
          kind: "auth_failed",
          endReason: "auth_failed",
          details,
        })
        .catch(() => undefined);
    if (!match) {
      record("", { reason: "no_credentials", message: "no bearer token" });
      return unauthorized("no credentials: send an access key (IDENTITY:KEY) or an OIDC access token as the bearer token (gatehouse kubeconfig writes a kubeconfig that does)");
    }
    const credential = match[1]!;
    const cached = client.lastCredential;
    const nowUs = this.deps.clock();
    if (cached && cached.credential === credential && (cached.check.expiresUs === undefined || cached.check.expiresUs > nowUs)) {
      return { ok: true, identity: cached.check.identity, ...(cached.check.keyId ? { keyId: cached.check.keyId } : {}) };
    }
    const claimed = credential.includes(":") ? credential.slice(0, credential.indexOf(":")) : "(token)";
    const throttled = this.throttle.verdict(client.clientAddress, claimed);
    if (throttled.locked) {
      record(cutClaim(claimed, 64), { reason: "locked_out", by: throttled.by, retryAfterMs: throttled.retryAfterMs });
      return unauthorized("too many failed attempts; try again later");
    }
    if (throttled.delayMs > 0) await this.steps.sleep(throttled.delayMs, AbortSignal.timeout(throttled.delayMs + 60_000));
    let check;
    try {
      check = await this.deps.credentials.checkBearer(credential);
    } catch (error) {
      if (isCredentialsUnavailable(error)) {
        client.log.warn({ err: error.message }, "credentials cannot be checked: the store is unreachable");
        return { ok: false, refused: refusal("ServiceUnavailable", "gatehouse: credentials cannot be checked right now (the gateway's store is unreachable)") };
      }
      throw error;
    }
    if (!check.ok) {
      if (this.throttle.failed(client.clientAddress, claimed)) client.log.warn({ identity: cutClaim(claimed, 64), lockouts: this.throttle.counters.lockouts }, "repeated authentication failures; locking out");
      record(cutClaim(check.name ?? "", 64), { reason: check.reason, method: check.method, ...check.details });
      return unauthorized(`invalid credentials${check.name ? ` for identity "${cutClaim(check.name, 64)}"` : ""} (${check.reason})`);
    }
    this.throttle.succeeded(client.clientAddress, claimed);
    client.lastCredential = { credential, check };
    return { ok: true, identity: check.identity, ...(check.keyId ? { keyId: check.keyId } : {}) };
  }

  /** Limits, policy, the recorded session and its main stream (the broker records every refusal). */
  private async openSession(client: KubeClientConnection, identity: Identity, keyId: string | undefined, name: string, userAgent: string): Promise<SessionOpening> {
    const connection = this.deps.config().connections.find((c) => c.name === name && c.protocol === "kubernetes");
    if (!connection) return { ok: false, refused: refusal("NotFound", `gatehouse: unknown connection "${name}"`) };
    const limit = this.limits.openSession(identity.name);
    if (!limit.ok) {
      this.steps.logLimit(limit, client.log, "session refused", { identity: identity.name });
      await this.steps.recordAuthenticated({ connection: name, protocol: "kubernetes", identity, clientAddress: client.clientAddress, clientApplication: userAgent, kind: "denied", endReason: "too_many_sessions", details: { reason: "too_many_sessions", max: limit.max } });
      return { ok: false, refused: refusal("TooManyRequests", `gatehouse: too many open sessions for identity "${identity.name}" (at most ${limit.max})`) };
    }
    try {
      const result = await this.deps.broker.open({
        connection,
        identity,
        clientAddress: client.clientAddress,
        clientApplication: userAgent,
        connectDetails: { method: identity.method, ...(keyId ? { keyId } : {}) },
      });
      if (!result.ok) {
        limit.release();
        return { ok: false, refused: openFailureRefusal(result.failure) };
      }
      const kube: KubeSession = { session: result.session, connection, identity, main: result.stream, bytes: { up: 0, down: 0 }, release: limit.release };
      // The main stream carries no bytes: its failure is the connector's link going away.
      result.stream.resume();
      result.stream.on("error", (error: Error) => (kube.error ??= error));
      return { ok: true, value: kube };
    } catch (error) {
      limit.release();
      if (isRecordingUnavailable(error)) {
        client.log.warn({ reason: error.recording }, "session refused: recording unavailable");
        return { ok: false, refused: refusal("ServiceUnavailable", `gatehouse: the gateway cannot record this session (${recordingRefusalReason(error).why}); nothing was sent to the cluster`) };
      }
      throw error;
    }
  }

  private async endSession(kube: KubeSession): Promise<void> {
    kube.main.destroy();
    kube.release();
    await kube.session.endRelay({ bytesUp: kube.bytes.up, bytesDown: kube.bytes.down, endedBy: "client", error: kube.error, shutdown: this.steps.openSessions.shuttingDown });
  }
}

/** `/k8s/CONNECTION/rest?query` → the connection's name and what the API server is asked (`/rest?query`). */
export function parseRoute(url: string): { connection: string; path: string } | undefined {
  if (!url.startsWith(KUBE_PATH_PREFIX)) return undefined;
  const after = url.slice(KUBE_PATH_PREFIX.length);
  const end = after.search(/[/?]/);
  const encoded = end < 0 ? after : after.slice(0, end);
  let connection: string;
  try {
    connection = decodeURIComponent(encoded);
  } catch {
    return undefined;
  }
  if (connection === "") return undefined;
  const rest = end < 0 ? "" : after.slice(end);
  return { connection, path: rest.startsWith("/") ? rest : `/${rest}` };
}
