import type { Duplex } from "node:stream";
import { GatewayError } from "../errors.js";

/**
 * Pulls chunks from a socket one at a time, for handshakes that must wait
 * on asynchronous decisions (key checks, connector dials) between reads.
 * `detach()` hands the socket back, with anything read but not yet taken.
 */
export class ChunkSource {
  private readonly queue: Buffer[] = [];
  private waiter: { resolve: (chunk: Buffer) => void; reject: (error: Error) => void } | undefined;
  private failure: GatewayError | undefined;

  constructor(private readonly stream: Duplex) {
    stream.on("data", this.onData);
    stream.on("end", this.onEnd);
    stream.on("close", this.onEnd);
    stream.on("error", this.onError);
  }

  /**
   * The next chunk. Rejects with a GatewayError: CLIENT_GONE when the peer closes (or its
   * connection fails, as `cause`), CLIENT_TIMEOUT when `deadline` aborts first. One deadline
   * serves a whole handshake: it does not restart with each chunk, so a client trickling
   * bytes cannot hold its socket past it.
   */
  next(deadline: AbortSignal): Promise<Buffer> {
    const queued = this.queue.shift();
    if (queued) {
      if (this.queue.length === 0) this.stream.resume();
      return Promise.resolve(queued);
    }
    if (this.failure) return Promise.reject(this.failure);
    if (deadline.aborted) return Promise.reject(timedOut());
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        this.waiter = undefined;
        reject(timedOut());
      };
      deadline.addEventListener("abort", onAbort, { once: true });
      this.waiter = {
        resolve: (chunk) => (deadline.removeEventListener("abort", onAbort), resolve(chunk)),
        reject: (error) => (deadline.removeEventListener("abort", onAbort), reject(error)),
      };
    });
  }

  /** Stops reading and returns the chunks read but not taken. */
  detach(): Buffer[] {
    this.stream.pause();
    this.stream.off("data", this.onData);
    this.stream.off("end", this.onEnd);
    this.stream.off("close", this.onEnd);
    this.stream.off("error", this.onError);
    return this.queue.splice(0);
  }

  private readonly onData = (chunk: Buffer) => {
    const waiter = this.waiter;
    if (waiter) {
      this.waiter = undefined;
      waiter.resolve(chunk);
    } else {
      this.queue.push(chunk);
      // Nobody is waiting: hold the socket rather than buffer without bound.
      this.stream.pause();
    }
  };

  private readonly onEnd = () => this.fail(new GatewayError("CLIENT_GONE", "the client closed the connection"));

  private readonly onError = (error: Error) => this.fail(new GatewayError("CLIENT_GONE", `the client's connection failed: ${error.message}`, { cause: error }));

  private fail(error: GatewayError): void {
    this.failure ??= error;
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.reject(this.failure);
  }
}

function timedOut(): GatewayError {
  return new GatewayError("CLIENT_TIMEOUT", "the client did not finish its handshake in time");
}
