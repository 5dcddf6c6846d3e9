import { EventEmitter } from "node:events";
import type { OpenReply, OpenStream } from "@gatehouse/proto";
import { pino, type Logger } from "pino";
import { Backoff } from "./backoff.js";
import { resolveCredential } from "./credentials.js";
import { defaultDialers, formatTarget, type DialResult, type DialerRegistry } from "./dialers/index.js";
import { ConnectorError, streamFailureOf, type StreamFailureCode } from "./errors.js";
import { GatewayLinks, systemLookup, type GatewayLookup, type LinkTarget } from "./gateway-links.js";
import { relay } from "./relay.js";
import type { ConnectorSettings } from "./settings.js";
import type { TunnelMuxOptions } from "./tunnel-client.js";
import { WorkerTunnels } from "./worker-tunnels.js";

export interface StartConnectorOptions {
  /** Default: pino JSON on stdout at `settings.logLevel`. */
  logger?: Logger;
  /** protocol -> dialer. Default: `defaultDialers()`. */
  dialers?: DialerRegistry;
  /** Multiplexer tuning (heartbeat, windows); the defaults suit production. */
  mux?: TunnelMuxOptions;
  /** Reconnect backoff of the first tunnel (tests watch it). Default, and for every other tunnel: a new one from `settings.backoff`. */
  backoff?: Backoff;
  /** Resolves gateway names to their addresses. Default: the system resolver (dns.lookup, all addresses). */
  lookup?: GatewayLookup;
}

/** One stream as the connector's events and logs describe it. */
export interface StreamInfo {
  readonly sessionId: string;
  readonly streamId: number;
  readonly connection: string;
  readonly protocol: string;
  /** host:port */
  readonly target: string;
}

export interface ConnectorEvents {
  /** A tunnel to a gateway is up; `gateway` names it (its URL, and the address dialed when a name was resolved). */
  connected: [gateway: string];
  /** A tunnel went down; the connector dials it again unless it is stopping or its address is gone. */
  disconnected: [reason: string, gateway: string];
  /** The target is connected and the stream accepted. */
  "stream-open": [info: StreamInfo];
  /** A stream the connector refused, with the StreamFailed code it sent. */
  "stream-refused": [info: StreamInfo & { readonly code: StreamFailureCode; readonly message: string }];
  /** An accepted stream is over: `error` is null when both directions ended cleanly. */
  "stream-close": [info: StreamInfo & { readonly error: Error | null; readonly fromTarget: number; readonly toTarget: number }];
}

/** One tunnel of the connector, as `links` reports it. */
export interface LinkStatus {
  /** The gateway's tunnel URL. */
  readonly gateway: string;
  /** The address this tunnel dials when the URL's name was resolved to several; null: the URL as given. */
  readonly address: string | null;
  readonly up: boolean;
  /** Streams being dialed or relayed over this tunnel. */
  readonly streams: number;
  /** Its address vanished from DNS: it takes no new streams and closes once its streams are done. */
  readonly retiring: boolean;
}

/** One tunnel the connector holds, with the streams it carries. */
interface Link {
  readonly target: LinkTarget;
  /** How logs and events name it: the URL, and the address when one was resolved. */
  readonly label: string;
  /** The tunnel to this target: one link, or one per worker of a gateway run with --workers. */
  readonly tunnel: WorkerTunnels;
  /** Dials in flight over this link (aborted when it goes; see #dials). */
  readonly dials: Set<AbortController>;
  readonly streams: Set<Promise<void>>;
  idleWaiters: (() => void)[];
  retiring: boolean;
}

/**
 * A running connector: keeps a tunnel to every gateway it is given (one per address of a gateway name) and
 * serves the streams any of them opens. Each tunnel dials and backs off on its own. Create it with
 * `startConnector`.
 */
