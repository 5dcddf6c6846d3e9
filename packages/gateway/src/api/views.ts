import type { SessionEvent, SessionRecord, StreamChunk } from "@gatehouse/store";
import { isoFromUs } from "../clock.js";

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
