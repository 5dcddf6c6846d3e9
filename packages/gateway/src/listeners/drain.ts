import type { SocketServer } from "./socket-server.js";

/**
 * How long sessions ended by a shutdown get, after the grace period, to take their farewell
 * (a Postgres client reads its 57P01 and closes) before their sockets are cut. Part of the
 * "grace period plus 2 s" a stopping gateway promises to exit within.
 */
export const FAREWELL_MS = 1_000;

/**
 * The sessions a listener is relaying, each with its way to end itself for a shutdown (a
 * protocol's own farewell, such as Postgres's FATAL 57P01, then closing both sides).
 */
export class OpenSessions {
  private readonly enders = new Set<() => void>();
  private ending = false;

  /** True once the grace period is over: whatever ends now ends because the gateway stops. */
  get shuttingDown(): boolean {
    return this.ending;
  }

  /** Registers a session's ender; returns its removal. A session that starts after the grace is ended at once. */
  add(end: () => void): () => void {
    this.enders.add(end);
    if (this.ending) end();
    return () => this.enders.delete(end);
  }

  endAll(): void {
    this.ending = true;
    for (const end of [...this.enders]) end();
  }
}

/**
 * A listener's part of a graceful stop: take no new clients, let open sessions finish until
 * `grace` aborts, end the rest in their protocol's words, give them FAREWELL_MS to go, then cut
 * what is left and wait for every session to be recorded as ended.
 */
export async function drainListener(server: SocketServer, sessions: OpenSessions, grace: AbortSignal): Promise<void> {
  server.stopAccepting();
  if (!(await server.whenIdle(grace))) {
    sessions.endAll();
    const farewell = new AbortController();
    const timer = setTimeout(() => farewell.abort(), FAREWELL_MS);
    await server.whenIdle(farewell.signal);
    clearTimeout(timer);
  }
  await server.close();
}
