import { readFileSync } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Store } from "@gatehouse/store";
import { ApiError, sendJson } from "../api/json.js";
import { eventView, sessionView } from "../api/views.js";
import { GatewayError } from "../errors.js";
import { storedPublicKeys } from "../evidence/seal-keys.js";
import { parsePublicKeys, type PublicKey, type SigningKey } from "../evidence/signing.js";
import { verifySession } from "../evidence/verify.js";
import type { Logger } from "../logger.js";

// Two read routes the console needs beside the search API (also open to the admin token):
//   GET /api/v1/sessions/:id/verify  the session's hash chain, seal and byte streams checked as
//                                    `gatehouse verify` checks them, against this gateway's key(s)
//   GET /api/v1/sessions/:id/live    server-sent events: each event of the session once it is in
//                                    the store (`event: event`), the session row when its count or
//                                    end changes (`event: session`); the stream ends after the end

export interface SessionRoutesOptions {
  store: Pick<Store, "sessions" | "streams">;
  /** The public keys seals must verify with (consoleVerifyKeys). */
  verifyKeys: () => Promise<VerifyKeys>;
  /** Wakes the live tails when a batch touching these sessions reached the store (journal/shipper.ts). */
  onShipped?: (listener: (sessionIds: ReadonlySet<string>) => void) => () => void;
  logger: Logger;
}

/** Live tails read the store again at least this often (ms), for events another gateway shipped. */
export const LIVE_POLL_MS = 1_000;
/** A comment line keeps proxies from closing an idle live tail. */
const HEARTBEAT_MS = 15_000;
/** Concurrent live tails per gateway; beyond it a client is told to come back (503). */
const MAX_LIVE = 200;

/** How long the store's list of gateway keys is reused before it is read again (ms). */
const STORE_KEYS_MS = 10_000;

export interface VerifyKeys {
  keys: PublicKey[];
  /** This gateway's own key id. */
  keyId: string;
  /** Where the keys came from: "pinned" (this gateway's and console.publicKeys only) or "store" (also every gateway key registered in the store). */
  source: "pinned" | "store";
}

/**
 * The keys the console verifies seals with, as `gatehouse verify` picks them: this gateway's own and
 * every gateway's key registered in the store (migration 007) — or, with console.publicKeys, this
 * gateway's and that file's only, not taking the store's word for which keys are the gateways'
 * (`verify --public-key`). The file is read once at start; one that cannot be used is an error
 * naming the key.
 */
export function consoleVerifyKeys(publicKeysFile: string | undefined, own: SigningKey, store: Partial<Pick<Store, "gatewayKeys">>, logger?: Logger): () => Promise<VerifyKeys> {
  const ownKeys = parsePublicKeys(own.publicKeyPem, "the gateway's signing key");
  if (publicKeysFile !== undefined) {
    const pinned = [...ownKeys];
    try {
      pinned.push(...parsePublicKeys(readFileSync(publicKeysFile, "utf8"), publicKeysFile));
    } catch (cause) {
      const message = `console.publicKeys: cannot use ${publicKeysFile}: ${(cause as Error).message}`;
      throw new GatewayError("CONFIG_INVALID", message, { cause, problems: [message] });
    }
    const answer: VerifyKeys = { keys: pinned, keyId: own.keyId, source: "pinned" };
    return () => Promise.resolve(answer);
  }
  let cached: { atMs: number; answer: VerifyKeys } | undefined;
  return async () => {
    if (cached && Date.now() - cached.atMs < STORE_KEYS_MS) return cached.answer;
    const keys = [...ownKeys];
    try {
      const stored = (await store.gatewayKeys?.list()) ?? [];
      for (const key of storedPublicKeys(stored)) if (!keys.some((k) => k.keyId === key.keyId)) keys.push(key);
    } catch (error) {
      // As verify does: a store that cannot list its keys still leaves this gateway's own.
      logger?.warn({ err: error }, "the store's gateway keys could not be read; the console verifies with this gateway's key only");
      return { keys, keyId: own.keyId, source: "store" };
    }
    cached = { atMs: Date.now(), answer: { keys, keyId: own.keyId, source: "store" } };
    return cached.answer;
  };
}

