import type { NewSession, SessionEvent } from "@gatehouse/store";

// The canonical encoding the hash chain and the seal are computed over, defined once here and
// documented in docs/evidence.md. `gatehouse verify` recomputes exactly this from the stored rows,
// so every field is encoded the way it reads back from the store:
//
//   header(session) = JCS([ "gatehouse-session-v1", id, identity.name, identity.issuer,
//                           identity.subject, identity.groups, identity.method, connection,
//                           protocol, connector, clientAddress, clientApplication, startedUs ])
//   event(e)        = JCS([ "gatehouse-event-v1", sessionId, seq, timeUs, kind, command, params,
//                           outcome, details, durationUs ])
//   seal(s)         = JCS([ "gatehouse-seal-v1", sessionId, genesis, eventCount, finalHash,
//                           endedUs, endReason ])
//
// JCS is the JSON Canonicalization Scheme (RFC 8785): no whitespace, object keys sorted by their
// UTF-16 code units, numbers and strings as ECMAScript's JSON.stringify writes them. A value that
// is missing is `null`; `groups` missing is `[]`. Object members whose value is `undefined` are
// left out and non-finite numbers are `null`, as JSON.stringify (and so the store) does.

export const SESSION_TAG = "gatehouse-session-v1";
export const EVENT_TAG = "gatehouse-event-v1";
export const SEAL_TAG = "gatehouse-seal-v1";

/** RFC 8785 canonical JSON of a JSON-compatible value. Throws on a bigint (the store refuses it too). */
export function canonicalJson(value: unknown): string {
  switch (typeof value) {
    case "string":
      return JSON.stringify(value);
    case "number":
      return Number.isFinite(value) ? JSON.stringify(value) : "null";
    case "boolean":
      return value ? "true" : "false";
    case "bigint":
      throw new TypeError("a bigint has no JSON form");
    case "object": {
      if (value === null) return "null";
      const withJson = value as { toJSON?: () => unknown };
      if (typeof withJson.toJSON === "function") return canonicalJson(withJson.toJSON());
      if (Array.isArray(value)) {
        let out = "[";
        for (let i = 0; i < value.length; i++) {
          if (i > 0) out += ",";
          const item: unknown = value[i];
          out += item === undefined || typeof item === "function" || typeof item === "symbol" ? "null" : canonicalJson(item);
        }
        return `${out}]`;
      }
      const record = value as Record<string, unknown>;
      // Default sort compares UTF-16 code units, which is what RFC 8785 asks for.
      const keys = Object.keys(record).sort();
      let out = "{";
      let first = true;
      for (const key of keys) {
        const item = record[key];
        if (item === undefined || typeof item === "function" || typeof item === "symbol") continue;
        if (!first) out += ",";
        first = false;
        out += `${JSON.stringify(key)}:${canonicalJson(item)}`;
      }
      return `${out}}`;
    }
    default:
      // undefined, functions, symbols at the top level: JSON has no form for them.
      return "null";
  }
}

/** The session fields the chain starts from (its genesis), canonically encoded. */
export function canonicalHeader(session: NewSession): string {
  const { identity } = session;
  return canonicalJson([
    SESSION_TAG,
    session.id,
    identity.name,
    identity.issuer ?? null,
    identity.subject ?? null,
    identity.groups ?? [],
    identity.method ?? null,
    session.connection,
    session.protocol,
    session.connector ?? null,
    session.clientAddress ?? null,
    session.clientApplication ?? null,
    session.startedUs,
  ]);
}

/** One event, canonically encoded (without its hashes: they are what this is hashed into). */
export function canonicalEvent(event: SessionEvent): string {
  return canonicalJson([
    EVENT_TAG,
    event.sessionId,
    event.seq,
    event.timeUs,
    event.kind,
    event.command ?? null,
    event.params ?? null,
    event.outcome ?? null,
    event.details ?? null,
    event.durationUs ?? null,
  ]);
}

export interface SealFields {
  sessionId: string;
  /** The chain's start: the hash of the session header. */
  genesis: string;
  eventCount: number;
  /** The last event's hash; the genesis for a session without events. */
  finalHash: string;
  endedUs: number;
  endReason: string;
}

/** What the gateway's key signs when it closes a session. */
export function canonicalSeal(seal: SealFields): string {
  return canonicalJson([SEAL_TAG, seal.sessionId, seal.genesis, seal.eventCount, seal.finalHash, seal.endedUs, seal.endReason]);
}
