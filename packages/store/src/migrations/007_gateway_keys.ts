import type { Migration } from "./types.js";

/**
 * Several gateways, one store (issue 15).
 *
 * `gateway_keys`: every gateway's seal (signing) public key, so that `gatehouse verify` run
 * anywhere checks seals made by any gateway of the store. A gateway registers its key at start
 * through `gatehouse_register_gateway_key`, which derives the key id from the public key itself
 * (the first 16 hex digits of SHA-256 over the raw 32-byte Ed25519 key, as the gateway does), so a
 * row can never name one key and hold another; a key already registered is left as it is. The
 * gateway's role reads every key and may mark one retired (`gatehouse_retire_gateway_key`: sets
 * `retired_at` once), never insert, change or delete a row by hand. Retired is not revoked: seals
 * made with a retired key still verify; its gateway only stops sealing with it (it makes a new key
 * at its next start).
 *
 * `identity_settings`: settings of an identity kept in the store rather than in each gateway's
 * config, so a change made through one gateway applies on all of them: for now `disabled` (beside
 * the config's `identity.disabled`). The gateway's role reads, inserts and updates them.
 *
 * Change notices: an insert into `access_keys`, `ssh_keys`, `identity_settings` or
 * `gateway_keys`, or an update of what a login depends on (revocation, expiry, verifiers, the
 * disabled flag; not `last_used_at`, which every login touches), takes a number from
 * `gatehouse_change_seq` and sends `pg_notify('gatehouse_changes', {"table", "identity",
 * "version"})`, delivered to listening gateways when the transaction commits. A gateway whose
 * listening connection dropped reads the sequence's `last_value` every few seconds instead and
 * reloads what it holds when it moved.
 */
const GATEWAY_KEYS = `create table gateway_keys (
  key_id      text primary key,
  public_key  text not null,
  gateway     text not null,
  created_at  timestamptz not null default now(),
  retired_at  timestamptz
)`;

const IDENTITY_SETTINGS = `create table identity_settings (
  identity    text primary key,
  disabled    boolean not null default false,
  updated_at  timestamptz not null default now()
)`;

/**
 * The raw Ed25519 key is the last 32 bytes of its SubjectPublicKeyInfo DER (a fixed 12-byte
 * prefix); anything else is refused. Returns the key id and whether this call inserted the row.
 */
const REGISTER = `
create function gatehouse_register_gateway_key(public_key_pem text, gateway_name text)
returns table (key_id text, inserted boolean, retired_at timestamptz)
language plpgsql security definer as $fn$
declare
  der bytea;
  hex_id text;
  n int;
begin
  der := decode(regexp_replace(public_key_pem, '-----[A-Z ]+-----|\\s', '', 'g'), 'base64');
  if length(der) <> 44 or substring(der from 1 for 12) <> '\\x302a300506032b6570032100'::bytea then
    raise exception 'not an Ed25519 public key (SubjectPublicKeyInfo PEM)' using errcode = '22023';
  end if;
  hex_id := left(encode(sha256(substring(der from 13)), 'hex'), 16);
  insert into gateway_keys as g (key_id, public_key, gateway) values (hex_id, public_key_pem, gateway_name)
    on conflict on constraint gateway_keys_pkey do nothing;
  get diagnostics n = row_count;
  return query select g.key_id, n = 1, g.retired_at from gateway_keys g where g.key_id = hex_id;
end
$fn$`;

const RETIRE = `
create function gatehouse_retire_gateway_key(p_key_id text, p_at timestamptz) returns text
language plpgsql security definer as $fn$
declare
  found_retired timestamptz;
begin
  select g.retired_at into found_retired from gateway_keys g where g.key_id = p_key_id for update;
  if not found then
    return 'not_found';
  end if;
  if found_retired is not null then
    return 'already_retired';
  end if;
  update gateway_keys g set retired_at = p_at where g.key_id = p_key_id;
  return 'retired';
end
$fn$`;

const NOTIFY = `
create function gatehouse_notify_change() returns trigger
language plpgsql security definer as $fn$
begin
  perform pg_notify('gatehouse_changes', json_build_object(
    'table', tg_table_name,
    'identity', to_jsonb(new)->>'identity',
    'version', nextval('gatehouse_change_seq'))::text);
  return null;
end
$fn$`;

const PIN_SEARCH_PATH = `
do $do$
declare
  fn text;
begin
  foreach fn in array array['gatehouse_register_gateway_key(text, text)', 'gatehouse_retire_gateway_key(text, timestamptz)', 'gatehouse_notify_change()'] loop
    execute format('alter function %s set search_path = %I, pg_temp', fn, current_schema());
  end loop;
end
$do$`;

const GRANTS = `
do $do$
begin
  grant select on gateway_keys to gatehouse_gateway;
  grant select, insert, update on identity_settings to gatehouse_gateway;
  grant select on sequence gatehouse_change_seq to gatehouse_gateway;
  grant execute on function gatehouse_register_gateway_key(text, text), gatehouse_retire_gateway_key(text, timestamptz) to gatehouse_gateway;
exception when undefined_object then
  raise notice 'role gatehouse_gateway does not exist; its grants on gateway_keys and identity_settings were skipped';
end
$do$`;

const trigger = (table: string, columns: string) =>
  `create trigger ${table}_changed after insert or update of ${columns} on ${table} for each row execute function gatehouse_notify_change()`;

export const migration007: Migration = {
  version: 7,
  name: "gateway_keys",
  statements: [
    GATEWAY_KEYS,
    IDENTITY_SETTINGS,
    "create sequence gatehouse_change_seq",
    REGISTER,
    RETIRE,
    NOTIFY,
    PIN_SEARCH_PATH,
    // Functions are executable by PUBLIC by default: only the owner and the gateway's role.
    "revoke execute on function gatehouse_register_gateway_key(text, text), gatehouse_retire_gateway_key(text, timestamptz) from public",
    trigger("access_keys", "revoked_at, expires_at, verifiers, identity"),
    trigger("ssh_keys", "revoked_at, expires_at, public_key, fingerprint, identity"),
    trigger("identity_settings", "disabled"),
    trigger("gateway_keys", "retired_at"),
    GRANTS,
  ],
};
