import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import type { Store, StoreNotifications } from "@gatehouse/store";
import type { Logger } from "../logger.js";

// Cancels across gateways that share one store (issue 15; docs/operations.md "Several gateways").
//
// A client cancels on a new TCP connection (Postgres CancelRequest; the mariadb client's Ctrl-C
// logs in again and sends KILL QUERY), and behind a load balancer that connection may reach
// another gateway than the session's. Each gateway publishes its sessions' client-facing keys in
// the store's `cancel_routes` with its own id (migration 008); a gateway given a key it does not
// know looks it up there and hands the cancel to the owner with a NOTIFY on one channel. Every
// gateway LISTENs on it and acts only on messages addressed to it. The owner checks the request
// against its own sessions again and cancels through its own tunnel, exactly as for a cancel that
// reached it directly, and records it on the session.
//
// What a cancel proves is unchanged: a Postgres cancel must bring the key's secret (the store holds
// only a hash of process id and secret, and a forwarded cancel names that hash); a MySQL KILL comes
// from an authenticated session and is honoured only for a session of the same identity. Anyone
// who can NOTIFY on the store (its owner, the gateway role) could ask a gateway to cancel a query
// whose route they can read: the store is trusted with more than that already.

/** The channel every gateway LISTENs on. */
export const PEER_CHANNEL = "gatehouse_cancel";
/** How long a published route lives unless its gateway renews it (s): a crashed gateway's routes expire. */
export const ROUTE_TTL_SECONDS = 90;
/** How often a gateway renews its routes (ms). */
export const ROUTE_RENEW_MS = 30_000;
/** How long closing may take before the routes are left to expire (ms). */
const CLOSE_TIMEOUT_MS = 2_000;
/** How long a forwarded KILL waits for the owning gateway's answer (ms). */
export const KILL_ANSWER_TIMEOUT_MS = 5_000;

/** What the owner answers to a forwarded KILL (the requester sends it to its client as OK or ERR). */
export type KillAnswer =
  | { readonly ok: true; readonly targetSession: string }
  | { readonly ok: false; readonly errno: number; readonly sqlState: string; readonly message: string; readonly reason: string; readonly targetSession?: string };

/** A KILL a session on another gateway asked for. */
export interface ForwardedKill {
  readonly threadId: number;
  /** The identity of the session that sent the KILL. */
  readonly identity: string;
  /** KILL QUERY (true) or KILL CONNECTION. */
  readonly query: boolean;
  /** The gateway it came from. */
  readonly from: string;
}

/** How a forwarded KILL went, as the requesting gateway sees it. */
export type KillForwarding =
  | { readonly found: false }
  | { readonly found: true; readonly gateway: string; readonly sessionId: string; readonly answer: KillAnswer | { readonly ok: false; readonly reason: "not_owner" | "no_answer" } };

type PeerMessage =
  | { type: "pg_cancel"; to: string; from: string; routeKey: string }
  | { type: "mysql_kill"; to: string; from: string; requestId: string; threadId: number; identity: string; query: boolean }
  | { type: "mysql_kill_answer"; to: string; from: string; requestId: string; answer: KillAnswer };

/**
 * The gateway's side of cross-gateway cancels: publishes and removes its routes, renews them,
 * forwards cancels it cannot serve, and serves those forwarded to it. Created with `start`; only
 * on a Postgres store (an embedded store has one gateway).
 */
export class PeerCancels {
  readonly #store: Store;
  readonly #notifications: StoreNotifications;
  readonly #logger: Logger;
  /** Route keys published (or being published) by this gateway, with the write in flight. */
  readonly #routes = new Map<string, Promise<boolean>>();
  /** Removals that failed (store down), retried at each renewal so no route outlives its session. */
  readonly #unremoved = new Set<string>();
  readonly #waiting = new Map<string, (answer: KillAnswer) => void>();
  #onPostgres: ((routeKey: string, from: string) => Promise<void>) | undefined;
  #onMysql: ((kill: ForwardedKill) => Promise<KillAnswer>) | undefined;
  #timer: NodeJS.Timeout | undefined;
  #unlisten: (() => Promise<void>) | undefined;

  private constructor(
    store: Store,
    notifications: StoreNotifications,
    readonly gatewayId: string,
    logger: Logger,
  ) {
    this.#store = store;
    this.#notifications = notifications;
    this.#logger = logger;
  }