export class SessionRoutes {
  private live = 0;

  constructor(private readonly options: SessionRoutesOptions) {}

  /** Answers the route if it is one of these two; false otherwise. */
  async handle(request: IncomingMessage, response: ServerResponse, url: URL): Promise<boolean> {
    const match = /^\/api\/v1\/sessions\/([^/]+)\/(verify|live)$/.exec(url.pathname);
    if (!match) return false;
    if ((request.method ?? "GET") !== "GET") throw new ApiError("method_not_allowed", `${request.method} is not supported on ${url.pathname}`);
    const id = decodeURIComponent(match[1]!);
    if (match[2] === "verify") await this.verify(response, id);
    else await this.tail(request, response, url, id);
    return true;
  }

  private async verify(response: ServerResponse, id: string): Promise<void> {
    const found = await this.read(() => this.options.store.sessions.get(id));
    if (!found) throw new ApiError("not_found", `no session ${id}`);
    const chunks = await this.read(() => this.options.store.streams.chunks([id]));
    const { keys, keyId, source } = await this.options.verifyKeys();
    const verdict = verifySession(found.session, found.events, keys, chunks);
    sendJson(response, 200, { ...verdict, keyId, trustedKeys: keys.map((k) => k.keyId), keysFrom: source });
  }

  private async tail(request: IncomingMessage, response: ServerResponse, url: URL, id: string): Promise<void> {
    // A reconnecting EventSource sends the last id it saw, which is newer than the `after` in its URL.
    const afterText = request.headers["last-event-id"]?.toString() ?? url.searchParams.get("after") ?? "0";
    if (!/^\d{1,10}$/.test(afterText)) throw new ApiError("bad_request", `after: expected the last sequence number seen, got "${afterText}"`);
    const first = await this.read(() => this.options.store.sessions.get(id));
    if (!first) throw new ApiError("not_found", `no session ${id}`);
    if (this.live >= MAX_LIVE) throw new ApiError("store_unavailable", `${MAX_LIVE} live tails are open on this gateway; try again later`);
    this.live++;
    response.writeHead(200, { "Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff", "X-Accel-Buffering": "no" });
    response.write("retry: 1000\n\n");

    let lastSeq = Number(afterText);
    let lastState = "";
    let closed = false;
    let wake: (() => void) | undefined;
    const sleep = (ms: number) =>
      new Promise<void>((resolve) => {
        const timer = setTimeout(() => { wake = undefined; resolve(); }, ms);
        wake = () => { clearTimeout(timer); wake = undefined; resolve(); };
      });
    const unsubscribe = this.options.onShipped?.((ids) => { if (ids.has(id)) wake?.(); });
    const heartbeat = setInterval(() => response.write(": keep-alive\n\n"), HEARTBEAT_MS);
    const stop = () => { closed = true; wake?.(); };
    request.once("close", stop);
    response.once("close", stop);
    try {
      let found = first;
      for (;;) {
        for (const e of found.events) {
          if (e.seq <= lastSeq) continue;
          lastSeq = e.seq;
          response.write(`id: ${e.seq}\nevent: event\ndata: ${JSON.stringify(eventView(e))}\n\n`);
        }
        const state = `${found.session.eventCount}/${found.session.endedUs ?? ""}`;
        if (state !== lastState) {
          lastState = state;
          response.write(`event: session\ndata: ${JSON.stringify(sessionView(found.session))}\n\n`);
        }
        if (found.session.endedUs !== null && lastSeq >= found.session.eventCount) break;
        await sleep(LIVE_POLL_MS);
        if (closed) break;
        const next = await this.options.store.sessions.get(id).catch((error: unknown) => {
          this.options.logger.warn({ err: error, sessionId: id }, "live tail: the store could not answer; trying again");
          return undefined;
        });
        if (next === null) break;
        if (next) found = next;
      }
      if (!closed) response.write("event: end\ndata: {}\n\n");
    } finally {
      this.live--;
      clearInterval(heartbeat);
      unsubscribe?.();
      response.end();
    }
  }

  private async read<T>(call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (cause) {
      throw new ApiError("store_unavailable", `the store could not answer: ${(cause as Error).message}`);
    }
  }
}
