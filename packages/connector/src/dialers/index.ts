import { createKubernetesDialer } from "./kubernetes/kubernetes-dialer.js";
import { dialMysql } from "./mysql/mysql-dialer.js";
import { dialPostgres } from "./postgres/postgres-dialer.js";
import { createSshDialer } from "./ssh/ssh-dialer.js";
import { dialTcp } from "./tcp/tcp-dialer.js";
import type { Dialer } from "./types.js";

export { connectTcp, dialTcp, formatTarget } from "./tcp/tcp-dialer.js";
export { dialMysql } from "./mysql/mysql-dialer.js";
export { dialPostgres } from "./postgres/postgres-dialer.js";
export { createSshDialer } from "./ssh/ssh-dialer.js";
export { createKubernetesDialer } from "./kubernetes/kubernetes-dialer.js";
export { SshConnections } from "./ssh/ssh-connections.js";
export type { DialContext, DialResult, Dialer, DialerRegistry } from "./types.js";

/**
 * The dialers the connector knows by default, keyed by OpenStream.protocol. Protocols with their own server
 * handshake (postgres, mysql...) add an entry here; `startConnector` also accepts extra entries.
 */
export function defaultDialers(): Map<string, Dialer> {
  return new Map<string, Dialer>([
    ["tcp", dialTcp],
    ["postgres", dialPostgres],
    ["mysql", dialMysql],
    // One registry of SSH connections per call: channel streams find their session's connection in it.
    ["ssh", createSshDialer()],
    // One cache of kubeconfigs (and keep-alive agents to each API server) per call.
    ["kubernetes", createKubernetesDialer()],
  ]);
}
