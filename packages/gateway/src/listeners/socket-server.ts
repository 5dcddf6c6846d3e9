import { createServer, type Server, type Socket } from "node:net";
import type { HostPort } from "../config/address.js";
import { ServerWatch, type ListenerState } from "./server-watch.js";

/**
 * A TCP server that knows its open sockets and the work serving each, so a
 * stopping gateway can stop accepting, wait for clients to leave, and end
 * the rest instead of waiting forever. Each protocol's listener hands it the
 * function that serves one client.
 */
export class SocketServer {
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  /** Serving each open client; settles once its session is recorded as ended. */
  private readonly serving = new Set<Promise<void>>();
  private readonly idleWaiters = new Set<() => void>();
  private readonly watch: ServerWatch;

  constructor(serve: (socket: Socket) => Promise<void> | void) {
    this.server = createServer({ noDelay: true, keepAlive: true }, (socket) => {
      this.sockets.add(socket);
      socket.once("close", () => {
        this.sockets.delete(socket);
        if (this.sockets.size === 0) for (const wake of this.idleWaiters) wake();
      });
      const work = Promise.resolve(serve(socket)).catch(() => undefined);
      this.serving.add(work);
      void work.finally(() => this.serving.delete(work));
    });
    this.watch = new ServerWatch(this.server);
  }

  /** Whether it takes clients, for /readyz. */
  get state(): ListenerState {
    return this.watch.state;
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

  /** Takes no new clients; open ones go on. */
  stopAccepting(): void {
    this.watch.stopping();
    if (this.server.listening) this.server.close();
  }

  get openSockets(): number {
    return this.sockets.size;
  }

  /** Resolves true once no client socket is open, false if `signal` aborts first. */
  whenIdle(signal: AbortSignal): Promise<boolean> {
    if (this.sockets.size === 0) return Promise.resolve(true);
    if (signal.aborted) return Promise.resolve(false);
    return new Promise((resolve) => {
      const done = (idle: boolean) => {
        this.idleWaiters.delete(wake);
        signal.removeEventListener("abort", abort);
        resolve(idle);
      };
      const wake = () => done(true);
      const abort = () => done(false);
      this.idleWaiters.add(wake);
      signal.addEventListener("abort", abort, { once: true });
    });
  }

  /** Ends every open socket at once and waits (up to `settleMs`) for their sessions to be recorded as ended. */
  async close(settleMs = 1_000): Promise<void> {
    this.watch.stopping();
    const closed = new Promise<void>((resolve) => {
      if (this.server.listening) this.server.close(() => resolve());
      else resolve();
    });
    for (const socket of this.sockets) socket.destroy();
    await closed;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(this.serving), new Promise((resolve) => (timer = setTimeout(resolve, settleMs)))]);
    clearTimeout(timer);
  }
}
