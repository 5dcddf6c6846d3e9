/**
 * How a stock `ssh` client names both who it is and which connection it wants: its one user name
 * is `IDENTITY@CONNECTION` (split at the LAST `@`, since identities may be e-mail addresses and
 * connection names never hold `@`), or `IDENTITY#CONNECTION` (split at the last `#`, as for MySQL).
 * There is no default connection: a name with neither separator is refused, with how to write it.
 */
export type SshLoginName = { ok: true; identity: string; connection: string } | { ok: false; message: string };

export function parseSshLoginName(user: string): SshLoginName {
  // `#` first: `alice@example.com#web1` names identity alice@example.com, whatever the `@`s before.
  const hash = user.lastIndexOf("#");
  const at = hash >= 0 ? hash : user.lastIndexOf("@");
  if (at < 0) return { ok: false, message: `the user name "${user}" names no connection: log in as IDENTITY@CONNECTION (ssh -p PORT identity@connection@gateway)` };
  const identity = user.slice(0, at);
  const connection = user.slice(at + 1);
  if (identity === "" || connection === "") return { ok: false, message: `the user name "${user}" needs both parts: IDENTITY@CONNECTION` };
  return { ok: true, identity, connection };
}
