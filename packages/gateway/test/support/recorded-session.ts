import type { SessionEvent, SessionRecord, Store } from "@gatehouse/store";

export type Recorded = SessionRecord & { events: SessionEvent[] };

/** The ended session whose client program is `program`, with all its events, once the store has them (or throws after `timeoutMs`). */
export async function recordedSession(store: Store, program: string, timeoutMs = 10_000): Promise<Recorded> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = (await store.sessions.list({ limit: 1000 })).find((s) => s.clientApplication === program && s.endedUs !== null);
    if (found) {
      const full = await store.sessions.get(found.id);
      if (full && full.events.length >= full.session.eventCount && full.events.length > 0) return { ...full.session, events: full.events };
    }
    if (Date.now() > deadline) throw new Error(`no ended session for ${program}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
