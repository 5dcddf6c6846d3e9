import type { Migration } from "./types.js";

/**
 * Evidence: the record made append-only for the gateway, and events kept in time partitions.
 *
 * - `events` becomes a table partitioned by month of `ts` (UTC), so retention drops whole
 *   partitions instead of deleting rows. Its primary key must include the partition key, so it is
 *   (session_id, seq, ts): a replayed event (same session, seq and ts) is still a conflict, which
 *   is what makes the journal's replay idempotent. Partitions are created on demand by
 *   `gatehouse_ensure_event_partitions` (callable by the gateway's role), which the store calls
 *   for every month it has not seen yet before inserting (there is no default partition: it
 *   would have to be scanned whenever a new month's partition is attached).
 * - The role `gatehouse_gateway` (NOLOGIN; grant it to the login role the gateway uses) may
 *   INSERT and SELECT sessions and events and nothing more on them. Counting events into
 *   `sessions.event_count` and closing/sealing a session go through SECURITY DEFINER functions
 *   that can only do that: add events, and fill `ended_at`/`end_reason`/`final_hash`/
 *   `seal_signature` of a session that has none yet. So even the gateway's own credentials cannot
 *   rewrite history; only the owner (who runs migrations and `gatehouse retention`) can.
 * - `gatehouse_record` takes one shipment from the gateway's journal (new sessions, events,
 *   closes) in one statement, idempotently: replaying it after a lost acknowledgement changes
 *   nothing and reports what was already there.
 *
 * The SECURITY DEFINER functions pin `search_path` to the schema they were created in (plus
 * pg_temp last), so a caller cannot redirect their table names to objects of its own.
 */

/** Creates the monthly partitions of `events` covering [from_ts, to_ts]; returns how many it created. */
const ENSURE_PARTITIONS = `
create function gatehouse_ensure_event_partitions(from_ts timestamptz, to_ts timestamptz) returns int
language plpgsql security definer as $fn$
declare
  month timestamp;
  last_month timestamp;
  name text;
  created int := 0;
begin
  if from_ts is null or to_ts is null then
    return 0;
  end if;
  month := date_trunc('month', from_ts at time zone 'UTC');
  last_month := date_trunc('month', to_ts at time zone 'UTC');
  while month <= last_month loop
    name := 'events_y' || to_char(month, 'YYYY') || 'm' || to_char(month, 'MM');
    if to_regclass(quote_ident(name)) is null then
      begin
        execute format('create table %I partition of events for values from (%L) to (%L)',
          name, (month at time zone 'UTC'), ((month + interval '1 month') at time zone 'UTC'));
        created := created + 1;
      exception when duplicate_table or unique_violation then
        -- Another transaction created it between our check and our CREATE.
        null;
      end;
    end if;
    month := month + interval '1 month';
  end loop;
  return created;
end
$fn$`;

/**
 * Inserts events given as a JSON array of rows and adds them to their sessions' event_count.
 * skip_existing: an event already stored (same session, seq and ts) is left alone and not
 * counted — the replay case; otherwise it fails the whole call with 23505. An event whose session
 * does not exist fails it with 23503, as a foreign key would (see migration 001 for why there is
 * none). Returns the number of events inserted.
 */