  /** Listens for cancels addressed to this gateway and starts renewing its routes; undefined on an embedded store. */
  static async start(store: Store, logger: Logger, gatewayId: string = newGatewayId()): Promise<PeerCancels | undefined> {
    if (store.notifications === null) return undefined;
    const peers = new PeerCancels(store, store.notifications, gatewayId, logger.child({ component: "peer-cancels", gatewayId }));
    let listening;
    try {
      listening = await store.notifications.listen(PEER_CHANNEL, (payload) => peers.#onMessage(payload));
    } catch (err) {
      logger.warn({ err }, "cannot listen for other gateways' cancels on the store; cancels reach only this gateway's sessions");
      return undefined;
    }
    peers.#unlisten = () => listening.unlisten();
    peers.#timer = setInterval(() => void peers.#renew(), ROUTE_RENEW_MS);
    peers.#timer.unref();
    return peers;
  }

  /** Serves Postgres cancels other gateways forward here: `routeKey` names one of this gateway's client keys. */
  onPostgresCancel(handler: (routeKey: string, from: string) => Promise<void>): void {
    this.#onPostgres = handler;
  }

  /** Serves KILLs other gateways forward here. */
  onMysqlKill(handler: (kill: ForwardedKill) => Promise<KillAnswer>): void {
    this.#onMysql = handler;
  }

  /**
   * Publishes a session's client key (in the background: a session never waits for it). A
   * MySQL id another gateway's live session holds is not published; the clash is logged.
   */
  publish(routeKey: string, route: { protocol: string; sessionId: string; identity: string | null }): void {
    const write = this.#store.cancelRoutes
      .publish({ routeKey, gateway: this.gatewayId, ...route }, ROUTE_TTL_SECONDS)
      .then((published) => {
        if (!published) this.#logger.warn({ routeKey, sessionId: route.sessionId }, "another gateway's live session holds this cancel key; cancels through other gateways will not reach this session");
        return published;
      })
      .catch((err: unknown) => {
        this.#logger.warn({ err, sessionId: route.sessionId }, "could not publish the session's cancel key; cancels through other gateways will not reach it");
        return false;
      });
    this.#routes.set(routeKey, write);
  }

  /** The session ended: its route goes (once its publication is done, so it is not left behind). */
  release(routeKey: string): void {
    const write = this.#routes.get(routeKey);
    if (write === undefined) return;
    this.#routes.delete(routeKey);
    void write.then((published) => (published ? this.#remove([routeKey]) : undefined));
  }

  /**
   * Hands a Postgres cancel for a key this gateway does not know to the gateway that published it.
   * True when a live route was found and the cancel sent on; the client learns nothing either way.
   */
  async forwardPostgresCancel(routeKey: string): Promise<boolean> {
    const route = await this.#store.cancelRoutes.find(routeKey);
    if (route === null || route.protocol !== "postgres" || route.gateway === this.gatewayId) return false;
    await this.#send({ type: "pg_cancel", to: route.gateway, from: this.gatewayId, routeKey });
    return true;
  }

  /**
   * Hands a KILL for a thread id this gateway does not know to the gateway that published it, if
   * the requester's identity owns it (the owner checks again), and waits for its answer.
   */
  async forwardMysqlKill(threadId: number, identity: string, query: boolean): Promise<KillForwarding> {
    const route = await this.#store.cancelRoutes.find(`mysql:${threadId}`);
    if (route === null || route.protocol !== "mysql" || route.gateway === this.gatewayId) return { found: false };
    const found = { found: true as const, gateway: route.gateway, sessionId: route.sessionId };
    if (route.identity !== identity) return { ...found, answer: { ok: false, reason: "not_owner" } };
    const requestId = randomBytes(12).toString("hex");
    let timer: NodeJS.Timeout | undefined;
    const answered = new Promise<KillAnswer | undefined>((resolve) => {
      this.#waiting.set(requestId, resolve);
      timer = setTimeout(() => resolve(undefined), KILL_ANSWER_TIMEOUT_MS);
    });
    try {
      await this.#send({ type: "mysql_kill", to: route.gateway, from: this.gatewayId, requestId, threadId, identity, query });
      const answer = await answered;
      return { ...found, answer: answer ?? { ok: false, reason: "no_answer" } };
    } finally {
      clearTimeout(timer);
      this.#waiting.delete(requestId);
    }
  }

  /** Stops listening and renewing, and removes this gateway's routes (within about 2 s: a store that does not answer leaves them to expire). */
  async close(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const cap = new Promise<void>((resolve) => (timer = setTimeout(resolve, CLOSE_TIMEOUT_MS)));
    await Promise.race([this.#close(), cap]);
    clearTimeout(timer);
  }

  async #close(): Promise<void> {
    clearInterval(this.#timer);
    await this.#unlisten?.().catch(() => undefined);
    for (const resolve of this.#waiting.values()) resolve({ ok: false, errno: 1053, sqlState: "08S01", message: "Server shutdown in progress", reason: "shutdown" });
    const writes = [...this.#routes.entries()];
    this.#routes.clear();
    const published = await Promise.all(writes.map(async ([key, write]) => ((await write) ? key : undefined)));
    await this.#remove([...published.filter((k): k is string => k !== undefined), ...this.#unremoved]);
  }

  async #remove(routeKeys: string[]): Promise<void> {
    if (routeKeys.length === 0) return;
    try {
      await this.#store.cancelRoutes.remove(this.gatewayId, routeKeys);
      for (const key of routeKeys) this.#unremoved.delete(key);
    } catch (err) {
      for (const key of routeKeys) this.#unremoved.add(key);
      this.#logger.debug({ err, count: routeKeys.length }, "could not remove ended sessions' cancel keys; retrying at the next renewal");
    }
  }

  async #renew(): Promise<void> {
    await this.#remove([...this.#unremoved]);
    try {
      await this.#store.cancelRoutes.renew(this.gatewayId, ROUTE_TTL_SECONDS);
    } catch (err) {
      this.#logger.warn({ err }, "could not renew this gateway's cancel keys in the store");
    }
  }

  async #send(message: PeerMessage): Promise<void> {
    await this.#notifications.notify(PEER_CHANNEL, JSON.stringify(message));
  }

  #onMessage(payload: string): void {
    const message = parseMessage(payload);
    if (message === undefined) {
      this.#logger.debug({ payload: payload.slice(0, 200) }, "ignored a malformed peer message");
      return;
    }
    if (message.to !== this.gatewayId) return;
    switch (message.type) {
      case "pg_cancel":
        void this.#onPostgres?.(message.routeKey, message.from).catch((err: unknown) => this.#logger.error({ err }, "a forwarded cancel failed"));
        return;
      case "mysql_kill": {
        const serve = this.#onMysql;
        const reply = (answer: KillAnswer) =>
          this.#send({ type: "mysql_kill_answer", to: message.from, from: this.gatewayId, requestId: message.requestId, answer }).catch((err: unknown) =>
            this.#logger.warn({ err }, "could not answer a forwarded KILL"),
          );
        if (serve === undefined) {
          void reply({ ok: false, errno: 1094, sqlState: "HY000", message: `Unknown thread id: ${message.threadId}`, reason: "unknown_thread" });
          return;
        }
        void serve({ threadId: message.threadId, identity: message.identity, query: message.query, from: message.from })
          .catch((err: unknown): KillAnswer => {
            this.#logger.error({ err }, "a forwarded KILL failed");
            return { ok: false, errno: 1105, sqlState: "HY000", message: "the KILL failed at the session's gateway", reason: "error" };
          })
          .then(reply);
        return;
      }
      case "mysql_kill_answer":
        this.#waiting.get(message.requestId)?.(message.answer);
        return;
    }
  }
}

/** A readable id, unique per process: the host name and 48 random bits. */
export function newGatewayId(): string {
  return `${hostname().slice(0, 40)}-${randomBytes(6).toString("hex")}`;
}

/** A peer message, checked field by field; anything else is ignored. */
function parseMessage(payload: string): PeerMessage | undefined {
  let value: unknown;
  try {
    value = JSON.parse(payload);
  } catch {
    return undefined;
  }
  if (typeof value !== "object" || value === null) return undefined;
  const m = value as Record<string, unknown>;
  const str = (k: string) => typeof m[k] === "string";
  if (!str("to") || !str("from")) return undefined;
  switch (m.type) {
    case "pg_cancel":
      return str("routeKey") ? (m as PeerMessage) : undefined;
    case "mysql_kill":
      return str("requestId") && str("identity") && Number.isInteger(m.threadId) && typeof m.query === "boolean" ? (m as PeerMessage) : undefined;
    case "mysql_kill_answer": {
      const a = m.answer as Record<string, unknown> | null;
      if (!str("requestId") || typeof a !== "object" || a === null || typeof a.ok !== "boolean") return undefined;
      if (a.ok) return typeof a.targetSession === "string" ? (m as PeerMessage) : undefined;
      return Number.isInteger(a.errno) && typeof a.sqlState === "string" && typeof a.message === "string" && typeof a.reason === "string" ? (m as PeerMessage) : undefined;
    }
    default:
      return undefined;
  }
}
