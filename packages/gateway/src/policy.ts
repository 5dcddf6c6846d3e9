import type { Identity } from "@gatehouse/store";
import type { Clock } from "./clock.js";
import type { AllowEntry, ConnectionConfig, GatewayConfig } from "./config/schema.js";

// The one place the gateway decides whether an identity may use a
// connection. Every protocol reaches it through the session broker, so a
// policy change (a config reload) applies to every protocol's new sessions.

export type DenialReason =
  /** The identity is listed in identity.disabled, or disabled in the store (`gatehouse identities disable`). */
  | "identity_disabled"
  /** An entry named the identity or one of its groups, but every such entry's `until` has passed. */
  | "grant_expired"
  /** No entry names the identity or any of its groups (default deny). */
  | "not_allowed";

export type PolicyDecision =
  | { allowed: true; entry: AllowEntry }
  | { allowed: false; reason: DenialReason; message: string };

/**
 * Default deny: an identity may use a connection when it is not disabled and
 * an allow entry names it or one of its groups, and that entry's `until`
 * (if any) is still ahead of `nowUs`. Checked when a session opens; an open
 * session is not cut when its entry expires.
 */
export function decide(config: GatewayConfig, connection: ConnectionConfig, identity: Identity, nowUs: number, disabledInStore?: (name: string) => boolean): PolicyDecision {
  if (config.identity.disabled.includes(identity.name) || disabledInStore?.(identity.name) === true) {
    return { allowed: false, reason: "identity_disabled", message: `identity "${identity.name}" is disabled` };
  }
  const groups = new Set(identity.groups ?? []);
  let expired: AllowEntry | undefined;
  for (const entry of connection.allow) {
    const matches = (entry.identity !== undefined && entry.identity === identity.name) || (entry.group !== undefined && groups.has(entry.group));
    if (!matches) continue;
    if (entry.until !== undefined && Date.parse(entry.until) * 1000 <= nowUs) {
      expired ??= entry;
      continue;
    }
    return { allowed: true, entry };
  }
  const denied = `identity "${identity.name}" is not allowed to use connection "${connection.name}"`;
  if (expired) return { allowed: false, reason: "grant_expired", message: `${denied} (its access ended at ${expired.until})` };
  return { allowed: false, reason: "not_allowed", message: denied };
}

/** `decide` against the current config (it changes on reload) and the gateway's clock. */
export class Policy {
  constructor(
    private readonly config: () => GatewayConfig,
    private readonly clock: Clock,
    /** Identities disabled in the store (identity/identity-settings.ts), shared by the gateways of a store. */
    private readonly disabledInStore?: (name: string) => boolean,
  ) {}

  decide(connection: ConnectionConfig, identity: Identity): PolicyDecision {
    return decide(this.config(), connection, identity, this.clock(), this.disabledInStore);
  }
}
