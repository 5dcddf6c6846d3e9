import type { Checkpoint, NewSession, SessionClose, SessionEvent } from "@gatehouse/store";
import { EVENT_TAG } from "../evidence/canonical.js";
import type { ChainHead } from "../evidence/checkpoints.js";

/** An event before it has its place in the chain (seq, hashes): what a started command knows. */
export type EventDraft = Omit<SessionEvent, "sessionId" | "seq" | "prevHash" | "hash">;

/** A close as journaled: the store's close plus the count the seal was made over. */
export interface JournalClose extends SessionClose {
  eventCount: number;
}

/**
 * What the journal holds, one JSON payload per frame (`t` tells which):
 * - `checkpoint`: first entry of every segment; the open sessions' state at that point (and where
 *   the gateway's checkpoint chain stands), so a segment whose entries are all in the store can be
 *   deleted without losing what recovery needs. Not to be confused with the gateway's signed
 *   checkpoints (evidence/checkpoints.ts), which `open`, `close` and `signed` carry.
 * - `open`: a session began (shipped as a sessions row), with the signed checkpoint of its opening.
 * - `start`: write-ahead — a command is about to be relayed (not shipped; after a crash, a start
 *   without its event becomes an `interrupted` event).
 * - `event`: an event with its place in the chain (shipped); `ref` resolves a `start`. On disk it
 *   is its canonical encoding (evidence/canonical.ts) — the very text its hash covers, made once —
 *   with its hashes: see eventPayload / decodeEntry.
 * - `close`: the session ended and was sealed (shipped), with the signed checkpoint of its seal.
 * - `signed`: a signed checkpoint on its own (a retention cut, the live sessions' state).
 * A session's checkpoint travels in the same entry as its open or close, so no crash can keep
 * one without the other.
 */
export type JournalEntry =
  | { t: "checkpoint"; sessions: SessionState[]; chain?: ChainHead }
  | { t: "open"; session: NewSession; genesis: string; checkpoint?: Checkpoint }
  | { t: "start"; sid: string; ref: number; draft: EventDraft }
  | { t: "event"; event: SessionEvent; ref?: number }
  | { t: "close"; close: JournalClose; checkpoint?: Checkpoint }
  | { t: "signed"; checkpoint: Checkpoint };

/** Where an open session's chain stands, as recovery needs it. */
export interface SessionState {
  session: NewSession;
  genesis: string;
  /** The last seq given out (0: none yet). */
  seq: number;
  /** The last event's hash (the genesis while there is none). */
  lastHash: string;
  /** Commands journaled as started and not yet recorded, oldest first. */
  started: { ref: number; draft: EventDraft }[];
}

/**
 * The open sessions as the journal's entries describe them: updated for every entry appended
 * (and replayed at recovery), written out whole as each segment's checkpoint.
 */
export class JournalState {
  private readonly sessions = new Map<string, { state: SessionState; started: Map<number, EventDraft> }>();
  /** The last signed checkpoint journaled; undefined before the first. */
  chain: ChainHead | undefined;

  apply(entry: JournalEntry): void {
    switch (entry.t) {
      case "checkpoint":
        this.sessions.clear();
        for (const s of entry.sessions) this.add(s);
        if (entry.chain) this.chain = entry.chain;
        return;
      case "open":
        this.add({ session: entry.session, genesis: entry.genesis, seq: 0, lastHash: entry.genesis, started: [] });
        this.signed(entry.checkpoint);
        return;
      case "signed":
        this.signed(entry.checkpoint);
        return;
      case "start": {
        this.sessions.get(entry.sid)?.started.set(entry.ref, entry.draft);
        return;
      }
      case "event": {
        const open = this.sessions.get(entry.event.sessionId);
        if (!open) return;
        open.state.seq = entry.event.seq;
        open.state.lastHash = entry.event.hash ?? open.state.lastHash;
        if (entry.ref !== undefined) open.started.delete(entry.ref);
        return;
      }
      case "close":
        this.sessions.delete(entry.close.id);
        this.signed(entry.checkpoint);
        return;
      default: {
        const never: never = entry;
        throw new Error(`unknown journal entry ${JSON.stringify(never)}`);
      }
    }
  }

  /** Every open session's state, started commands oldest first. */
  snapshot(): SessionState[] {
    return [...this.sessions.values()].map(({ state, started }) => ({
      ...state,
      started: [...started].map(([ref, draft]) => ({ ref, draft })),
    }));
  }

  get openSessions(): number {
    return this.sessions.size;
  }

  private signed(checkpoint: Checkpoint | undefined): void {
    if (checkpoint) this.chain = { seq: checkpoint.seq, hash: checkpoint.hash };
  }

  private add(state: SessionState): void {
    this.sessions.set(state.session.id, { state: { ...state, started: [] }, started: new Map(state.started.map((s) => [s.ref, s.draft])) });
  }
}

/**
 * An event's journal payload: `{"t":"event","ref":…,"prevHash":…,"hash":…,"canonical":[…]}`,
 * where `canonical` is the event's canonical encoding, already made for its hash.
 */
export function eventPayload(canonical: string, event: { prevHash: string; hash: string }, ref: number | undefined): string {
  return `{"t":"event"${ref === undefined ? "" : `,"ref":${ref}`},"prevHash":"${event.prevHash}","hash":"${event.hash}","canonical":${canonical}}`;
}

/** A journal payload as an entry: an event's canonical encoding turned back into the event. */
export function decodeEntry(payload: string): JournalEntry {
  const parsed = JSON.parse(payload) as JournalEntry | StoredEvent;
  if (parsed.t !== "event" || !("canonical" in parsed)) return parsed;
  const [tag, sessionId, seq, timeUs, kind, command, params, outcome, details, durationUs] = parsed.canonical;
  if (tag !== EVENT_TAG) throw new Error(`a journaled event is not a ${EVENT_TAG} encoding`);
  const event: SessionEvent = { sessionId, seq, timeUs, kind, command, params, outcome, details, durationUs, prevHash: parsed.prevHash, hash: parsed.hash };
  return parsed.ref === undefined ? { t: "event", event } : { t: "event", event, ref: parsed.ref };
}

interface StoredEvent {
  t: "event";
  ref?: number;
  prevHash: string;
  hash: string;
  canonical: [
    tag: string,
    sessionId: string,
    seq: number,
    timeUs: number,
    kind: string,
    command: string | null,
    params: unknown[] | null,
    outcome: SessionEvent["outcome"],
    details: Record<string, unknown> | null,
    durationUs: number | null,
  ];
}
