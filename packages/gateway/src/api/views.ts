import type { SessionEvent, SessionRecord } from "@gatehouse/store";
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
