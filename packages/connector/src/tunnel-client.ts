import { EventEmitter } from "node:events";
import { Multiplexer, wsLink, type MuxOptions } from "@gatehouse/proto";
import type { Logger } from "pino";
import { WebSocket } from "ws";
import type { Backoff } from "./backoff.js";
import type { ResolvedAddress } from "./gateway-links.js";
import { gatewayAddress, isGatewayUnreachable, whenGatewayAnswers } from "./gateway-probe.js";

/**
 * Largest WebSocket message accepted from the gateway. A message may carry several coalesced frames, so this is
 * above the mux's per-frame limit (1 MiB); it matches the gateway's own limit.
 */
export const MAX_WS_MESSAGE_BYTES = 4 * 1024 * 1024;
/** How long the WebSocket upgrade (TCP, TLS and HTTP) may take before the attempt counts as failed. */
export const UPGRADE_TIMEOUT_MS = 15_000;
/** After asking the link to close, how long to wait for the gateway's close frame before cutting the socket. */
const CLOSE_GRACE_MS = 2_000;
/**
 * While the gateway's port refuses connections and the backoff delay is longer than this, the
 * port is probed about this often (ms) and the connector dials as soon as it answers.
 */
export const GATEWAY_PROBE_INTERVAL_MS = 500;
const GATEWAY_PROBE_TIMEOUT_MS = 2_000;
/** A refused upgrade's answer is read for at most this long and this many characters (it is one line). */
const REFUSAL_READ_MS = 2_000;
const MAX_REFUSAL_CHARS = 300;

/**
 * Over wss:// every frame gets an all-zero WebSocket mask, which ws then skips: no copy and no XOR of each payload
 * here, no XOR at the gateway (proto's bench/mux-throughput.ts --zero-mask: 15-30% less CPU per byte of bulk
 * connector → gateway over plain ws; a smaller share of the total under TLS). Masking exists so that
 * a script cannot place chosen bytes verbatim on the wire for a proxy that reads it; inside TLS no intermediary sees
 * the bytes at all. Plain ws:// keeps the random mask RFC 6455 asks for: query results (bytes a client can choose)
 * cross that link in the clear.
 */
function zeroMask(mask: Buffer): void {
  mask.fill(0);
}

/** Multiplexer tuning the client passes through (the role and onOpen are the client's). */
export type TunnelMuxOptions = Omit<MuxOptions, "role" | "onOpen">;

export interface TunnelClientOptions {
  /** ws(s)://.../v1/tunnel */
  url: URL;
  /**
   * Dial this address of the URL's name (one of several the name resolves to); TLS servername and Host stay
   * the name. Left out: the name is resolved by each dial.
   */
  address?: ResolvedAddress | null;
  name: string;
  token: string;
  /** PEM to trust instead of the system CAs. */
  ca: string | null;
  backoff: Backoff;
  logger: Logger;
  onOpen: NonNullable<MuxOptions["onOpen"]>;
  mux?: TunnelMuxOptions;
  /**
   * This connector process's id, sent as Gatehouse-Connector-Instance: a gateway running several
   * workers refuses (409) a second link from one process to the same worker (worker-tunnels.ts).
   */
  instance?: string;
}

/** Which worker of a `gatehouse gateway --workers N` answered, from the upgrade's headers. */
export interface GatewayWorker {
  index: number;
  count: number;
}

/** A 409 to the upgrade: the worker reached already holds this process's link; another one is wanted. */
export const WORKER_TAKEN_STATUS = 409;
/** After a 409 the next dial goes out this soon (plus jitter): the next connection reaches the next worker. */
const WORKER_TAKEN_RETRY_MS = 20;
/**
 * After this many 409s in a row the dials back off as after any failure: the worker this link wants
 * is not there (being started again, or stuck), and dialing every 30 ms would only load the others.
 */
const WORKER_TAKEN_FAST_TRIES = 10;

export interface TunnelClientEvents {
  /** A link is up; `mux` serves it until `disconnected`. `worker`: the gateway said which worker (of how many) took it. */
  connected: [mux: Multiplexer, worker: GatewayWorker | null];
  /** The link that was up is gone (its streams failed with LINK_CLOSED). */
  disconnected: [reason: string];
  /** An attempt failed before the link came up; `status` is the HTTP status when the gateway answered. */
  "attempt-failed": [info: { status: number | null; message: string; retryInMs: number | null; worker: GatewayWorker | null }];
}

/**
 * Holds one tunnel to the gateway: dials it, wraps each link in a connector-role Multiplexer, and dials again
 * with backoff whenever the upgrade fails or the link goes away, until `stop()`.
 */
export class TunnelClient extends EventEmitter<TunnelClientEvents> {
  readonly #options: TunnelClientOptions;
  #ws: WebSocket | null = null;
  #mux: Multiplexer | null = null;
  #retryTimer: NodeJS.Timeout | null = null;
  /** Ends the probe that watches for the gateway's return (see gateway-probe.ts). */
  #probe: AbortController | null = null;
  #stopped = false;
  #closed: Promise<void> = Promise.resolve();
  /** 409s in a row (see WORKER_TAKEN_FAST_TRIES). */
  #workerTakenInARow = 0;