export class Connector extends EventEmitter<ConnectorEvents> {
  readonly #settings: ConnectorSettings;
  readonly #logger: Logger;
  readonly #dialers: DialerRegistry;
  readonly #options: StartConnectorOptions;
  readonly #gateways: GatewayLinks;
  /** The tunnels held, by target key. */
  readonly #links = new Map<string, Link>();
  /** Tunnels whose address vanished, draining until their streams are done (their key may be held again meanwhile). */
  readonly #retiring = new Set<Link>();
  /** The backoff given in the options, for the first tunnel; the others get their own from the settings. */
  #givenBackoff: Backoff | undefined;
  /**
   * Dials in flight, each with a signal of its own, aborted when its link goes (or the connector
   * stops) so they stop. Not one signal for the link: each dial would add its abort listener to it,
   * and 11 sessions opening at once tripped Node's MaxListenersExceededWarning.
   */
  readonly #dials = new Set<AbortController>();
  /** Streams being dialed or relayed, over every link. */
  readonly #streams = new Set<Promise<void>>();
  #idleWaiters: (() => void)[] = [];
  #draining: Promise<void> | null = null;
  #stopping: Promise<void> | null = null;

  constructor(settings: ConnectorSettings, options: StartConnectorOptions = {}) {
    super();
    this.#settings = settings;
    this.#options = options;
    this.#logger = (options.logger ?? pino({ level: settings.logLevel })).child({ connector: settings.name });
    this.#dialers = options.dialers ?? defaultDialers();
    this.#givenBackoff = options.backoff;
    this.#gateways = new GatewayLinks({
      urls: settings.gatewayUrls,
      resolveIntervalMs: settings.resolveIntervalMs,
      lookup: options.lookup ?? systemLookup,
      logger: this.#logger,
    });
    this.#gateways.on("added", (target) => this.#addLink(target));
    this.#gateways.on("removed", (target) => void this.#retireLink(target.key));
  }

  /** True while at least one tunnel to a gateway is up. */
  get connected(): boolean {
    return this.#allLinks().some((l) => l.tunnel.mux !== null);
  }

  /** Every tunnel the connector holds, up or not. */
  get links(): LinkStatus[] {
    return this.#allLinks().map((l) => ({
      gateway: l.target.url.href,
      address: l.target.address?.address ?? null,
      up: l.tunnel.mux !== null,
      streams: l.streams.size,
      retiring: l.retiring,
    }));
  }

  /** Streams being dialed or relayed. */
  get streamCount(): number {
    return this.#streams.size;
  }

  get draining(): boolean {
    return this.#draining !== null;
  }

  /** Resolves the gateways' names and begins dialing every one (startConnector calls it). */
  start(): void {
    this.#logger.info(
      {
        gateways: this.#settings.gatewayUrls.map((u) => u.href),
        resolveIntervalMs: this.#settings.resolveIntervalMs,
        allow: this.#settings.allow.rules.map((r) => r.source),
      },
      "connector starting",
    );
    void this.#gateways.start().catch((err: unknown) => this.#logger.error({ err }, "resolving the gateways failed unexpectedly"));
  }

  /** Resolves the gateway names again now (the interval does it on its own); for tests and operators. */
  resolveGateways(): Promise<void> {
    return this.#gateways.resolveNow();
  }

  /**
   * Graceful shutdown: tells every gateway to send no new streams (Drain), refuses any that still arrive with
   * DRAINING, waits up to `timeoutMs` (default: the drain-timeout setting) for open streams to finish, then
   * stops. Streams still open at the deadline fail with LINK_CLOSED.
   */
  drain(timeoutMs: number = this.#settings.drainTimeoutMs): Promise<void> {
    this.#draining ??= (async () => {
      this.#gateways.stop();
      this.#logger.info({ openStreams: this.#streams.size, timeoutMs }, "draining: no new streams");
      for (const link of this.#allLinks()) for (const mux of link.tunnel.muxes) mux.drain();
      const outcome = await raceTimeout(this.#whenIdle(), timeoutMs);
      if (outcome === "timeout") {
        this.#logger.warn({ openStreams: this.#streams.size }, "drain timed out; closing the open streams");
      }
      await this.stop();
    })();
    return this.#draining;
  }

  /** Closes every tunnel at once (open streams fail with LINK_CLOSED) and stops dialing. */
  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      this.#gateways.stop();
      this.#abortDials(this.#dials, new ConnectorError("INTERNAL", "connector stopping"));
      await Promise.all(this.#allLinks().map((l) => l.tunnel.stop("connector stopping")));
      // The link's close errors every stream; wait for their sockets to be torn down too.
      await this.#whenIdle();
      this.#logger.info("connector stopped");
    })();
    return this.#stopping;
  }

  #allLinks(): Link[] {
    return [...this.#links.values(), ...this.#retiring];
  }

  #addLink(target: LinkTarget): void {
    if (this.#stopping !== null || this.#links.has(target.key)) return;
    const label = target.address === null ? target.url.href : `${target.url.href} (${target.address.address})`;
    const logger = this.#logger.child({ gateway: target.url.href, ...(target.address === null ? {} : { gatewayAddress: target.address.address }) });
    const given = this.#givenBackoff;
    this.#givenBackoff = undefined;
    const backoff = () => given ?? new Backoff(this.#settings.backoff);
    const dials = new Set<AbortController>();
    const tunnel: WorkerTunnels = new WorkerTunnels({
      url: target.url,
      address: target.address,
      name: this.#settings.name,
      token: this.#settings.token,
      ca: this.#settings.gatewayCa,
      backoff,
      logger,
      onOpen: (open, reply) => this.#onOpen(open, reply, link),
      ...(this.#options.mux === undefined ? {} : { mux: this.#options.mux }),
    });
    const link: Link = { target, label, tunnel, dials, streams: new Set(), idleWaiters: [], retiring: false };
    this.#links.set(target.key, link);
    tunnel.on("connected", (mux) => {
      // A link that came up while draining (the dial was in flight) gets the Drain right away.
      if (this.#draining !== null || link.retiring) mux.drain();
      this.emit("connected", label);
    });
    tunnel.on("disconnected", (reason) => {
      // With links to several workers of one gateway, the others' dials go on; a dial for the lost
      // link finds its reply gone when it tries to accept, and closes its target connection then.
      if (tunnel.mux === null) this.#abortDials(dials, new ConnectorError("INTERNAL", `tunnel lost: ${reason}`));
      this.emit("disconnected", reason, label);
    });
    tunnel.start();
  }

  /** Its address vanished: no new streams over it (Drain), its open ones get the drain timeout, then it closes. */
  async #retireLink(key: string): Promise<void> {
    const link = this.#links.get(key);
    if (link === undefined) return;
    link.retiring = true;
    this.#links.delete(key);
    this.#retiring.add(link);
    const log = this.#logger.child({ gateway: link.target.url.href, gatewayAddress: link.target.address?.address ?? null });
    log.info({ openStreams: link.streams.size }, "gateway address gone; draining its tunnel");
    for (const mux of link.tunnel.muxes) mux.drain();
    const idle = link.streams.size === 0 ? Promise.resolve() : new Promise<void>((r) => link.idleWaiters.push(r));
    await raceTimeout(idle, this.#settings.drainTimeoutMs);
    this.#abortDials(link.dials, new ConnectorError("INTERNAL", "gateway address gone"));
    await link.tunnel.stop("gateway address gone");
    this.#retiring.delete(link);
    log.info("tunnel to a vanished gateway address closed");
  }

  #abortDials(dials: Set<AbortController>, reason: ConnectorError): void {
    for (const dial of dials) {
      dial.abort(reason);
      this.#dials.delete(dial);
    }
    dials.clear();
  }

  #whenIdle(): Promise<void> {
    if (this.#streams.size === 0) return Promise.resolve();
    return new Promise((r) => this.#idleWaiters.push(r));
  }

  #track(work: Promise<void>, link: Link): void {
    this.#streams.add(work);
    link.streams.add(work);
    void work
      .catch((err: unknown) => this.#logger.error({ err }, "stream handling failed unexpectedly"))
      .finally(() => {
        this.#streams.delete(work);
        link.streams.delete(work);
        if (link.streams.size === 0) for (const w of link.idleWaiters.splice(0)) w();
        if (this.#streams.size === 0) {
          const waiters = this.#idleWaiters;
          this.#idleWaiters = [];
          for (const w of waiters) w();
        }
      });
  }

  #onOpen(open: OpenStream, reply: OpenReply, link: Link): void {
    const host = open.target?.host ?? "";
    const port = open.target?.port ?? 0;
    const info: StreamInfo = {
      sessionId: open.sessionId,
      streamId: open.streamId,
      connection: open.connection,
      protocol: open.protocol,
      target: formatTarget(host, port),
    };
    const log = this.#logger.child({ sessionId: info.sessionId, streamId: info.streamId, gateway: link.label });
    const refuse = (code: StreamFailureCode, message: string): void => {
      log.warn({ code, connection: info.connection, target: info.target, reason: message }, "stream refused");
      try {
        reply.reject(code, message);
      } catch (err) {
        // The link went away while we were deciding; the gateway already failed the open.
        log.debug({ err }, "could not send the refusal");
      }
      this.emit("stream-refused", { ...info, code, message });
    };

    // Once Drain is sent the mux itself refuses new opens with DRAINING; this covers the moments around it
    // (stop() under way, a link that came up while draining) so nothing new starts on the way out.
    if (this.#draining !== null || this.#stopping !== null || link.retiring) {
      refuse("DRAINING", `connector "${this.#settings.name}" is draining and takes no new streams`);
      return;
    }
    // Check everything that needs no I/O before touching credentials.
    if (!this.#settings.allow.allows({ host, port })) {
      refuse("TARGET_NOT_ALLOWED", `target ${info.target} is not on connector "${this.#settings.name}"'s allow-list`);
      return;
    }
    const dialer = this.#dialers.get(open.protocol);
    if (dialer === undefined) {
      const known = [...this.#dialers.keys()].join(", ");
      refuse("PROTOCOL_UNSUPPORTED", `connector "${this.#settings.name}" cannot dial protocol "${open.protocol}" (it knows: ${known})`);
      return;
    }

    const dial = new AbortController();
    this.#dials.add(dial);
    link.dials.add(dial);
    const { signal } = dial;
    const settled = () => {
      this.#dials.delete(dial);
      link.dials.delete(dial);
    };
    this.#track(
      (async () => {
        let dialed: DialResult;
        try {
          const password = await resolveCredential(open.credential?.passwordRef ?? "", this.#settings.credentialEnv);
          dialed = await dialer(open, {
            password,
            logger: log,
            signal,
            timeoutMs: this.#settings.dialTimeoutMs,
            resolveCredential: (ref) => resolveCredential(ref, this.#settings.credentialEnv),
          });
        } catch (err) {
          settled();
          if (signal.aborted) return; // the link is gone; nobody is waiting for an answer
          const failure = streamFailureOf(err);
          if (failure.code === "INTERNAL") log.error({ err }, "dialer failed unexpectedly");
          refuse(failure.code, failure.message);
          return;
        }
        settled();
        if (signal.aborted) {
          dialed.socket.destroy();
          return;
        }
        let stream;
        try {
          stream = reply.accept({
            ...(dialed.params === undefined ? {} : { params: dialed.params }),
            ...(dialed.handshake === undefined ? {} : { handshake: dialed.handshake }),
          });
        } catch (err) {
          log.warn({ err }, "could not accept the stream; closing the target connection");
          dialed.socket.destroy();
          return;
        }
        const level = dialed.quiet ? "debug" : "info";
        log[level]({ connection: info.connection, protocol: info.protocol, target: info.target }, "stream opened");
        this.emit("stream-open", info);
        const started = performance.now();
        const result = await relay(stream, dialed.socket, info.target);
        const fields = {
          fromTarget: result.fromTarget,
          toTarget: result.toTarget,
          durationMs: Math.round(performance.now() - started),
        };
        if (result.error === null) log[level](fields, "stream closed");
        else log.info({ ...fields, failedSide: result.failedSide, error: result.error.message }, "stream failed");
        this.emit("stream-close", { ...info, error: result.error, fromTarget: result.fromTarget, toTarget: result.toTarget });
      })(),
      link,
    );
  }
}

/** Resolves "idle" when `idle` does, "timeout" after `ms`. */
async function raceTimeout(idle: Promise<void>, ms: number): Promise<"idle" | "timeout"> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<"timeout">((r) => (timer = setTimeout(() => r("timeout"), ms)));
  const outcome = await Promise.race([idle.then(() => "idle" as const), deadline]);
  clearTimeout(timer);
  return outcome;
}

/** Starts a connector: it dials the gateway at once and keeps dialing until `stop()` or `drain()`. */
export function startConnector(settings: ConnectorSettings, options: StartConnectorOptions = {}): Connector {
  const connector = new Connector(settings, options);
  connector.start();
  return connector;
}
