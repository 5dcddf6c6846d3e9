import { EventEmitter } from "node:events";
import type { Multiplexer, OpenReply, OpenStream } from "@gatehouse/proto";
import { pino, type Logger } from "pino";
import { Backoff } from "./backoff.js";
import { resolveCredential } from "./credentials.js";
import { defaultDialers, formatTarget, type DialResult, type DialerRegistry } from "./dialers/index.js";
import { ConnectorError, streamFailureOf, type StreamFailureCode } from "./errors.js";
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
  /** Reconnect backoff (tests; shared by the links to a gateway's workers). Default: one per link, from `settings.backoff`. */
  backoff?: Backoff;
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
  /** The tunnel to the gateway is up. */
  connected: [];
  /** The tunnel went down; the connector dials again unless it is stopping. */
  disconnected: [reason: string];
  /** The target is connected and the stream accepted. */
  "stream-open": [info: StreamInfo];
  /** A stream the connector refused, with the StreamFailed code it sent. */
  "stream-refused": [info: StreamInfo & { readonly code: StreamFailureCode; readonly message: string }];
  /** An accepted stream is over: `error` is null when both directions ended cleanly. */
  "stream-close": [info: StreamInfo & { readonly error: Error | null; readonly fromTarget: number; readonly toTarget: number }];
}

/**
 * A running connector: keeps a tunnel to the gateway and serves the streams the gateway opens over it.
 * Create it with `startConnector`.
 */
export class Connector extends EventEmitter<ConnectorEvents> {
  readonly #settings: ConnectorSettings;
  readonly #logger: Logger;
  readonly #dialers: DialerRegistry;
  readonly #tunnel: WorkerTunnels;
  /**
   * Dials in flight, each with a signal of its own, aborted when the link goes (or the connector
   * stops) so they stop. Not one signal for the link: each dial would add its abort listener to it,
   * and 11 sessions opening at once tripped Node's MaxListenersExceededWarning.
   */
  readonly #dials = new Set<AbortController>();
  /** Streams being dialed or relayed. */
  readonly #streams = new Set<Promise<void>>();
  #idleWaiters: (() => void)[] = [];
  #draining: Promise<void> | null = null;
  #stopping: Promise<void> | null = null;

  constructor(settings: ConnectorSettings, options: StartConnectorOptions = {}) {
    super();
    this.#settings = settings;
    this.#logger = (options.logger ?? pino({ level: settings.logLevel })).child({ connector: settings.name });
    this.#dialers = options.dialers ?? defaultDialers();
    this.#tunnel = new WorkerTunnels({
      url: settings.gatewayUrl,
      name: settings.name,
      token: settings.token,
      ca: settings.gatewayCa,
      backoff: options.backoff ? () => options.backoff! : () => new Backoff(settings.backoff),
      logger: this.#logger,
      onOpen: (open, reply) => this.#onOpen(open, reply),
      ...(options.mux === undefined ? {} : { mux: options.mux }),
    });
    this.#tunnel.on("connected", (mux) => this.#onConnected(mux));
    this.#tunnel.on("disconnected", (reason) => {
      // With links to several gateway workers, the others' dials go on; a dial for the lost link
      // finds its reply gone when it tries to accept, and closes its target connection then.
      if (this.#tunnel.mux === null) this.#abortDials(new ConnectorError("INTERNAL", `tunnel lost: ${reason}`));
      this.emit("disconnected", reason);
    });
  }

  /** True while a tunnel to the gateway is up. */
  get connected(): boolean {
    return this.#tunnel.mux !== null;
  }

  /** Streams being dialed or relayed. */
  get streamCount(): number {
    return this.#streams.size;
  }

  get draining(): boolean {
    return this.#draining !== null;
  }

  /** Begins dialing the gateway (startConnector calls it). */
  start(): void {
    this.#logger.info(
      { gateway: this.#settings.gatewayUrl.href, allow: this.#settings.allow.rules.map((r) => r.source) },
      "connector starting",
    );
    this.#tunnel.start();
  }

  /**
   * Graceful shutdown: tells the gateway to send no new streams (Drain), refuses any that still arrive with
   * DRAINING, waits up to `timeoutMs` (default: the drain-timeout setting) for open streams to finish, then
   * stops. Streams still open at the deadline fail with LINK_CLOSED.
   */
  drain(timeoutMs: number = this.#settings.drainTimeoutMs): Promise<void> {
    this.#draining ??= (async () => {
      this.#logger.info({ openStreams: this.#streams.size, timeoutMs }, "draining: no new streams");
      for (const mux of this.#tunnel.muxes) mux.drain();
      const idle = this.#whenIdle();
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<"timeout">((r) => (timer = setTimeout(() => r("timeout"), timeoutMs)));
      const outcome = await Promise.race([idle.then(() => "idle" as const), deadline]);
      clearTimeout(timer);
      if (outcome === "timeout") {
        this.#logger.warn({ openStreams: this.#streams.size }, "drain timed out; closing the open streams");
      }
      await this.stop();
    })();
    return this.#draining;
  }

  /** Closes the tunnel at once (open streams fail with LINK_CLOSED) and stops dialing. */
  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      this.#abortDials(new ConnectorError("INTERNAL", "connector stopping"));
      await this.#tunnel.stop("connector stopping");
      // The link's close errors every stream; wait for their sockets to be torn down too.
      await this.#whenIdle();
      this.#logger.info("connector stopped");
    })();
    return this.#stopping;
  }

  #abortDials(reason: ConnectorError): void {
    for (const dial of this.#dials) dial.abort(reason);
    this.#dials.clear();
  }

  #onConnected(mux: Multiplexer): void {
    // A link that came up while draining (the dial was in flight) gets the Drain right away.
    if (this.#draining !== null) mux.drain();
    this.emit("connected");
  }

  #whenIdle(): Promise<void> {
    if (this.#streams.size === 0) return Promise.resolve();
    return new Promise((r) => this.#idleWaiters.push(r));
  }

  #track(work: Promise<void>): void {
    this.#streams.add(work);
    void work
      .catch((err: unknown) => this.#logger.error({ err }, "stream handling failed unexpectedly"))
      .finally(() => {
        this.#streams.delete(work);
        if (this.#streams.size === 0) {
          const waiters = this.#idleWaiters;
          this.#idleWaiters = [];
          for (const w of waiters) w();
        }
      });
  }

  #onOpen(open: OpenStream, reply: OpenReply): void {
    const host = open.target?.host ?? "";
    const port = open.target?.port ?? 0;
    const info: StreamInfo = {
      sessionId: open.sessionId,
      streamId: open.streamId,
      connection: open.connection,
      protocol: open.protocol,
      target: formatTarget(host, port),
    };
    const log = this.#logger.child({ sessionId: info.sessionId, streamId: info.streamId });
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
    if (this.#draining !== null || this.#stopping !== null) {
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
    const { signal } = dial;
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
          this.#dials.delete(dial);
          if (signal.aborted) return; // the link is gone; nobody is waiting for an answer
          const failure = streamFailureOf(err);
          if (failure.code === "INTERNAL") log.error({ err }, "dialer failed unexpectedly");
          refuse(failure.code, failure.message);
          return;
        }
        this.#dials.delete(dial);
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
    );
  }
}

/** Starts a connector: it dials the gateway at once and keeps dialing until `stop()` or `drain()`. */
export function startConnector(settings: ConnectorSettings, options: StartConnectorOptions = {}): Connector {
  const connector = new Connector(settings, options);
  connector.start();
  return connector;
}
