import type { Duplex } from "node:stream";

/**
 * How a read ends without a chunk, in the caller's own errors: the gateway's CLIENT_GONE /
 * CLIENT_TIMEOUT, the connector's TARGET_UNREACHABLE. Each side names its peer its own way.
 */
export interface ReadFailures {
  /** The peer closed (no `cause`) or its connection failed (`cause`). */
  gone(cause?: Error): Error;
  /** The handshake's one deadline passed first. */
  timedOut(): Error;
}

/**
 * Pulls chunks from a socket one at a time, for handshakes that must wait on asynchronous
 * decisions (key checks, connector dials) between reads. `detach()` hands the socket back, with
 * anything read but not yet taken.
 */
export class ChunkSource {
  private readonly queue: Buffer[] = [];
  private waiter: { resolve: (chunk: Buffer) => void; reject: (error: Error) => void } | undefined;
  private failure: Error | undefined;

  constructor(
    private readonly stream: Duplex,
    private readonly failures: ReadFailures,
  ) {
    stream.on("data", this.onData);
    stream.on("end", this.onEnd);
    stream.on("close", this.onEnd);
    stream.on("error", this.onError);
  }

  /**
   * The next chunk. Rejects with `failures.gone` when the peer closes (or its connection fails),
   * `failures.timedOut` when `deadline` aborts first. One deadline serves a whole handshake: it
   * does not restart with each chunk, so a peer trickling bytes cannot hold its socket past it.
   */
  next(deadline: AbortSignal): Promise<Buffer> {
    const queued = this.queue.shift();
    if (queued) {
      if (this.queue.length === 0) this.stream.resume();
      return Promise.resolve(queued);
    }
    if (this.failure) return Promise.reject(this.failure);
    if (deadline.aborted) return Promise.reject(this.failures.timedOut());
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        this.waiter = undefined;
        reject(this.failures.timedOut());
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

  private readonly onEnd = () => this.fail(this.failures.gone());

  private readonly onError = (error: Error) => this.fail(this.failures.gone(error));

  private fail(error: Error): void {
    this.failure ??= error;
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.reject(this.failure);
  }
}
