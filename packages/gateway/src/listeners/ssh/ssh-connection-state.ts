import type { ServerChannel } from "ssh2";
import type { ConnectionConfig, GatewayConfig } from "../../config/schema.js";
import type { Logger } from "../../logger.js";
import type { RecordedSession } from "../../sessions/recorder.js";
import type { SessionBroker } from "../../sessions/session-broker.js";

/** The session behind an SSH connection once authenticated: opened, or why not (shown to the client on its channels). */
export type SshSessionOpened = { ok: true; session: RecordedSession; connection: ConnectionConfig } | { ok: false; message: string };

/**
 * What the handlers of one SSH connection's channels share: the session (opened while the client
 * already opens channels, hence a promise), the open channels (a shutdown tells each why), the
 * bytes each way for the disconnect event, and how a refused request is recorded.
 */
export class SshConnectionState {
  readonly bytes = { up: 0, down: 0 };
  private readonly channels = new Set<ServerChannel>();
  private readonly idle: Array<() => void> = [];

  /** The connection's log until its session opens, then the session's (its id, identity and connection on every line). */
  log: Logger;

  constructor(
    readonly ready: Promise<SshSessionOpened>,
    readonly broker: SessionBroker,
    readonly config: () => GatewayConfig,
    log: Logger,
    /** Ends the client's connection (after a refusal was shown on a channel). */
    private readonly endConnection: () => void,
  ) {
    this.log = log;
    void ready.then((opened) => {
      if (opened.ok) this.log = opened.session.logger;
    }, () => undefined);
  }

  /** A relayed channel, until the returned function forgets it (once its event is recorded). */
  track(channel: ServerChannel): () => void {
    this.channels.add(channel);
    return () => {
      this.channels.delete(channel);
      if (this.channels.size === 0) for (const idle of this.idle.splice(0)) idle();
    };
  }

  /**
   * Resolves once every relayed channel has recorded its event, or after `timeoutMs`: the session's
   * record closes after its channels' events (a killed client's connection closes before its
   * channels' streams do), never held open by a stream that does not end.
   */
  channelsSettled(timeoutMs: number): Promise<void> {
    if (this.channels.size === 0) return Promise.resolve();
    return new Promise((resolve) => {
      this.idle.push(resolve);
      setTimeout(resolve, timeoutMs).unref();
    });
  }

  /** The gateway stops: each open channel is told on its stderr, then the connection closes. */
  endForShutdown(): void {
    for (const channel of this.channels) {
      try {
        channel.stderr.write("\r\ngatehouse: the gateway is shutting down; this session was ended\r\n");
        channel.exit(255);
        channel.end();
      } catch {
        // the channel is already gone
      }
    }
    this.endConnection();
  }

  /** A refused session: the client had its message; the connection ends shortly after. */
  endSoon(): void {
    setTimeout(() => this.endConnection(), 200).unref();
  }

  /** A channel or request the gateway does not relay: refused, recorded as `denied` with `details.request`. */
  refuseRequest(request: string, message: string, details: Record<string, unknown> = {}): void {
    this.log.info({ request, ...details }, `ssh request refused: ${message}`);
    void this.ready.then((opened) => {
      if (!opened.ok) return;
      return opened.session.record({ kind: "denied", command: request, outcome: "error", details: { request, reason: "not_allowed", message, ...details } });
    }).catch(() => undefined);
  }
}
