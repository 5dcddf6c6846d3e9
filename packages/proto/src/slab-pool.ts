/**
 * Recycles the memory of outgoing messages. A fresh 64 KiB Buffer per message meant fresh pages for
 * every message: the copy into it page-faulted, and collecting it kept the GC busy (together about a
 * quarter of the CPU time at full speed, measured with --cpu-prof). Messages are carved one after
 * another out of a few large slabs; a slab is reused once every message in it was released (its send
 * completed), and the slab being filled starts over from its beginning whenever it empties, which in
 * steady streaming is after nearly every message, so the same few pages stay hot.
 */
interface Slab {
  buffer: ArrayBuffer;
  /** Bytes handed out since the slab (re)started. */
  used: number;
  /** Messages handed out and not yet released. */
  live: number;
}

export class SlabPool {
  readonly #slabSize: number;
  /** Messages smaller than this are not worth pooling (Node already pools small Buffers). */
  readonly #minBytes: number;
  #current: Slab | undefined;
  #spare: Slab | undefined;
  readonly #owner = new WeakMap<ArrayBufferLike, Slab>();
  #usedSinceTrim = false;

  constructor(slabSize: number, minBytes = 16 * 1024) {
    this.#slabSize = slabSize;
    this.#minBytes = minBytes;
  }

  allocate(size: number): Buffer {
    if (size < this.#minBytes || size > this.#slabSize) return Buffer.allocUnsafe(size);
    this.#usedSinceTrim = true;
    let slab = this.#current;
    if (slab === undefined || slab.used + size > this.#slabSize) {
      slab = this.#spare ?? this.#newSlab();
      this.#spare = undefined;
      slab.used = 0;
      this.#current = slab;
    }
    const message = Buffer.from(slab.buffer, slab.used, size);
    slab.used += (size + 7) & ~7; // keep messages 8-byte aligned
    slab.live++;
    return message;
  }

  /** The link is done with `message` (from allocate); its bytes may be overwritten from now on. */
  release(message: Uint8Array): void {
    if (message.length < this.#minBytes) return; // never pooled (see allocate)
    const slab = this.#owner.get(message.buffer);
    if (slab === undefined) return;
    slab.live--;
    if (slab.live > 0) return;
    if (slab === this.#current) slab.used = 0;
    else this.#spare ??= slab;
  }

  /** Drops the slabs if no message used them since the last call (an idle link holds no memory). */
  trim(): void {
    if (!this.#usedSinceTrim) {
      if (this.#current?.live === 0) this.#current = undefined;
      this.#spare = undefined;
    }
    this.#usedSinceTrim = false;
  }

  #newSlab(): Slab {
    const slab: Slab = { buffer: new ArrayBuffer(this.#slabSize), used: 0, live: 0 };
    this.#owner.set(slab.buffer, slab);
    return slab;
  }
}
