import type { EventCursor, SessionCursor } from "@gatehouse/store";
import { BadParameter } from "./session-query.js";

// The `cursor` of a search page: opaque to clients, a keyset position to the store (the last item
// of the page before). A letter says which list it belongs to, so an events cursor given to the
// sessions list is refused rather than read as something else.

const EVENTS = "e";
const SESSIONS = "s";

export function encodeEventCursor(cursor: EventCursor): string {
  return encode(EVENTS, [cursor.timeUs, cursor.sessionId, cursor.seq]);
}

export function decodeEventCursor(text: string): EventCursor {
  const value = decode(EVENTS, text);
  const [timeUs, sessionId, seq] = value;
  if (value.length !== 3 || !Number.isSafeInteger(timeUs) || typeof sessionId !== "string" || !Number.isSafeInteger(seq)) throw unreadable(text);
  return { timeUs: timeUs as number, sessionId, seq: seq as number };
}

export function encodeSessionCursor(cursor: SessionCursor): string {
  return encode(SESSIONS, [cursor.startedUs, cursor.id]);
}

export function decodeSessionCursor(text: string): SessionCursor {
  const value = decode(SESSIONS, text);
  const [startedUs, id] = value;
  if (value.length !== 2 || !Number.isSafeInteger(startedUs) || typeof id !== "string") throw unreadable(text);
  return { startedUs: startedUs as number, id };
}

function encode(list: string, position: unknown[]): string {
  return `${list}.${Buffer.from(JSON.stringify(position)).toString("base64url")}`;
}

function decode(list: string, text: string): unknown[] {
  if (!text.startsWith(`${list}.`)) throw unreadable(text);
  try {
    const value: unknown = JSON.parse(Buffer.from(text.slice(list.length + 1), "base64url").toString("utf8"));
    if (Array.isArray(value)) return value;
  } catch {
    // reported below
  }
  throw unreadable(text);
}

function unreadable(text: string): BadParameter {
  const shown = text.length > 40 ? `${text.slice(0, 40)}…` : text;
  return new BadParameter("cursor", `expected the nextCursor of a previous page of this list, got "${shown}"`);
}
