import { createServer, type Server, type Socket } from "node:net";
import type { HostPort } from "../config/address.js";

/**
 * A TCP server that knows its open sockets, so closing the gateway ends
 * them instead of waiting for clients to leave. Each protocol's listener
 * hands it the function that serves one client.
 */
export class SocketServer {
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();

  constructor(serve: (socket: Socket) => void) {
    this.server = createServer({ noDelay: true, keepAlive: true }, (socket) => {
      this.sockets.add(socket);
      socket.once("close", () => this.sockets.delete(socket));
      serve(socket);
    });
  }

  async listen(at: HostPort): Promise<HostPort> {
    await new Promise<void>((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(at.port, at.host, () => {
        this.server.off("error", reject);
        resolve();
      });
    });
    const address = this.server.address();
    if (address === null || typeof address === "string") throw new Error("listener has no TCP address");
    return { host: address.address, port: address.port };
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const socket of this.sockets) socket.destroy();
    await closed;
  }
}
