import type { Duplex } from "node:stream";

/**
 * Pulls chunks from a socket one at a time, for handshakes that must wait
 * on asynchronous decisions (key checks, connector dials) between reads.
 * `detach()` hands the socket back, with anything read but not yet taken.
 */
export class ChunkSource {
  private readonly queue: Buffer[] = [];
  private waiter: { resolve: (chunk: Buffer) => void; reject: (error: Error) => void } | undefined;
  private failure: Error | undefined;

  constructor(private readonly stream: Duplex) {
    stream.on("data", this.onData);
    stream.on("end", this.onEnd);
    stream.on("close", this.onEnd);
    stream.on("error", this.onError);
  }

  /** The next chunk; rejects when the peer closes or `timeoutMs` passes first. */
  next(timeoutMs: number): Promise<Buffer> {
    const queued = this.queue.shift();
    if (queued) {
      if (this.queue.length === 0) this.stream.resume();
      return Promise.resolve(queued);
    }
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = undefined;
        reject(new Error(`no data from the client within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiter = {
        resolve: (chunk) => (clearTimeout(timer), resolve(chunk)),
        reject: (error) => (clearTimeout(timer), reject(error)),
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

  private readonly onEnd = () => this.fail(new Error("the client closed the connection"));

  private readonly onError = (error: Error) => this.fail(error);

  private fail(error: Error): void {
    this.failure ??= error;
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.reject(this.failure);
  }
}
