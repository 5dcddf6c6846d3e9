import type { Migration } from "./types.js";

/**
 * Streams: the byte streams of interactive sessions (SSH shells and execs, kubectl exec), chunked
 * and time-stamped, one hash chain per stream (docs/evidence.md, "Streams"). A chunk's direction
 * is 'i' (client → resource), 'o' (resource stdout), 'e' (resource stderr) or 'r' (a terminal
 * resize, data "COLSxROWS"). The chain's end (count and final hash) is in the session's own event
 * chain: the event that ends the stream carries it in `details.stream`, so the seal covers it.
 *
 * Not partitioned, unlike events: a stream's bytes belong to one session and go with it, and
 * `gatehouse retention` removes a retained session's chunks by session id (the same statement
 * that removes its straddling events). A table with a few rows per session per MiB stays cheap to
 * delete from; should stores grow past that, the table can be partitioned like events later
 * without changing what is hashed.
 *
 * The gateway's role may INSERT and SELECT here and nothing more. `gatehouse_record` is replaced
 * to take `chunks[]` too (data as base64 in the JSON batch): one already stored (same session,
 * stream and seq) is skipped, so a replayed shipment changes nothing.
 */
const CREATE_TABLE = `create table stream_chunks (
  session_id text not null,
  stream_id  int4 not null check (stream_id >= 1),
  seq        int8 not null check (seq >= 1),
  ts         timestamptz not null,
  direction  char(1) not null check (direction in ('i', 'o', 'e', 'r')),
  data       bytea not null,
  prev_hash  text not null,
  hash       text not null,
  primary key (session_id, stream_id, seq)
)`;

const RECORD = `
create or replace function gatehouse_record(batch jsonb) returns jsonb
language plpgsql security definer as $fn$
declare
  session_count int8 := 0;
  event_count int8 := 0;
  closed_count int8 := 0;
  checkpoint_count int8 := 0;
  chunk_count int8 := 0;
  not_closed jsonb := '[]'::jsonb;
  conflicts jsonb := '[]'::jsonb;
  c record;
  status text;
begin
  if jsonb_array_length(coalesce(batch->'sessions', '[]'::jsonb)) > 0 then
    insert into sessions (id, identity_name, identity_issuer, identity_subject, identity_groups,
                          auth_method, connection, protocol, connector, client_address,
                          client_application, started_at)
    select id, identity_name, identity_issuer, identity_subject,
           coalesce(array(select jsonb_array_elements_text(identity_groups)), '{}'),
           auth_method, connection, protocol, connector, client_address, client_application,
           started_at
    from jsonb_to_recordset(batch->'sessions') as s(
      id text, identity_name text, identity_issuer text, identity_subject text,
      identity_groups jsonb, auth_method text, connection text, protocol text, connector text,
      client_address text, client_application text, started_at timestamptz)
    on conflict (id) do nothing;
    get diagnostics session_count = row_count;
  end if;
  event_count := gatehouse_insert_event_rows(coalesce(batch->'events', '[]'::jsonb), true);
  for c in
    select * from jsonb_to_recordset(coalesce(batch->'closes', '[]'::jsonb)) as x(
      id text, ended_at timestamptz, end_reason text, final_hash text, seal_signature text)
  loop
    status := gatehouse_close_session(c.id, c.ended_at, c.end_reason, c.final_hash, c.seal_signature);
    if status = 'closed' then
      closed_count := closed_count + 1;
    else
      not_closed := not_closed || jsonb_build_object('id', c.id, 'status', status);
    end if;
  end loop;
  if jsonb_array_length(coalesce(batch->'chunks', '[]'::jsonb)) > 0 then
    insert into stream_chunks (session_id, stream_id, seq, ts, direction, data, prev_hash, hash)
    select session_id, stream_id, seq, ts, direction, decode(data, 'base64'), prev_hash, hash
    from jsonb_to_recordset(batch->'chunks') as k(
      session_id text, stream_id int4, seq int8, ts timestamptz, direction text, data text,
      prev_hash text, hash text)
    on conflict (session_id, stream_id, seq) do nothing;
    get diagnostics chunk_count = row_count;
  end if;
  if jsonb_array_length(coalesce(batch->'checkpoints', '[]'::jsonb)) > 0 then
    with input as (
      select * from jsonb_to_recordset(batch->'checkpoints') as k(
        gateway text, seq int8, ts timestamptz, kind text, session_id text, details jsonb,
        prev_hash text, hash text, signature text)
    ), inserted as (
      insert into checkpoints (gateway, seq, ts, kind, session_id, details, prev_hash, hash, signature)
      select gateway, seq, ts, kind, session_id, details, prev_hash, hash, signature from input
      on conflict (gateway, seq) do nothing
      returning 1
    )
    select (select count(*) from inserted),
           coalesce((select jsonb_agg(jsonb_build_object('gateway', i.gateway, 'seq', i.seq))
                     from input i join checkpoints k on k.gateway = i.gateway and k.seq = i.seq
                     where k.hash <> i.hash), '[]'::jsonb)
      into checkpoint_count, conflicts;
  end if;
  return jsonb_build_object('sessions', session_count, 'events', event_count,
                            'closed', closed_count, 'notClosed', not_closed,
                            'checkpoints', checkpoint_count, 'checkpointConflicts', conflicts,
                            'chunks', chunk_count);
end
$fn$`;

const GRANTS = `
do $do$
begin
  grant select, insert on stream_chunks to gatehouse_gateway;
exception when undefined_object then
  raise notice 'role gatehouse_gateway does not exist; its grant on stream_chunks was skipped';
end
$do$`;

export const migration004: Migration = {
  version: 4,
  name: "streams",
  statements: [
    CREATE_TABLE,
    RECORD,
    // CREATE OR REPLACE takes the function's settings from the new definition: pin search_path again.
    `do $do$
    begin
      execute format('alter function gatehouse_record(jsonb) set search_path = %I, pg_temp', current_schema());
    end
    $do$`,
    GRANTS,
  ],
};
