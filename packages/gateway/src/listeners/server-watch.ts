import type { Server } from "node:net";

/** Whether a listener takes clients: `stopping` is the gateway's own doing (a graceful stop), `down` is not. */
export type ListenerState = { state: "starting" } | { state: "listening" } | { state: "stopping" } | { state: "down"; reason: string };

/**
 * Follows one listening server for /readyz: a server that closes without the gateway closing it,
 * or fails once it listens, is down (a readiness probe should take the gateway out of rotation),
 * while one the gateway stops is only stopping. Node reports both through the server's events, so
 * nothing is polled.
 */
export class ServerWatch {
  private current: ListenerState = { state: "starting" };

  constructor(private readonly server: Server) {
    server.on("listening", () => {
      if (this.current.state === "starting") this.current = { state: "listening" };
    });
    server.on("close", () => {
      if (this.current.state !== "stopping") this.current = { state: "down", reason: "closed unexpectedly" };
    });
    // Once listening, an error (an accept that fails for want of file descriptors...) would
    // otherwise be thrown out of the process; the server goes on unless it stopped listening.
    server.on("error", (error: NodeJS.ErrnoException) => {
      if (this.current.state === "starting" || this.current.state === "stopping") return; // listen() reports its own failure
      if (!server.listening) this.current = { state: "down", reason: error.code ?? error.message };
    });
  }

  /** The gateway itself stops the server: it is stopping, not down. */
  stopping(): void {
    this.current = { state: "stopping" };
  }

  get state(): ListenerState {
    return this.current;
  }
}
