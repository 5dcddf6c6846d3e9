import type { Socket } from "node:net";
import type { Duplex } from "node:stream";
import { TLSSocket } from "node:tls";
import { ClientStartup, errorResponseFor, isPostgresProtocolError, type ClientStartupEvent } from "@gatehouse/protocols/postgres";
import { GatewayError } from "../../errors.js";
import type { Logger } from "../../logger.js";
import type { TlsMaterial } from "../../tls-material.js";
import { nextHandshakeEvent, type ChunkSource } from "@gatehouse/protocols/drive";
import { clientChunkSource } from "../chunk-source.js";

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

/** The ALPN protocol a direct-TLS Postgres client offers (and requires the server to pick). */
const POSTGRES_ALPN = "postgresql";

/**
 * One client's connection during its handshake: drives the pure
 * `ClientStartup` over the socket (and TLS, once negotiated) against ONE
 * deadline for the whole handshake. Every way a read can fail comes back as
 * `Ended` with a log line at the level it deserves: a client that leaves, is
 * too slow or breaks the protocol is the client's business (debug/info),
 * never the gateway's error.
 */
export class ClientChannel {
  readonly startup = new ClientStartup();
  /** The client's stream: the socket, or TLS over it. */
  stream: Duplex;
  private source: ChunkSource;

  constructor(
    private readonly socket: Socket,
    private readonly tls: TlsMaterial,
    readonly deadline: AbortSignal,
    private readonly log: Logger,
  ) {
    this.stream = socket;
    this.source = clientChunkSource(socket);
  }

  /** The next handshake event, reading as needed. */
  async next(): Promise<ClientStartupEvent | Ended> {
    try {
      return await nextHandshakeEvent(this.startup, this.source, this.deadline);
    } catch (error) {
      return this.failed(error);
    }
  }

  write(bytes: Uint8Array): void {
    this.stream.write(bytes);
  }

  /** Accepts an SSLRequest: 'S', then TLS over the socket (its handshake runs as the next read waits). */
  startTls(): Ended | undefined {
    let answer: Uint8Array;
    try {
      answer = this.startup.answerSsl(true);
    } catch (error) {
      return this.failed(error);
    }
    this.socket.write(answer);
    this.source.detach();
    this.useTls(new TLSSocket(this.socket, { isServer: true, secureContext: this.tls.context }));
    return undefined;
  }

  /** libpq 17's sslnegotiation=direct: the ClientHello came first, without an SSLRequest. */
  async startDirectTls(hello: readonly Uint8Array[]): Promise<Ended | undefined> {
    // Its bytes, already read, go back in front of the socket: TLSSocket takes what a socket
    // has buffered before it reads the rest.
    this.socket.unshift(Buffer.concat([...hello, ...this.source.detach()]));
    const secure = new TLSSocket(this.socket, { isServer: true, secureContext: this.tls.context, ALPNProtocols: [POSTGRES_ALPN] });
    secure.on("error", () => undefined);
    const handshake = await new Promise<"secure" | "closed" | "timeout">((resolve) => {
      const onAbort = () => resolve("timeout");
      if (this.deadline.aborted) return resolve("timeout");
      this.deadline.addEventListener("abort", onAbort, { once: true });
      secure.once("secure", () => resolve("secure"));
      secure.once("close", () => resolve("closed"));
    });
    if (handshake !== "secure") {
      secure.destroy();
      return this.failed(new GatewayError(handshake === "timeout" ? "CLIENT_TIMEOUT" : "CLIENT_GONE", `the client's direct TLS handshake did not finish (${handshake})`));
    }
    // As Postgres 17 does: direct TLS without ALPN "postgresql" could be another protocol's client.
    if (secure.alpnProtocol !== POSTGRES_ALPN) {
      this.log.info({ alpn: secure.alpnProtocol || null }, "direct TLS without the postgresql ALPN protocol; closing");
      secure.destroy();
      return closeSilently;
    }
    this.useTls(secure);
    return undefined;
  }

  /** After the handshake: the bytes the client sent past its startup, and the stream for the relay. */
  handOver(): Uint8Array[] {
    return [...this.startup.remaining(), ...this.source.detach()];
  }

  /** Ends the handshake: the reply (if any), then close; a client that does not close is cut off. */
  close(ended: Ended): void {
    if (ended.reply) this.stream.end(ended.reply);
    else this.stream.destroy();
    setTimeout(() => this.socket.destroy(), 2_000).unref();
  }

  private useTls(secure: TLSSocket): void {
    secure.on("error", () => undefined);
    this.stream = secure;
    this.source = clientChunkSource(secure);
  }

  /** Sorts why a handshake read failed. Anything not the client's doing is thrown on. */
  private failed(error: unknown): Ended {
    if (isPostgresProtocolError(error)) {
      this.log.info({ err: error }, "protocol violation during startup");
      return replyAndClose(errorResponseFor(error));
    }
    if (error instanceof GatewayError) {
      switch (error.code) {
        case "CLIENT_GONE":
          // A failed TLS handshake or a reset says something about the client; a plain close does not.
          if (error.cause !== undefined) this.log.info({ err: error.cause }, "the client's connection failed during its handshake");
          else this.log.debug({ reason: error.message }, "client left during startup");
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
