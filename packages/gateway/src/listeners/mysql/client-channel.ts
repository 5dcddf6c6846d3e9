import type { Socket } from "node:net";
import type { Duplex } from "node:stream";
import { TLSSocket } from "node:tls";
import { nextHandshakeEvent, type ChunkSource } from "@gatehouse/protocols/drive";
import { ClientHandshake, isMysqlProtocolError, type ClientHandshakeEvent, type GreetingOptions } from "@gatehouse/protocols/mysql";
import { GatewayError } from "../../errors.js";
import type { Logger } from "../../logger.js";
import type { TlsMaterial } from "../../tls-material.js";
import { clientChunkSource } from "../chunk-source.js";
import { closeSilently, replyAndClose, type Ended } from "../postgres/client-channel.js";

export { closeSilently, isEnded, replyAndClose, type Ended } from "../postgres/client-channel.js";

/**
 * One MySQL client's connection during its handshake: drives the pure `ClientHandshake` over
 * the socket (and TLS, once the client sent an SSLRequest) against ONE deadline for the whole
 * handshake, as the Postgres listener's ClientChannel does. A client that leaves, is too slow or
 * breaks the protocol comes back as `Ended` (with the ERR packet to send, if any).
 */
export class MysqlClientChannel {
  readonly handshake: ClientHandshake;
  /** The client's stream: the socket, or TLS over it. */
  stream: Duplex;
  private source: ChunkSource;

  constructor(
    private readonly socket: Socket,
    private readonly tls: TlsMaterial,
    greeting: GreetingOptions,
    readonly deadline: AbortSignal,
    private readonly log: Logger,
  ) {
    this.handshake = new ClientHandshake(greeting);
    this.stream = socket;
    this.source = clientChunkSource(socket);
  }

  /** The next handshake event, reading as needed. */
  async next(): Promise<ClientHandshakeEvent | Ended> {
    try {
      return await nextHandshakeEvent(this.handshake, this.source, this.deadline);
    } catch (error) {
      return this.failed(error);
    }
  }

  write(bytes: Uint8Array): void {
    this.stream.write(bytes);
  }

  /**
   * After an SSLRequest: TLS over the socket. The client sends its ClientHello right behind the
   * SSLRequest (no answer comes between), so the bytes already read go back in front of the socket.
   */
  startTls(): Ended | undefined {
    let early: Uint8Array[];
    try {
      early = this.handshake.acceptTls();
    } catch (error) {
      return this.failed(error);
    }
    const buffered = [...early, ...this.source.detach()];
    if (buffered.length > 0) this.socket.unshift(Buffer.concat(buffered));
    const secure = new TLSSocket(this.socket, { isServer: true, secureContext: this.tls.context });
    secure.on("error", () => undefined);
    this.stream = secure;
    this.source = clientChunkSource(secure);
    return undefined;
  }

  /** After the handshake: the bytes the client sent past its login, and the stream for the relay. */
  handOver(): Uint8Array[] {
    return [...this.handshake.remaining(), ...this.source.detach()];
  }

  /** Ends the handshake: the reply (if any), then close; a client that does not close is cut off. */
  close(ended: Ended): void {
    if (ended.reply) this.stream.end(ended.reply);
    else this.stream.destroy();
    setTimeout(() => this.socket.destroy(), 2_000).unref();
  }

  /** Sorts why a handshake read failed. Anything not the client's doing is thrown on. */
  private failed(error: unknown): Ended {
    if (isMysqlProtocolError(error)) {
      this.log.info({ err: error }, "protocol violation during the mysql handshake");
      return replyAndClose(this.handshake.fail(error));
    }
    if (error instanceof GatewayError) {
      switch (error.code) {
        case "CLIENT_GONE":
          if (error.cause !== undefined) this.log.info({ err: error.cause }, "the client's connection failed during its handshake");
          else this.log.debug({ reason: error.message }, "client left during the handshake");
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
