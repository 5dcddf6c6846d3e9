import { usOf } from "./time.js";
import type { Identity, Outcome, SessionEvent, SessionRecord } from "./types.js";

// How sessions and events are read back: the columns selected and the rows turned into the
// record's shapes. Shared by the store's reads (store.ts) and its searches (search.ts).

/**
 * The event's own fields, exactly what its hash covers (with the chain's prev_hash and hash).
 * Migration 006's copies of the session's identity, connection and protocol are left out on
 * purpose: `gatehouse verify` recomputes hashes from what this reads.
 */
export const EVENT_COLUMNS = `
  session_id, seq, ${usOf("ts")} as time_us, kind, command, params, outcome, details,
  duration_us, prev_hash, hash`;

export interface EventRow {
  session_id: string;
  seq: number;
  time_us: number;
  kind: string;
  command: string | null;
  params: unknown[] | null;
  outcome: string | null;
  details: Record<string, unknown> | null;
  duration_us: number | null;
  prev_hash: string | null;
  hash: string | null;
}

export function eventOf(row: EventRow): SessionEvent {
  return {
    sessionId: row.session_id,
    seq: row.seq,
    timeUs: row.time_us,
    kind: row.kind,
    command: row.command,
    params: row.params,
    outcome: row.outcome as Outcome | null,
    details: row.details,
    durationUs: row.duration_us,
    prevHash: row.prev_hash,
    hash: row.hash,
  };
}

export const SESSION_COLUMNS = `
  id, identity_name, identity_issuer, identity_subject,
  array_to_json(identity_groups) as identity_groups, auth_method,
  connection, protocol, connector, client_address, client_application,
  ${usOf("started_at")} as started_us, ${usOf("ended_at")} as ended_us, end_reason,
  event_count, final_hash, seal_signature`;

export interface SessionRow {
  id: string;
  identity_name: string;
  identity_issuer: string | null;
  identity_subject: string | null;
  identity_groups: string[];
  auth_method: string | null;
  connection: string;
  protocol: string;
  connector: string | null;
  client_address: string | null;
  client_application: string | null;
  started_us: number;
  ended_us: number | null;
  end_reason: string | null;
  event_count: number;
  final_hash: string | null;
  seal_signature: string | null;
}

export function sessionOf(row: SessionRow): SessionRecord {
  return {
    id: row.id,
    identity: {
      name: row.identity_name,
      issuer: row.identity_issuer,
      subject: row.identity_subject,
      groups: row.identity_groups,
      method: row.auth_method as Identity["method"],
    },
    connection: row.connection,
    protocol: row.protocol,
    connector: row.connector,
    clientAddress: row.client_address,
    clientApplication: row.client_application,
    startedUs: row.started_us,
    endedUs: row.ended_us,
    endReason: row.end_reason,
    eventCount: row.event_count,
    finalHash: row.final_hash,
    sealSignature: row.seal_signature,
  };
}
