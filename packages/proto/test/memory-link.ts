// An in-memory FrameLink pair, for tests that need to see or hold back what the mux sends.
import type { FrameLink } from "../src/index.js";

type SendCallback = (err?: Error) => void;

export class MemoryLink implements FrameLink {
  peer!: MemoryLink;
  /** Every message sent on this end, in order (copies). */
  readonly sent: Uint8Array[] = [];
  /** While true, send callbacks wait for release(): the "OS" is not taking bytes. */
  hold = false;
  #held: [number, SendCallback][] = [];
  #buffered = 0;
  #closed = false;
  #onMessage: (data: Uint8Array) => void = () => {};
  #onClose: (code: number, reason: string) => void = () => {};

  get bufferedAmount(): number {
    return this.#buffered;
  }

  send(data: Uint8Array, cb: SendCallback): void {
    if (this.#closed) {
      setImmediate(() => cb(new Error("link closed")));
      return;
    }
    // A copy: the sender may reuse its buffer once cb has run, as with a socket.
    const copy = Uint8Array.from(data);
    this.sent.push(copy);
    this.#buffered += copy.length;
    setImmediate(() => this.peer.#deliver(copy));
    if (this.hold) this.#held.push([copy.length, cb]);
    else setImmediate(() => this.#done(copy.length, cb));
  }

  /** Lets the held sends complete. */
  release(): void {
    this.hold = false;
    for (const [size, cb] of this.#held.splice(0)) this.#done(size, cb);
  }

  onMessage(handler: (data: Uint8Array) => void): void {
    this.#onMessage = handler;
  }

  onClose(handler: (code: number, reason: string) => void): void {
    this.#onClose = handler;
  }

  close(code: number, reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    this.peer.#closed = true;
    setImmediate(() => {
      this.#onClose(code, reason);
      this.peer.#onClose(code, reason);
    });
  }

  #deliver(data: Uint8Array): void {
    if (!this.#closed) this.#onMessage(data);
  }

  #done(size: number, cb: SendCallback): void {
    this.#buffered -= size;
    cb();
  }
}

export function memoryLinks(): [MemoryLink, MemoryLink] {
  const a = new MemoryLink();
  const b = new MemoryLink();
  a.peer = b;
  b.peer = a;
  return [a, b];
}
