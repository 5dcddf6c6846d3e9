import type { Client } from "ssh2";

/**
 * The live SSH connections to resources, one per gateway session, keyed by the session id the
 * gateway put on the main stream's OpenStream. A channel stream carries the same session id, so
 * it finds the connection its channel belongs to here. A connection is removed as soon as it ends,
 * so a channel for an ended session is refused rather than opened on a dead client.
 */
export class SshConnections {
  readonly #bySession = new Map<string, Client>();

  /** Registers a logged-in client; it leaves the registry by itself when its connection closes. */
  add(sessionId: string, client: Client): void {
    const previous = this.#bySession.get(sessionId);
    // A second main stream for one session is a gateway bug; the newest connection wins, the old one is closed.
    if (previous !== undefined && previous !== client) previous.end();
    this.#bySession.set(sessionId, client);
    client.once("close", () => {
      if (this.#bySession.get(sessionId) === client) this.#bySession.delete(sessionId);
    });
  }

  get(sessionId: string): Client | undefined {
    return this.#bySession.get(sessionId);
  }

  get size(): number {
    return this.#bySession.size;
  }
}
