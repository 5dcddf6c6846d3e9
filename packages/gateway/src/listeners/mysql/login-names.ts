/**
 * What a MySQL login's user and database name, at the gateway.
 *
 * By default the user is the identity and the database is the connection. A client that logs in
 * without a database (mariadb-dump, mysqlslap, a DBA who `USE`s later) names the connection in its
 * user instead, as `IDENTITY#CONNECTION` (Warpgate's `user#target`); its database, if it sends one,
 * is then the resource's initial database. The split is at the LAST `#`: identity names may contain
 * `@` (OIDC emails), which is why the separator is not `@`.
 */
export interface LoginNames {
  /** Who the client claims to be: authenticated, matched by policy, throttled, recorded. */
  readonly identity: string;
  /** The connection it names; undefined when it names none (no `#` and no database). */
  readonly connection: string | undefined;
  /** The database to start the resource's session in; undefined: the connection's `target.database`. */
  readonly database: string | undefined;
}

export const CONNECTION_SEPARATOR = "#";

export function loginNames(user: string, database: string | undefined): LoginNames {
  const at = user.lastIndexOf(CONNECTION_SEPARATOR);
  if (at < 0) return { identity: user, connection: database, database: undefined };
  return { identity: user.slice(0, at), connection: user.slice(at + 1), database };
}
