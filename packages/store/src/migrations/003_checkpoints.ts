import type { Migration } from "./types.js";

/**
 * Checkpoints: each gateway's own signed, hash-chained log of session openings, seals, retention
 * cuts and live-session states (docs/evidence.md, "Checkpoints"). A chain is keyed by the key id of
 * the gateway that signed it; `seq` counts 1, 2, 3… within it. The gateway's role may INSERT and
 * SELECT here and nothing more, so what it wrote stays as written; only the owner can delete, and
 * `gatehouse verify` then sees the gap, or the sessions and seals the chain speaks of.
 *
 * `gatehouse_record` is replaced to take `checkpoints[]` too (after the closes, in the same
 * statement): one already stored (same gateway and seq) is skipped, so a replayed shipment changes
 * nothing; one whose hash differs from the stored one is reported in `checkpointConflicts`.
 */
const CREATE_TABLE = `create table checkpoints (
  gateway    text not null,
  seq        int8 not null check (seq >= 1),
  ts         timestamptz not null,
  kind       text not null,
  session_id text,
  details    jsonb,
  prev_hash  text not null,
  hash       text not null,
  signature  text not null,
  primary key (gateway, seq)
)`;

const RECORD = `
create or replace function gatehouse_record(batch jsonb) returns jsonb
language plpgsql security definer as $fn$
declare
  session_count int8 := 0;
  event_count int8 := 0;
  closed_count int8 := 0;
  checkpoint_count int8 := 0;
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
                            'checkpoints', checkpoint_count, 'checkpointConflicts', conflicts);
end
$fn$`;

const GRANTS = `
do $do$
begin
  grant select, insert on checkpoints to gatehouse_gateway;
exception when undefined_object then
  raise notice 'role gatehouse_gateway does not exist; its grant on checkpoints was skipped';
end
$do$`;

export const migration003: Migration = {
  version: 3,
  name: "checkpoints",
  statements: [
    CREATE_TABLE,
    "create index checkpoints_session_idx on checkpoints (session_id)",
    RECORD,
    // CREATE OR REPLACE keeps the function's grants but takes its settings from the new
    // definition: pin search_path again (see migration 002).
    `do $do$
    begin
      execute format('alter function gatehouse_record(jsonb) set search_path = %I, pg_temp', current_schema());
    end
    $do$`,
    GRANTS,
  ],
};