  constructor(options: TunnelClientOptions) {
    super();
    this.#options = options;
  }

  /** The multiplexer of the live link, or null between links. */
  get mux(): Multiplexer | null {
    return this.#mux;
  }

  start(): void {
    if (this.#stopped || this.#ws !== null || this.#retryTimer !== null) return;
    this.#dial();
  }

  /** Stops dialing and closes the live link (its streams fail with LINK_CLOSED). Resolves once the socket is gone. */
  async stop(reason: string): Promise<void> {
    this.#stopped = true;
    this.#cancelRetry();
    const ws = this.#ws;
    if (ws !== null) {
      if (this.#mux !== null) this.#mux.close(reason);
      else ws.terminate();
      // A gateway that does not answer the close frame must not hold the process: cut it after a grace period.
      const cut = setTimeout(() => ws.terminate(), CLOSE_GRACE_MS);
      await this.#closed;
      clearTimeout(cut);
    }
  }

  #dial(): void {
    const { url, name, token, ca, logger } = this.#options;
    const ws = new WebSocket(url, {
      headers: {
        authorization: `Bearer ${token}`,
        "gatehouse-connector": name,
        ...(this.#options.instance === undefined ? {} : { "gatehouse-connector-instance": this.#options.instance }),
      },
      perMessageDeflate: false,
      maxPayload: MAX_WS_MESSAGE_BYTES,
      handshakeTimeout: UPGRADE_TIMEOUT_MS,
      followRedirects: false,
      ...(ca === null ? {} : { ca }),
      ...(url.protocol === "wss:" ? { generateMask: zeroMask } : {}),
      ...(this.#options.address ? { lookup: fixedLookup(this.#options.address) } : {}),
    });
    ws.binaryType = "nodebuffer";
    this.#ws = ws;

    let status: number | null = null;
    /** The body of a refused upgrade: the gateway says why there ("unknown connector ..."). */
    let refusal = "";
    let error: Error | null = null;
    let mux: Multiplexer | null = null;
    let worker: GatewayWorker | null = null;
    let finished = false;
    let resolveClosed!: () => void;
    this.#closed = new Promise((r) => (resolveClosed = r));

    // Without this listener ws turns a non-101 answer into a generic error; with it we keep the status.
    ws.once("upgrade", (res) => (worker = workerOf(res.headers)));
    ws.on("unexpected-response", (_req, res) => {
      status = res.statusCode ?? null;
      worker = workerOf(res.headers);
      // Keep the first few hundred bytes of the answer (the reason), then give up on the socket.
      const cut = setTimeout(() => ws.terminate(), REFUSAL_READ_MS);
      res.setEncoding("utf8");
      res.on("data", (text: string) => {
        if (refusal.length < MAX_REFUSAL_CHARS) refusal += text;
      });
      const done = () => {
        clearTimeout(cut);
        refusal = refusal.slice(0, MAX_REFUSAL_CHARS).trim();
        ws.terminate();
      };
      res.once("end", done);
      res.once("error", done);
    });
    ws.on("error", (err) => {
      // After a refused upgrade the only error left is our own terminate(); the status says it all.
      if (status === null) error ??= err;
    });
    ws.once("open", () => {
      if (this.#stopped) {
        ws.terminate();
        return;
      }
      mux = new Multiplexer(wsLink(ws), { ...this.#options.mux, role: "connector", onOpen: this.#options.onOpen });
      this.#mux = mux;
      this.#options.backoff.succeeded();
      // A dead heartbeat or a protocol violation closes the mux first: cut the socket right away rather than
      // wait out a close handshake with a peer that is not answering.
      mux.once("close", (reason: string) => finish(`tunnel closed: ${reason}`));
      logger.info(worker ? { worker: worker.index, workers: worker.count } : {}, "connected to the gateway");
      this.emit("connected", mux, worker);
    });
    ws.once("close", (code, reasonBytes) => {
      const reason = reasonBytes.toString("utf8");
      finish(mux === null ? "" : `link closed (${code}${reason === "" ? "" : ` ${reason}`})`);
      resolveClosed();
    });

    const finish = (why: string): void => {
      if (finished) return;
      finished = true;
      // On stop() the close handshake gets its grace period (see stop); otherwise nothing is left to say.
      if (!this.#stopped && ws.readyState !== WebSocket.CLOSED) ws.terminate();
      this.#ws = null;
      const wasUp = mux !== null;
      if (wasUp) {
        this.#mux = null;
        this.#options.backoff.lost();
        // The mux errors its streams with LINK_CLOSED when it sees the link go; closing it here covers the case
        // where the socket went first and is idempotent otherwise.
        mux?.close(why);
      }
      // A worker that already holds this process's link is not a failure: dial again at once for another.
      const workerTaken = !wasUp && status === WORKER_TAKEN_STATUS;
      this.#workerTakenInARow = workerTaken ? this.#workerTakenInARow + 1 : 0;
      const fast = workerTaken && this.#workerTakenInARow <= WORKER_TAKEN_FAST_TRIES;
      const retryInMs = this.#stopped ? null : fast ? WORKER_TAKEN_RETRY_MS + Math.floor(Math.random() * WORKER_TAKEN_RETRY_MS) : this.#options.backoff.next();
      if (wasUp) {
        if (this.#stopped) logger.info({ reason: why }, "disconnected from the gateway");
        else logger.warn({ reason: why, retryInMs }, "disconnected from the gateway");
        this.emit("disconnected", why);
      } else if (this.#stopped) {
        logger.debug("tunnel attempt abandoned: connector stopping");
      } else if (workerTaken) {
        logger.debug({ gateway: url.href, worker, retryInMs }, "that gateway worker already holds a link from this connector; dialing for another");
        this.emit("attempt-failed", { status, message: refusal, retryInMs, worker });
      } else {
        const message = this.#describeFailure(status, error, refusal);
        const fields = { status, error: error?.message, retryInMs };
        if (status === 401) logger.error(fields, "gateway refused the connector token");
        else if (status === 403) logger.error({ ...fields, name }, `gateway does not know this connector: ${message}`);
        else logger.warn(fields, `cannot open the tunnel: ${message}`);
        this.emit("attempt-failed", { status, message, retryInMs, worker });
      }
      if (retryInMs !== null) this.#retryIn(retryInMs, !wasUp && isGatewayUnreachable(error));
    };
  }

  /**
   * Dials again after `delayMs`, or sooner: when the gateway did not even answer TCP, its port is
   * probed meanwhile, and the first probe it answers ends the wait. After a long outage the
   * backoff has grown to tens of seconds; without this the connector came back that much later
   * than the gateway.
   */
  #retryIn(delayMs: number, unreachable: boolean): void {
    const dialNow = () => {
      this.#cancelRetry();
      if (!this.#stopped) this.#dial();
    };
    this.#retryTimer = setTimeout(dialNow, delayMs);
    if (!unreachable || delayMs <= GATEWAY_PROBE_INTERVAL_MS) return;
    const probe = new AbortController();
    this.#probe = probe;
    const { address } = this.#options;
    const at = gatewayAddress(this.#options.url);
    void whenGatewayAnswers(address ? { host: address.address, port: at.port } : at, {
      intervalMs: GATEWAY_PROBE_INTERVAL_MS,
      timeoutMs: GATEWAY_PROBE_TIMEOUT_MS,
      random: Math.random,
      signal: probe.signal,
    }).then((answered) => {
      if (!answered || this.#probe !== probe) return;
      this.#options.logger.info("the gateway answers again; dialing now");
      dialNow();
    });
  }

  #cancelRetry(): void {
    if (this.#retryTimer !== null) {
      clearTimeout(this.#retryTimer);
      this.#retryTimer = null;
    }
    this.#probe?.abort();
    this.#probe = null;
  }

  #describeFailure(status: number | null, error: Error | null, refusal: string): string {
    if (status === 401) return "gateway refused the connector token";
    // 403: the name is not in the gateway's `connectors`; the body names it ("unknown connector ...").
    if (status === 403) return refusal || `gateway refused the connector name (HTTP 403)`;
    if (status !== null) return `gateway answered HTTP ${status} to the tunnel upgrade`;
    if (error === null) return "connection closed before the upgrade";
    const code = (error as NodeJS.ErrnoException).code;
    // The usual fix for a self-signed gateway certificate is the --ca option, so say so.
    if (code !== undefined && /CERT|SELF_SIGNED|UNABLE_TO_VERIFY/.test(code)) {
      return `${error.message} (trust the gateway's CA with --ca / GATEHOUSE_GATEWAY_CA)`;
    }
    return error.message;
  }
}

/**
 * A `lookup` for the socket that always answers one address: the tunnel dials that address while the URL's
 * name stays the TLS servername and the Host header. Node asks with `all: true` when it may try several
 * addresses (autoSelectFamily), and expects a list then.
 */
function fixedLookup(address: ResolvedAddress) {
  return (
    _hostname: string,
    options: { all?: boolean } | number | undefined,
    callback: (err: NodeJS.ErrnoException | null, address: string | { address: string; family: number }[], family?: number) => void,
  ): void => {
    if (typeof options === "object" && options?.all) callback(null, [{ address: address.address, family: address.family }]);
    else callback(null, address.address, address.family);
  };
}

/** Gatehouse-Worker / Gatehouse-Workers of an upgrade answer; null from a gateway without workers. */
function workerOf(headers: Record<string, string | string[] | undefined>): GatewayWorker | null {
  const index = Number(headers["gatehouse-worker"]);
  const count = Number(headers["gatehouse-workers"]);
  return Number.isInteger(index) && Number.isInteger(count) && count >= 1 && index >= 0 && index < count ? { index, count } : null;
}
