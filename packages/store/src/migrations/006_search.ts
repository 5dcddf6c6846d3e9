import type { Migration } from "./types.js";

/**
 * Search over the record (issue 14): "every DROP or TRUNCATE that copilot-agent ran last week",
 * newest first, fast on tens of millions of events.
 *
 * - `events` gets the session's `identity_name`, `connection` and `protocol`, copied from
 *   `sessions` by the insert function as each event is stored. A search by identity then walks one
 *   index in time order, instead of gathering every event of every session of that identity and
 *   sorting them (docs/benchmarks.md, "Search", measures both). The copies are not part of the
 *   event's canonical form: the hash chain and `gatehouse verify` only ever read the event's own
 *   fields (store.ts EVENT_COLUMNS), and a session's identity, connection and protocol never
 *   change once it is stored.
 * - Indexes for newest-first keyset paging, `(ts, session_id, seq)` alone and behind identity and
 *   connection; the first replaces the plain `(ts)` index (retention's time scans use it as well).
 * - A partial index over refused attempts (kinds `denied`, `auth_failed`), for `outcome: denied`.
 * - A trigram index on `command` for case-insensitive substring search, when `pg_trgm` can be
 *   installed (a trusted extension since Postgres 13: the database's owner may create it). Without
 *   it — the embedded store, by choice (drivers/pglite.ts) — the search still works, by scanning.
 *   It is the search's dearest index to keep up: about half the insert rate of `gatehouse_record`
 *   (docs/benchmarks.md, "Search"); dropping it trades text search speed for that.
 *
 * Existing events are filled in from their sessions (one pass over the table, at migration).
 */
const INSERT_EVENT_ROWS = `
create or replace function gatehouse_insert_event_rows(batch jsonb, skip_existing boolean) returns int8
language plpgsql security definer as $fn$
declare
  missing text;
  inserted_count int8;
begin
  if batch is null or jsonb_array_length(batch) = 0 then
    return 0;
  end if;
  -- See migration 002: the store makes sure of the partitions before calling, and the two copies
  -- of one statement differ only in ON CONFLICT, so each keeps a cached plan.
  if skip_existing then
    ${insertStatement("on conflict do nothing")}
  else
    ${insertStatement("")}
  end if;
  if missing is not null then
    raise exception 'events for session %, which does not exist', missing
      using errcode = 'foreign_key_violation';
  end if;
  return coalesce(inserted_count, 0);
end
$fn$`;

/**
 * Migration 002's statement, with each event's session's identity, connection and protocol copied
 * in. An event whose session does not exist gets NULLs there, and the whole call fails anyway.
 */
function insertStatement(onConflict: string): string {
  return `with input as (
      select * from jsonb_to_recordset(batch) as e(
        session_id text, seq int8, ts timestamptz, kind text, command text, params jsonb,
        outcome text, details jsonb, duration_us int8, prev_hash text, hash text)
    ), inserted as (
      insert into events (session_id, seq, ts, kind, command, params, outcome, details,
                          duration_us, prev_hash, hash, identity_name, connection, protocol)
      select i.session_id, i.seq, i.ts, i.kind, i.command, i.params, i.outcome, i.details,
             i.duration_us, i.prev_hash, i.hash, s.identity_name, s.connection, s.protocol
      from input i left join sessions s on s.id = i.session_id
      ${onConflict}
      returning session_id
    ), counted as (
      select session_id, count(*) as n from inserted group by session_id
    ), updated as (
      update sessions s set event_count = s.event_count + counted.n
      from counted where s.id = counted.session_id
      returning s.id
    )
    select (select sum(n) from counted)::int8,
           (select counted.session_id from counted left join updated on updated.id = counted.session_id
            where updated.id is null limit 1)
    into inserted_count, missing;`;
}

/**
 * pg_trgm and the trigram index on `command`, or a notice saying why not. The extension may live
 * in another schema (installed there by an administrator beforehand), so its operator class is
 * named with that schema.
 */
const TRIGRAM_INDEX = `
do $do$
declare
  trgm_schema text;
begin
  begin
    create extension if not exists pg_trgm;
  exception when others then
    raise notice 'pg_trgm cannot be installed (%); searching the text of commands will scan instead of using an index', sqlerrm;
  end;
  select n.nspname into trgm_schema
    from pg_extension x join pg_namespace n on n.oid = x.extnamespace
   where x.extname = 'pg_trgm';
  if trgm_schema is not null then
    execute format('create index events_command_trgm_idx on events using gin (command %I.gin_trgm_ops)', trgm_schema);
  end if;
end
$do$`;

export const migration006: Migration = {
  version: 6,
  name: "search",
  statements: [
    "alter table events add column identity_name text, add column connection text, add column protocol text",
    `update events e set identity_name = s.identity_name, connection = s.connection, protocol = s.protocol
       from sessions s where s.id = e.session_id`,
    INSERT_EVENT_ROWS,
    // CREATE OR REPLACE takes the function's settings from the new definition: pin search_path again.
    `do $do$
    begin
      execute format('alter function gatehouse_insert_event_rows(jsonb, boolean) set search_path = %I, pg_temp', current_schema());
    end
    $do$`,
    "drop index events_ts_idx",
    "create index events_newest_idx on events (ts, session_id, seq)",
    "create index events_identity_newest_idx on events (identity_name, ts, session_id, seq)",
    "create index events_connection_newest_idx on events (connection, ts, session_id, seq)",
    "create index sessions_protocol_started_idx on sessions (protocol, started_at desc, id desc)",
    // Refused attempts are few (well under 1% of events) and looked for on their own: a small index,
    // for "outcome=denied" over events and over sessions, that costs only the refusals' inserts.
    "create index events_refused_idx on events (session_id, ts) where kind in ('denied', 'auth_failed')",
    TRIGRAM_INDEX,
  ],
};