const INSERT_EVENT_ROWS = `
create function gatehouse_insert_event_rows(batch jsonb, skip_existing boolean) returns int8
language plpgsql security definer as $fn$
declare
  missing text;
  inserted_count int8;
begin
  if batch is null or jsonb_array_length(batch) = 0 then
    return 0;
  end if;
  -- The partitions must exist: the store makes sure of it before calling (it remembers the months
  -- it has seen, so a batch costs no extra pass over its rows), and on a "no partition" error
  -- (23514) makes them and calls again.
  -- Two copies of one statement, differing only in ON CONFLICT, so each keeps a cached plan.
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

/** Inserts, counts into sessions.event_count, and finds a session that did not exist — one statement. */
function insertStatement(onConflict: string): string {
  return `with input as (
      select * from jsonb_to_recordset(batch) as e(
        session_id text, seq int8, ts timestamptz, kind text, command text, params jsonb,
        outcome text, details jsonb, duration_us int8, prev_hash text, hash text)
    ), inserted as (
      insert into events (session_id, seq, ts, kind, command, params, outcome, details,
                          duration_us, prev_hash, hash)
      select session_id, seq, ts, kind, command, params, outcome, details,
             duration_us, prev_hash, hash
      from input
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

/** The store's original entry point, kept: all or nothing, a stored event is a conflict. */
const INSERT_EVENTS = `
create function gatehouse_insert_events(batch jsonb) returns void
language plpgsql security definer as $fn$
begin
  perform gatehouse_insert_event_rows(batch, false);
end
$fn$`;

/**
 * Closes and seals a session that is still open. Returns 'closed', 'already_closed' or
 * 'not_found'; never changes a session that already has an end.
 */
const CLOSE_SESSION = `
create function gatehouse_close_session(session_id text, ended_at timestamptz, end_reason text,
                                        final_hash text, seal_signature text) returns text
language plpgsql security definer as $fn$
begin
  update sessions s
     set ended_at = gatehouse_close_session.ended_at,
         end_reason = gatehouse_close_session.end_reason,
         final_hash = gatehouse_close_session.final_hash,
         seal_signature = gatehouse_close_session.seal_signature
   where s.id = gatehouse_close_session.session_id and s.ended_at is null;
  if found then
    return 'closed';
  end if;
  if exists (select 1 from sessions s where s.id = gatehouse_close_session.session_id) then
    return 'already_closed';
  end if;
  return 'not_found';
end
$fn$`;

/**
 * One shipment from the gateway's journal, idempotent: sessions (skipped when the id exists),
 * then events (skipped when stored), then closes (an already closed session is reported, not
 * changed). Keys: sessions[] (id, identity_name, identity_issuer, identity_subject,
 * identity_groups, auth_method, connection, protocol, connector, client_address,
 * client_application, started_at), events[] (as gatehouse_insert_event_rows), closes[] (id,
 * ended_at, end_reason, final_hash, seal_signature). Returns
 * {"sessions": n, "events": n, "closed": n, "notClosed": [{"id", "status"}]}.
 */
const RECORD = `
create function gatehouse_record(batch jsonb) returns jsonb
language plpgsql security definer as $fn$
declare
  session_count int8 := 0;
  event_count int8 := 0;
  closed_count int8 := 0;
  not_closed jsonb := '[]'::jsonb;
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
  return jsonb_build_object('sessions', session_count, 'events', event_count,
                            'closed', closed_count, 'notClosed', not_closed);
end
$fn$`;

const DEFINER_FUNCTIONS = [
  "gatehouse_ensure_event_partitions(timestamptz, timestamptz)",
  "gatehouse_insert_event_rows(jsonb, boolean)",
  "gatehouse_insert_events(jsonb)",
  "gatehouse_close_session(text, timestamptz, text, text, text)",
  "gatehouse_record(jsonb)",
];

/**
 * The gateway's role. Roles belong to the whole cluster, so several gatehouse databases share
 * it: create it when missing (two databases migrating at once may race: the loser's error is
 * ignored), and skip it with a notice when the migrating user may not create roles — then an
 * administrator creates it, and the grants below are re-run by hand (docs/evidence.md).
 */
const CREATE_ROLE = `
do $do$
begin
  if not exists (select 1 from pg_roles where rolname = 'gatehouse_gateway') then
    begin
      create role gatehouse_gateway nologin;
    exception
      when duplicate_object or unique_violation then null;
      when insufficient_privilege then
        raise notice 'cannot create role gatehouse_gateway (no CREATEROLE); create it and grant its privileges by hand';
    end;
  end if;
end
$do$`;

const GRANTS = `
do $do$
declare
  fn text;
begin
  execute format('grant usage on schema %I to gatehouse_gateway', current_schema());
  grant select, insert on sessions, events to gatehouse_gateway;
  grant select, insert, update on access_keys to gatehouse_gateway;
  grant select on schema_migrations to gatehouse_gateway;
  foreach fn in array array[${DEFINER_FUNCTIONS.map((f) => `'${f}'`).join(", ")}] loop
    execute format('grant execute on function %s to gatehouse_gateway', fn);
  end loop;
exception when undefined_object then
  raise notice 'role gatehouse_gateway does not exist; its grants were skipped';
end
$do$`;

export const migration002: Migration = {
  version: 2,
  name: "evidence",
  statements: [
    // events → a partitioned table with the same columns; existing rows are moved over.
    "alter table events rename to events_unpartitioned",
    "alter index events_pkey rename to events_unpartitioned_pkey",
    "alter index events_ts_idx rename to events_unpartitioned_ts_idx",
    `create table events (
      session_id  text not null,
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
      primary key (session_id, seq, ts)
    ) partition by range (ts)`,
    "create index events_ts_idx on events (ts)",
    ENSURE_PARTITIONS,
    `select gatehouse_ensure_event_partitions(m.month, m.month)
     from (select distinct date_trunc('month', ts at time zone 'UTC') at time zone 'UTC' as month
           from events_unpartitioned) m`,
    "insert into events select * from events_unpartitioned",
    "drop table events_unpartitioned",
    "drop function gatehouse_insert_events(jsonb)",
    INSERT_EVENT_ROWS,
    INSERT_EVENTS,
    CLOSE_SESSION,
    RECORD,
    // Pin every definer function's search_path to this schema, and let only the owner and the
    // gateway's role run them (functions are executable by PUBLIC by default).
    `do $do$
    declare
      fn text;
    begin
      foreach fn in array array[${DEFINER_FUNCTIONS.map((f) => `'${f}'`).join(", ")}] loop
        execute format('alter function %s set search_path = %I, pg_temp', fn, current_schema());
        execute format('revoke execute on function %s from public', fn);
      end loop;
    end
    $do$`,
    CREATE_ROLE,
    GRANTS,
  ],
};

/** The role migration 002 creates for the gateway. */
export const GATEWAY_ROLE = "gatehouse_gateway";
