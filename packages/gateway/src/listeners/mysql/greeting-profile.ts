import { Capability } from "@gatehouse/protocols/mysql";
import type { MysqlDialResult } from "@gatehouse/protocols/mysql";

/** What a greeting shows: learned from the resources, or the configured fallback. */
export interface Greeting {
  readonly serverVersion: string;
  /** Without CLIENT_SSL: the listener adds it when it can do TLS. */
  readonly capabilities: number;
  readonly characterSet: number;
}

/**
 * Capabilities every greeting offers whatever the resource says: the gateway itself handles the
 * database name (the connection) and pluggable auth with length-encoded data.
 */
const GATEWAY_OWN = Capability.CLIENT_PROTOCOL_41 | Capability.CLIENT_SECURE_CONNECTION | Capability.CLIENT_PLUGIN_AUTH | Capability.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA | Capability.CLIENT_CONNECT_WITH_DB;

/**
 * Never offered (README design point 4): the relay reads packets, not compressed frames; query
 * attributes and optional result-set metadata change packets the observer parses; TLS is the
 * listener's own; the rest concern the client's login to us, not the resource.
 */
const MASKED =
  Capability.CLIENT_COMPRESS |
  Capability.CLIENT_ZSTD_COMPRESSION_ALGORITHM |
  Capability.CLIENT_QUERY_ATTRIBUTES |
  Capability.CLIENT_OPTIONAL_RESULTSET_METADATA |
  Capability.CLIENT_SSL |
  Capability.CLIENT_SSL_VERIFY_SERVER_CERT |
  Capability.CLIENT_CAN_HANDLE_EXPIRED_PASSWORDS |
  Capability.MULTI_FACTOR_AUTHENTICATION |
  Capability.CLIENT_CAPABILITY_EXTENSION |
  Capability.CLIENT_REMEMBER_OPTIONS;

/** Before any resource was reached: what every MySQL ≥ 5.7 and MariaDB ≥ 10.2 server offers. */
const CONSERVATIVE =
  Capability.CLIENT_LONG_PASSWORD |
  // Affected rows as "rows matched" when the client asks (mysql2 does): without it an UPDATE
  // reports other counts in the first session than in later ones.
  Capability.CLIENT_FOUND_ROWS |
  Capability.CLIENT_IGNORE_SPACE |
  Capability.CLIENT_INTERACTIVE |
  Capability.CLIENT_IGNORE_SIGPIPE |
  Capability.CLIENT_LONG_FLAG |
  Capability.CLIENT_LOCAL_FILES |
  Capability.CLIENT_TRANSACTIONS |
  Capability.CLIENT_MULTI_STATEMENTS |
  Capability.CLIENT_MULTI_RESULTS |
  Capability.CLIENT_PS_MULTI_RESULTS |
  Capability.CLIENT_CONNECT_ATTRS;

/**
 * The greeting profile of one listener (packages/protocols/src/mysql/README.md, "Design: the
 * client must see the resource's version and capabilities"): the gateway greets before it knows
 * the connection, so it shows what the mysql connections' resources agree on, learned from each
 * successful dial (in memory, replaced every time). When they differ, or none is known, the
 * configured version with the intersection of what is known (never more than a resource has).
 */
export class GreetingProfiles {
  private readonly learned = new Map<string, { version: string; capabilities: number; characterSet: number }>();

  learn(connection: string, server: MysqlDialResult): void {
    this.learned.set(connection, { version: server.serverVersion, capabilities: server.serverCapabilities, characterSet: server.characterSet });
  }

  /**
   * The greeting for a new client, given the names of the configured mysql connections and the
   * fallback version. The known resources' version when they agree on it (clients pick their
   * MariaDB or MySQL code paths by it), even while some connection was never reached (a dead
   * one would otherwise keep every client on the fallback); capabilities stay within the
   * conservative set until every connection is known, so none is ever claimed that an unknown
   * resource may lack.
   */
  greeting(connections: readonly string[], fallbackVersion: string): Greeting {
    const known = connections.map((name) => this.learned.get(name)).filter((p) => p !== undefined);
    if (known.length === 0) return { serverVersion: fallbackVersion, capabilities: (CONSERVATIVE | GATEWAY_OWN) >>> 0, characterSet: 45 };
    const allKnown = known.length === connections.length;
    const capabilities = known.reduce((all, p) => all & p.capabilities, allKnown ? 0xffff_ffff : CONSERVATIVE);
    const first = known[0]!;
    const sameVersion = known.every((p) => p.version === first.version && p.characterSet === first.characterSet);
    return {
      serverVersion: sameVersion ? first.version : fallbackVersion,
      capabilities: ((capabilities & ~MASKED) | GATEWAY_OWN) >>> 0,
      characterSet: sameVersion ? first.characterSet : 45,
    };
  }
}
