import type { EventPage, FoundEvent, SessionEvent, SessionPage, SessionRecord, StreamChunk } from "@gatehouse/store";
import { isoFromUs } from "../clock.js";
import { encodeEventCursor, encodeSessionCursor } from "./search-cursor.js";

// The API's JSON shapes: the record as stored, plus ISO times with µs so a
// person can read them without converting.

export function sessionView(session: SessionRecord) {
  return {
    ...session,
    startedAt: isoFromUs(session.startedUs),
    endedAt: session.endedUs === null ? null : isoFromUs(session.endedUs),
  };
}

export function eventView(event: SessionEvent) {
  return { ...event, time: isoFromUs(event.timeUs) };
}

export type SessionView = ReturnType<typeof sessionView>;
export type EventView = ReturnType<typeof eventView>;

/** An event found by a search: the event as stored, and whose session it is. */
export function foundEventView(event: FoundEvent) {
  return { ...eventView(event), identity: event.identity, connection: event.connection, protocol: event.protocol };
}

export type FoundEventView = ReturnType<typeof foundEventView>;

/** `GET /api/v1/events`: a page of events, and the cursor of the next (null: none). */
export function eventPageView(page: EventPage): { events: FoundEventView[]; nextCursor: string | null } {
  return { events: page.events.map(foundEventView), nextCursor: page.next === null ? null : encodeEventCursor(page.next) };
}

/** `GET /api/v1/sessions`: a page of sessions, and the cursor of the next (null: none). */
export function sessionPageView(page: SessionPage): { sessions: SessionView[]; nextCursor: string | null } {
  return { sessions: page.sessions.map(sessionView), nextCursor: page.next === null ? null : encodeSessionCursor(page.next) };
}

/** A stream chunk in JSON: its data as base64. */
export function chunkView(chunk: StreamChunk) {
  const { data, ...rest } = chunk;
  return { ...rest, data: Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString("base64") };
}

export type ChunkView = ReturnType<typeof chunkView>;

/** A chunk read back from its JSON form (chunkView). */
export function chunkFromView(view: ChunkView): StreamChunk {
  return { ...view, data: Buffer.from(view.data, "base64") };
}
