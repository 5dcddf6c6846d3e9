import type { Socket } from "node:net";
import type { Duplex } from "node:stream";
import { TLSSocket, type TlsOptions } from "node:tls";
import { nextHandshakeEvent, type ChunkSource, type PureHandshake } from "@gatehouse/protocols/drive";
import { GatewayError } from "../errors.js";
import type { Logger } from "../logger.js";
import type { TlsMaterial } from "../tls-material.js";
import { clientChunkSource } from "./chunk-source.js";

/** The handshake is over before a session: answer `reply` (if any) and close. Already logged. */
export interface Ended {
  readonly ended: true;
  readonly reply?: Uint8Array;
}

export const closeSilently: Ended = { ended: true };

export function replyAndClose(reply: Uint8Array): Ended {
  return { ended: true, reply };
}

export function isEnded(value: object): value is Ended {
  return "ended" in value && value.ended === true;
}

/** What differs per protocol in how a handshake read fails: its own error, and the words for the log. */
export interface HandshakeWire {
  /** The protocol's error answer to `error` when the client broke the protocol; undefined: not a protocol error. */
  readonly refusalFor: (error: unknown) => Uint8Array | undefined;
  /** "startup", "the mysql handshake": where the client was, for log lines. */
  readonly phase: string;
}

/**
 * One client's connection during its handshake, whatever the protocol: drives a pure handshake
 * (`@gatehouse/protocols/drive`) over the socket, and TLS over it once the protocol's own upgrade
 * (in the subclass) switches to it, against ONE deadline for the whole handshake. Every way a
 * read can fail comes back as `Ended` with a log line at the level it deserves: a client that
 * leaves, is too slow or breaks the protocol is the client's business (debug/info), never the
 * gateway's error.
 */
export class HandshakeChannel<Event> {
  /** The client's stream: the socket, or TLS over it. */
  stream: Duplex;
  protected source: ChunkSource;

  constructor(
    protected readonly socket: Socket,
    protected readonly tls: TlsMaterial,
    private readonly machine: PureHandshake<Event> & { remaining(): Uint8Array[] },
    private readonly wire: HandshakeWire,
    readonly deadline: AbortSignal,
    protected readonly log: Logger,
  ) {
    this.stream = socket;
    this.source = clientChunkSource(socket);
  }

  /** The next handshake event, reading as needed. */
  async next(): Promise<Event | Ended> {
    try {
      return await nextHandshakeEvent(this.machine, this.source, this.deadline);
    } catch (error) {
      return this.failed(error);
    }
  }

  write(bytes: Uint8Array): void {
    this.stream.write(bytes);
  }

  /** After the handshake: the bytes the client sent past it, and the stream for the relay. */
  handOver(): Uint8Array[] {
    return [...this.machine.remaining(), ...this.source.detach()];
  }

  /** Ends the handshake: the reply (if any), then close; a client that does not close is cut off. */
  close(ended: Ended): void {
    if (ended.reply) this.stream.end(ended.reply);
    else this.stream.destroy();
    setTimeout(() => this.socket.destroy(), 2_000).unref();
  }

  /**
   * A TLS server over the socket. `buffered` (bytes already read, e.g. a ClientHello that came
   * right behind the request) go back in front of the socket: TLSSocket takes what a socket has
   * buffered before it reads the rest. The caller switches to it with `useTls`.
   */
  protected tlsOver(buffered: readonly Uint8Array[], options: TlsOptions = {}): TLSSocket {
    if (buffered.length > 0) this.socket.unshift(Buffer.concat(buffered));
    const secure = new TLSSocket(this.socket, { ...options, isServer: true, secureContext: this.tls.context });
    secure.on("error", () => undefined);
    return secure;
  }

  protected useTls(secure: TLSSocket): void {
    this.stream = secure;
    this.source = clientChunkSource(secure);
  }

  /** Sorts why a handshake read failed. Anything not the client's doing is thrown on. */
  protected failed(error: unknown): Ended {
    const refusal = this.wire.refusalFor(error);
    if (refusal) {
      this.log.info({ err: error }, `protocol violation during ${this.wire.phase}`);
      return replyAndClose(refusal);
    }
    if (error instanceof GatewayError) {
      switch (error.code) {
        case "CLIENT_GONE":
          // A failed TLS handshake or a reset says something about the client; a plain close does not.
          if (error.cause !== undefined) this.log.info({ err: error.cause }, "the client's connection failed during its handshake");
          else this.log.debug({ reason: error.message }, `client left during ${this.wire.phase}`);
          return closeSilently;
        case "CLIENT_TIMEOUT":
          this.log.info({ reason: error.message }, "handshake deadline passed; closing");
          return closeSilently;
        default:
          break;
      }
    }
    throw error;
  }
}
