import type { Socket } from "node:net";
import type { HostPort } from "../../config/address.js";
import type { ConnectionConfig } from "../../config/schema.js";
import type { Logger } from "../../logger.js";
import type { SessionBroker } from "../../sessions/session-broker.js";
import { relay } from "../../sessions/relay.js";
import { SocketServer } from "../socket-server.js";
import type { ListenerState } from "../server-watch.js";
import { drainListener, OpenSessions } from "../drain.js";

/**
 * A raw TCP connection: the gateway cannot authenticate an opaque byte stream,
 * so these sessions are recorded as identity "anonymous" with the client's
 * address. Meant for loopback listeners and for testing the road itself; real
 * protocols get their own listener with identity.
 */
export class TcpListener {
  private readonly server = new SocketServer((socket) => this.handle(socket));
  private readonly openSessions = new OpenSessions();

  constructor(
    private readonly connection: ConnectionConfig,
    private readonly broker: SessionBroker,
    private readonly logger: Logger,
  ) {}

  listen(): Promise<HostPort> {
    return this.server.listen(this.connection.listen!);
  }

  /** Whether it takes clients (for /readyz). */
  get state(): ListenerState {
    return this.server.state;
  }

  close(): Promise<void> {
    return this.server.close();
  }

  /** Graceful stop: no new clients; sessions still open when `grace` aborts are cut (raw bytes have no farewell). */
  drain(grace: AbortSignal): Promise<void> {
    return drainListener(this.server, this.openSessions, grace);
  }

  private async handle(socket: Socket): Promise<void> {
    // Until the stream is open, errors are reported by the broker; ignore ECONNRESET noise here.
    socket.on("error", () => undefined);
    socket.pause();
    const clientAddress = socket.remoteAddress ?? null;
    try {
      const opened = await this.broker.open({
        connection: this.connection,
        identity: { name: "anonymous", method: "none" },
        clientAddress,
        clientApplication: null,
        checkPolicy: false,
      });
      if (!opened.ok) {
        socket.destroy();
        return;
      }
      const { session, stream } = opened;
      const forgetSession = this.openSessions.add(() => {
        stream.destroy();
        socket.destroy();
      });
      const result = await relay(socket, stream);
      forgetSession();
      await session.endRelay({ ...result, shutdown: this.openSessions.shuttingDown });
    } catch (error) {
      this.logger.error({ err: error, connection: this.connection.name }, "tcp session failed");
      socket.destroy();
    }
  }
}
