/**
 * The byte queue under both framings (Postgres `MessageReader`, MySQL `PacketReader`): pushed
 * chunks kept in a list, read through a position, handed out as *views* into them; a copy only
 * when what is taken spans chunks. Pure: no sockets, no protocol. The queue holds references to
 * pushed chunks until they are consumed: don't reuse a chunk's memory after pushing it.
 */
export class ChunkQueue {
  /** Pushed chunks; chunks[head] is the one being read, at `offset`. */
  private chunks: Uint8Array[] = [];
  private head = 0;
  private offset = 0;
  private available = 0;

  /** Bytes pushed and not yet consumed. */
  get length(): number {
    return this.available;
  }

  push(chunk: Uint8Array): void {
    if (chunk.byteLength === 0) return;
    this.chunks.push(chunk);
    this.available += chunk.byteLength;
  }

  /** The byte `rel` positions ahead of the read position (caller guarantees it is buffered). */
  byteAt(rel: number): number {
    let i = this.head;
    let pos = this.offset + rel;
    for (;;) {
      const chunk = this.chunks[i]!;
      if (pos < chunk.byteLength) return chunk[pos]!;
      pos -= chunk.byteLength;
      i++;
    }
  }

  /** The big-endian uint32 at `rel` ahead of the read position (caller guarantees it is buffered). */
  uint32BE(rel: number): number {
    const chunk = this.chunks[this.head]!;
    const p = this.offset + rel;
    if (chunk.byteLength - p >= 4) return ((chunk[p]! << 24) | (chunk[p + 1]! << 16) | (chunk[p + 2]! << 8) | chunk[p + 3]!) >>> 0;
    return ((this.byteAt(rel) << 24) | (this.byteAt(rel + 1) << 16) | (this.byteAt(rel + 2) << 8) | this.byteAt(rel + 3)) >>> 0;
  }

  /** Consume n bytes as one Uint8Array: a view when contiguous, else a copy. */
  take(n: number): Uint8Array {
    const chunk = this.chunks[this.head]!;
    if (chunk.byteLength - this.offset >= n) {
      const view = chunk.subarray(this.offset, this.offset + n);
      this.discard(n);
      return view;
    }
    const out = new Uint8Array(n);
    let filled = 0;
    while (filled < n) {
      const current = this.chunks[this.head]!;
      const piece = Math.min(n - filled, current.byteLength - this.offset);
      out.set(current.subarray(this.offset, this.offset + piece), filled);
      filled += piece;
      this.discard(piece);
    }
    return out;
  }

  /** Consume up to n bytes from the current chunk only, as a view (never a copy); empty when nothing is buffered. */
  takeView(n: number): Uint8Array {
    if (this.available === 0) return EMPTY;
    const chunk = this.chunks[this.head]!;
    const bytes = chunk.subarray(this.offset, this.offset + Math.min(n, chunk.byteLength - this.offset));
    this.discard(bytes.byteLength);
    return bytes;
  }

  /** Drop n bytes (caller guarantees they are buffered). */
  discard(n: number): void {
    this.available -= n;
    while (n > 0) {
      const chunk = this.chunks[this.head]!;
      const left = chunk.byteLength - this.offset;
      if (n < left) {
        this.offset += n;
        return;
      }
      n -= left;
      this.head++;
      this.offset = 0;
    }
    if (this.head === this.chunks.length) {
      this.chunks.length = 0;
      this.head = 0;
    } else if (this.head > 32 && this.head * 2 > this.chunks.length) {
      // Without this a long run of small chunks would keep every consumed one referenced.
      this.chunks = this.chunks.slice(this.head);
      this.head = 0;
    }
  }

  /** Remove and return every unread byte, as views of the chunks (no empty ones). */
  takeAll(): Uint8Array[] {
    const out: Uint8Array[] = [];
    for (let i = this.head; i < this.chunks.length; i++) {
      const chunk = this.chunks[i]!;
      out.push(i === this.head ? chunk.subarray(this.offset) : chunk);
    }
    this.chunks = [];
    this.head = 0;
    this.offset = 0;
    this.available = 0;
    return out.filter((part) => part.byteLength > 0);
  }
}

export const EMPTY = new Uint8Array(0);

/** Concatenate byte arrays into one (a copy). */
export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  let total = 0;
  for (const part of parts) total += part.byteLength;
  const out = new Uint8Array(total);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.byteLength;
  }
  return out;
}
