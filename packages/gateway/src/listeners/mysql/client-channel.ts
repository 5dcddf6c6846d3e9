import type { Socket } from "node:net";
import { ClientHandshake, isMysqlProtocolError, type ClientHandshakeEvent, type GreetingOptions } from "@gatehouse/protocols/mysql";
import type { Logger } from "../../logger.js";
import type { TlsMaterial } from "../../tls-material.js";
import { HandshakeChannel, type Ended } from "../handshake-channel.js";

export { closeSilently, isEnded, replyAndClose, type Ended } from "../handshake-channel.js";

/**
 * One MySQL client's connection during its handshake: the pure `ClientHandshake` driven by the
 * shared HandshakeChannel; MySQL's own part is its TLS upgrade (the SSL capability).
 */
export class MysqlClientChannel extends HandshakeChannel<ClientHandshakeEvent> {
  readonly handshake: ClientHandshake;

  constructor(socket: Socket, tls: TlsMaterial, greeting: GreetingOptions, deadline: AbortSignal, log: Logger) {
    const handshake = new ClientHandshake(greeting);
    super(socket, tls, handshake, { refusalFor: (error) => (isMysqlProtocolError(error) ? handshake.fail(error) : undefined), phase: "the mysql handshake" }, deadline, log);
    this.handshake = handshake;
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
    this.useTls(this.tlsOver([...early, ...this.source.detach()]));
    return undefined;
  }
}
