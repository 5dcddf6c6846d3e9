import type { Migration } from "./types.js";

/**
 * Where a cancel goes when several gateways share the store (issue 15). A client's cancel opens a
 * new TCP connection, and behind a load balancer it may reach another gateway than its session's:
 * each gateway publishes its sessions' client-facing cancel keys here with its own id, and a
 * gateway that gets a key it does not know looks it up and hands the cancel to the owner (a
 * NOTIFY on the store, docs/operations.md "Several gateways").
 *
 * `route_key` is what a cancel names, so a lookup is one primary-key probe:
 * - Postgres: `pg:` + hex SHA-256 of the client's BackendKeyData (process id, 4 bytes big
 *   endian, then the secret). The secret itself is never stored: a cancel must bring it.
 * - MySQL: `mysql:` + the client-facing thread id (unique across gateways: random, and a live
 *   row here keeps another gateway from publishing the same id).
 * `identity` is the session's owner, for MySQL's rule that only the same identity may KILL.
 *
 * Rows are removed when their session ends. A gateway renews its rows' `expires_at` while it
 * runs, so the rows of a gateway that crashed stop counting once they expire (and any gateway
 * deletes them then). Not evidence: nothing here is hashed or sealed, and the gateway's role may
 * delete.
 */
const CREATE_TABLE = `create table cancel_routes (
  route_key  text primary key,
  protocol   text not null,
  gateway    text not null,
  session_id text not null,
  identity   text,
  expires_at timestamptz not null
)`;

const GRANTS = `
do $do$
begin
  grant select, insert, update, delete on cancel_routes to gatehouse_gateway;
exception when undefined_object then
  raise notice 'role gatehouse_gateway does not exist; its grant on cancel_routes was skipped';
end
$do$`;

export const migration008: Migration = {
  version: 8,
  name: "cancel_routes",
  statements: [
    CREATE_TABLE,
    "create index cancel_routes_gateway_idx on cancel_routes (gateway)",
    "create index cancel_routes_expires_idx on cancel_routes (expires_at)",
    GRANTS,
  ],
};
