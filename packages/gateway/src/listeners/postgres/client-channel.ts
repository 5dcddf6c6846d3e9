import type { Socket } from "node:net";
import { ClientStartup, errorResponseFor, isPostgresProtocolError, type ClientStartupEvent } from "@gatehouse/protocols/postgres";
import { GatewayError } from "../../errors.js";
import type { Logger } from "../../logger.js";
import type { TlsMaterial } from "../../tls-material.js";
import { HandshakeChannel, closeSilently, type Ended } from "../handshake-channel.js";

export { closeSilently, isEnded, replyAndClose, type Ended } from "../handshake-channel.js";

/** The ALPN protocol a direct-TLS Postgres client offers (and requires the server to pick). */
const POSTGRES_ALPN = "postgresql";

/**
 * One Postgres client's connection during its startup: the pure `ClientStartup` driven by the
 * shared HandshakeChannel; Postgres's own part is its two ways into TLS (SSLRequest, direct TLS).
 */
export class ClientChannel extends HandshakeChannel<ClientStartupEvent> {
  readonly startup: ClientStartup;

  constructor(socket: Socket, tls: TlsMaterial, deadline: AbortSignal, log: Logger) {
    const startup = new ClientStartup();
    super(socket, tls, startup, { refusalFor: (error) => (isPostgresProtocolError(error) ? errorResponseFor(error) : undefined), phase: "startup" }, deadline, log);
    this.startup = startup;
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
    this.useTls(this.tlsOver([]));
    return undefined;
  }

  /** libpq 17's sslnegotiation=direct: the ClientHello came first, without an SSLRequest. */
  async startDirectTls(hello: readonly Uint8Array[]): Promise<Ended | undefined> {
    const secure = this.tlsOver([...hello, ...this.source.detach()], { ALPNProtocols: [POSTGRES_ALPN] });
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
}
