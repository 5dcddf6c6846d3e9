import type { Duplex } from "node:stream";
import type { OpenStream } from "@gatehouse/proto";
import type { Logger } from "pino";

/** What a dialer gets besides the OpenStream itself. */
export interface DialContext {
  /** The resolved credential (`open.credential.passwordRef`), null when the reference is empty. */
  readonly password: string | null;
  /** Bound to the stream's session id and stream id. */
  readonly logger: Logger;
  /** Aborted when the stream is no longer wanted (link lost, connector stopping): stop and clean up. */
  readonly signal: AbortSignal;
  /** How long reaching the target may take, in ms. */
  readonly timeoutMs: number;
  /**
   * Resolves another credential reference of the OpenStream (`file:`/`env:`, e.g. ssh's
   * `target.options.privateKey`) exactly as `password` was resolved. The connector always sets it;
   * contexts built by hand for dialers that need none may leave it out.
   */
  readonly resolveCredential?: (ref: string) => Promise<string | null>;
}

/** A connected (and, for protocols with a handshake, authenticated) target. */
export interface DialResult {
  /** Relayed to and from the TunnelStream once the open is accepted. */
  readonly socket: Duplex;
  /** Sent back in StreamOpened.params (server parameters learned in the handshake...). */
  readonly params?: Record<string, string>;
  /** Sent back in StreamOpened.handshake. */
  readonly handshake?: Uint8Array;
  /**
   * Log the stream's open and close at debug, not info: for streams as many as requests (one per
   * Kubernetes API request), where two info lines each cost the connector a sixth of its time.
   */
  readonly quiet?: boolean;
}

/**
 * Connects to `open.target` for one protocol. Throws a ConnectorError with a stream code (TARGET_UNREACHABLE,
 * AUTH_FAILED, PROTOCOL_ERROR...) to refuse the open; the message goes to the gateway, so it names the target
 * and the reason, never the credential.
 */
export type Dialer = (open: OpenStream, ctx: DialContext) => Promise<DialResult>;

/** protocol name (OpenStream.protocol) -> dialer. */
export type DialerRegistry = ReadonlyMap<string, Dialer>;
