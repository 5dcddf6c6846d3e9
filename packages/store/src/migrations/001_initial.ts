import type { Migration } from "./types.js";

/**
 * The record: sessions, their events, and access keys.
 *
 * Room left for the evidence work: `events.prev_hash`/`hash` and `sessions.final_hash`/
 * `seal_signature` exist but are filled later; nothing here UPDATEs or DELETEs events, so a
 * write-only role (INSERT, SELECT) can be granted on them; `events` can become a table
 * partitioned by `ts` (a partitioned table keeps its foreign key into the unpartitioned
 * `sessions`; its primary key will then have to include `ts`).
 */
export const migration001: Migration = {
  version: 1,
  name: "initial",
  statements: [
    `create table sessions (
      id                 text primary key,
      identity_name      text not null,
      identity_issuer    text,
      identity_subject   text,
      identity_groups    text[] not null default '{}',
      auth_method        text,
      connection         text not null,
      protocol           text not null,
      connector          text,
      client_address     text,
      client_application text,
      started_at         timestamptz not null,
      ended_at           timestamptz,
      end_reason         text,
      event_count        int8 not null default 0,
      final_hash         text,
      seal_signature     text
    )`,
    // The list view: newest first, optionally for one identity or one connection.
    `create index sessions_started_idx on sessions (started_at desc, id desc)`,
    `create index sessions_identity_started_idx on sessions (identity_name, started_at desc, id desc)`,
    `create index sessions_connection_started_idx on sessions (connection, started_at desc, id desc)`,

    `create table events (
      session_id  text not null references sessions (id),
      seq         int8 not null,
      ts          timestamptz not null,
      kind        text not null,
      command     text,
      params      jsonb,
      outcome     text check (outcome in ('ok', 'error')),
      details     jsonb,
      duration_us int8,
      prev_hash   text,
      hash        text,
      primary key (session_id, seq)
    )`,
    // Time-range scans across sessions (retention, "what ran in the last hour").
    `create index events_ts_idx on events (ts)`,

    `create table access_keys (
      id           text primary key,
      identity     text not null,
      verifiers    jsonb not null,
      created_at   timestamptz not null,
      expires_at   timestamptz,
      revoked_at   timestamptz,
      last_used_at timestamptz
    )`,
    `create index access_keys_identity_idx on access_keys (identity, created_at desc)`,
  ],
};
