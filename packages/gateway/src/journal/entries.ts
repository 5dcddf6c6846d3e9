import type { Checkpoint, NewSession, SessionClose, SessionEvent, StreamChunk } from "@gatehouse/store";
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
 * - `stream`: a session opened a byte stream (not shipped: recovery needs it to end the stream).
 * - `chunk`: one chunk of a stream with its place in the stream's chain (shipped). On disk its
 *   data is base64 (see chunkPayload), not JSON-escaped text: a third more bytes at worst, where
 *   escaping terminal output (control characters, binary) could take six times as many.
 *   A stream ends with the session event whose `details.stream` summarizes it.
 * A session's checkpoint travels in the same entry as its open or close, so no crash can keep
 * one without the other.
 */
export type JournalEntry =
  | { t: "checkpoint"; sessions: SessionState[]; chain?: ChainHead }
  | { t: "open"; session: NewSession; genesis: string; checkpoint?: Checkpoint }
  | { t: "start"; sid: string; ref: number; draft: EventDraft }
  | { t: "event"; event: SessionEvent; ref?: number }
  | { t: "close"; close: JournalClose; checkpoint?: Checkpoint }
  | { t: "signed"; checkpoint: Checkpoint }
  | { t: "stream"; sid: string; stream: StreamState }
  | { t: "chunk"; chunk: StreamChunk };

/** An open stream as recovery needs it, to record its summary. */
export interface StreamState {
  streamId: number;
  kind: "shell" | "exec";
  channel: number;
  term: string | null;
  cols: number | null;
  rows: number | null;
  startedUs: number;
  /** The stream's chain: chunks journaled, the last one's hash (its start while none). */
  chunks: number;
  lastHash: string;
  /** Bytes of the journaled chunks each way. */
  bytesIn: number;
  bytesOut: number;
}

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
  /** Streams opened and not yet ended by a summary event. */
  streams?: StreamState[];
  /** The last stream id given out. */
  lastStreamId?: number;
}

/**
 * The open sessions as the journal's entries describe them: updated for every entry appended
 * (and replayed at recovery), written out whole as each segment's checkpoint.
 */
export class JournalState {
  private readonly sessions = new Map<string, { state: SessionState; started: Map<number, EventDraft>; streams: Map<number, StreamState> }>();
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
        this.add({ session: entry.session, genesis: entry.genesis, seq: 0, lastHash: entry.genesis, started: [], streams: [], lastStreamId: 0 });
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
        // The event that summarizes a stream ends it.
        const streamId = (entry.event.details?.["stream"] as { streamId?: unknown } | undefined)?.streamId;
        if (typeof streamId === "number") open.streams.delete(streamId);
        return;
      }
      case "stream": {
        const open = this.sessions.get(entry.sid);
        if (!open) return;
        open.streams.set(entry.stream.streamId, { ...entry.stream });
        open.state.lastStreamId = Math.max(open.state.lastStreamId ?? 0, entry.stream.streamId);
        return;
      }
      case "chunk": {
        const { chunk } = entry;
        const stream = this.sessions.get(chunk.sessionId)?.streams.get(chunk.streamId);
        if (!stream) return;
        stream.chunks = chunk.seq;
        stream.lastHash = chunk.hash;
        if (chunk.direction === "i") stream.bytesIn += chunk.data.byteLength;
        else if (chunk.direction !== "r") stream.bytesOut += chunk.data.byteLength;
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
    // Stream fields only for sessions that opened a stream: every segment's checkpoint holds this.
    return [...this.sessions.values()].map(({ state, started, streams }) => {
      const { streams: _none, lastStreamId, ...rest } = state;
      return {
        ...rest,
        started: [...started].map(([ref, draft]) => ({ ref, draft })),
        ...(lastStreamId ? { lastStreamId, streams: [...streams.values()].map((s) => ({ ...s })) } : {}),
      };
    });
  }

  get openSessions(): number {
    return this.sessions.size;
  }

  private signed(checkpoint: Checkpoint | undefined): void {
    if (checkpoint) this.chain = { seq: checkpoint.seq, hash: checkpoint.hash };
  }

  private add(state: SessionState): void {
    this.sessions.set(state.session.id, {
      state: { ...state, started: [], streams: [] },
      started: new Map(state.started.map((s) => [s.ref, s.draft])),
      streams: new Map((state.streams ?? []).map((s) => [s.streamId, { ...s }])),
    });
  }
}

/**
 * An event's journal payload: `{"t":"event","ref":…,"prevHash":…,"hash":…,"canonical":[…]}`,
 * where `canonical` is the event's canonical encoding, already made for its hash.
 */
export function eventPayload(canonical: string, event: { prevHash: string; hash: string }, ref: number | undefined): string {
  return `{"t":"event"${ref === undefined ? "" : `,"ref":${ref}`},"prevHash":"${event.prevHash}","hash":"${event.hash}","canonical":${canonical}}`;
}

/** A chunk's journal payload: its fields, with the data as base64. */
export function chunkPayload(chunk: StreamChunk): string {
  const data = Buffer.from(chunk.data.buffer, chunk.data.byteOffset, chunk.data.byteLength).toString("base64");
  return `{"t":"chunk","sid":${JSON.stringify(chunk.sessionId)},"stream":${chunk.streamId},"seq":${chunk.seq},"timeUs":${chunk.timeUs},"dir":"${chunk.direction}","prevHash":"${chunk.prevHash}","hash":"${chunk.hash}","data":"${data}"}`;
}

/** A journal payload as an entry: an event's canonical encoding turned back into the event. */
export function decodeEntry(payload: string): JournalEntry {
  const parsed = JSON.parse(payload) as JournalEntry | StoredEvent | StoredChunk;
  if (parsed.t === "chunk" && "dir" in parsed) {
    const chunk: StreamChunk = {
      sessionId: parsed.sid,
      streamId: parsed.stream,
      seq: parsed.seq,
      timeUs: parsed.timeUs,
      direction: parsed.dir,
      data: Buffer.from(parsed.data, "base64"),
      prevHash: parsed.prevHash,
      hash: parsed.hash,
    };
    return { t: "chunk", chunk };
  }
  if (parsed.t !== "event" || !("canonical" in parsed)) return parsed as JournalEntry;
  const [tag, sessionId, seq, timeUs, kind, command, params, outcome, details, durationUs] = parsed.canonical;
  if (tag !== EVENT_TAG) throw new Error(`a journaled event is not a ${EVENT_TAG} encoding`);
  const event: SessionEvent = { sessionId, seq, timeUs, kind, command, params, outcome, details, durationUs, prevHash: parsed.prevHash, hash: parsed.hash };
  return parsed.ref === undefined ? { t: "event", event } : { t: "event", event, ref: parsed.ref };
}

interface StoredChunk {
  t: "chunk";
  sid: string;
  stream: number;
  seq: number;
  timeUs: number;
  dir: StreamChunk["direction"];
  prevHash: string;
  hash: string;
  data: string;
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
