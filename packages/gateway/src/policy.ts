import type { Identity } from "@gatehouse/store";
import type { ConnectionConfig } from "./config/schema.js";

/** Default deny: an identity may use a connection only when an allow entry names it or one of its groups. */
export function isAllowed(connection: ConnectionConfig, identity: Identity): boolean {
  const groups = new Set(identity.groups ?? []);
  return connection.allow.some(
    (entry) => (entry.identity !== undefined && entry.identity === identity.name) || (entry.group !== undefined && groups.has(entry.group)),
  );
}
