import type { Migration } from "./types.js";

/**
 * SSH public keys, registered per identity beside its access keys (issue 11). The gateway checks
 * a client's public key against them: the key blob's SHA-256 fingerprint (as `ssh-keygen -l -E
 * sha256` prints it, "SHA256:" + unpadded base64) is what a login looks up. A key belongs to one
 * identity only, so the fingerprint is unique among live keys; a revoked key may be registered
 * again (to the same identity or another), which a unique index over every row would forbid.
 *
 * `public_key` is the OpenSSH line without its comment ("ssh-ed25519 AAAA…"); the comment is kept
 * apart so a listing can show it. The gateway's role reads keys, adds them, revokes them and
 * records their use, as it does access keys; it never deletes one.
 */
const CREATE_TABLE = `create table ssh_keys (
  id           text primary key,
  identity     text not null,
  algorithm    text not null,
  public_key   text not null,
  fingerprint  text not null,
  comment      text,
  created_at   timestamptz not null,
  expires_at   timestamptz,
  revoked_at   timestamptz,
  last_used_at timestamptz
)`;

const GRANTS = `
do $do$
begin
  grant select, insert, update on ssh_keys to gatehouse_gateway;
exception when undefined_object then
  raise notice 'role gatehouse_gateway does not exist; its grant on ssh_keys was skipped';
end
$do$`;

export const migration005: Migration = {
  version: 5,
  name: "ssh_keys",
  statements: [
    CREATE_TABLE,
    "create unique index ssh_keys_live_fingerprint_idx on ssh_keys (fingerprint) where revoked_at is null",
    "create index ssh_keys_identity_idx on ssh_keys (identity, created_at desc)",
    GRANTS,
  ],
};
