type Callback = (err?: Error | null) => void;

/**
 * Bytes a stream's writer handed over and the mux has not framed yet. take() returns views, so a
 * payload is copied once, into the outgoing message; each write's callback is released only once
 * all its bytes have been taken.
 */
export class SendQueue {
  #chunks: Uint8Array[] = [];
  #callbacks: (Callback | undefined)[] = [];
  #head = 0;
  /** Bytes of chunks[head] already taken. */
  #offset = 0;
  #bytes = 0;

  get bytes(): number {
    return this.#bytes;
  }

  push(chunk: Uint8Array, cb: Callback | undefined): void {
    this.#chunks.push(chunk);
    this.#callbacks.push(cb);
    this.#bytes += chunk.length;
  }

  /** Views onto the next `n` bytes (n ≤ bytes); callbacks of fully taken chunks go to `done`. */
  take(n: number, done: Callback[]): Uint8Array[] {
    const parts: Uint8Array[] = [];
    this.#bytes -= n;
    while (n > 0) {
      const chunk = this.#chunks[this.#head]!;
      const left = chunk.length - this.#offset;
      if (left <= n) {
        if (left > 0) parts.push(this.#offset === 0 ? chunk : chunk.subarray(this.#offset));
        n -= left;
        this.#release(done);
      } else {
        parts.push(chunk.subarray(this.#offset, this.#offset + n));
        this.#offset += n;
        n = 0;
      }
    }
    // Callbacks of empty writes at the front are due too.
    while (this.#head < this.#chunks.length && this.#chunks[this.#head]!.length === 0) this.#release(done);
    return parts;
  }

  /** Drops everything; returns the callbacks still owed. */
  clear(): Callback[] {
    const owed = this.#callbacks.slice(this.#head).filter((cb): cb is Callback => cb !== undefined);
    this.#chunks = [];
    this.#callbacks = [];
    this.#head = 0;
    this.#offset = 0;
    this.#bytes = 0;
    return owed;
  }

  #release(done: Callback[]): void {
    const cb = this.#callbacks[this.#head];
    if (cb) done.push(cb);
    this.#chunks[this.#head] = undefined as unknown as Uint8Array;
    this.#callbacks[this.#head] = undefined;
    this.#head++;
    this.#offset = 0;
    if (this.#head === this.#chunks.length) {
      this.#chunks = [];
      this.#callbacks = [];
      this.#head = 0;
    }
  }
}
