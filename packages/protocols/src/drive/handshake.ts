import type { ChunkSource } from "./chunk-source.js";

/**
 * A pure handshake as every protocol writes one (Postgres `ClientStartup`, `ServerConnection`;
 * MySQL's next): bytes in with `push`, events out of `next` until it has none without more bytes.
 */
export interface PureHandshake<Event> {
  push(chunk: Uint8Array): void;
  next(): Event | undefined;
}

/**
 * The next event of a pure handshake, reading chunks from `source` as it needs them, all under
 * the handshake's one `deadline`. The caller acts on each event (writes, TLS, decisions that may
 * take a while) and calls again: a pull loop, so an asynchronous decision between events needs
 * no buffering of its own. Rejects with the source's failures, or whatever the machine throws
 * (the protocol's own error).
 */
export async function nextHandshakeEvent<Event>(machine: PureHandshake<Event>, source: ChunkSource, deadline: AbortSignal): Promise<Event> {
  for (;;) {
    const event = machine.next();
    if (event !== undefined) return event;
    machine.push(await source.next(deadline));
  }
}
