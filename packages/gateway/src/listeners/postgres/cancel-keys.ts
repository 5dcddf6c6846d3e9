import { randomBytes, randomInt, timingSafeEqual } from "node:crypto";
import type { BackendKey } from "@gatehouse/protocols/postgres";
import type { ConnectionConfig } from "../../config/schema.js";
import type { RecordedSession } from "../../sessions/recorder.js";
import type { ConnectorLink } from "../../tunnel/connector-registry.js";

/** Where a cancel for one client session must go. */
export interface CancelRoute {
  session: RecordedSession;
  connection: ConnectionConfig;
  link: ConnectorLink;
  /** The real server's key, which never leaves the gateway. */
  serverKey: BackendKey;
}

/**
 * Each client gets the gateway's own BackendKeyData, so it never learns the
 * server's process id or secret, and a cancel can only reach the session
 * whose key it names. Keys live as long as their session.
 */
export class CancelKeys {
  private readonly routes = new Map<number, { secret: Buffer; route: CancelRoute }>();

  issue(route: CancelRoute): BackendKey {
    let processId: number;
    do processId = randomInt(1, 2 ** 31 - 1);
    while (this.routes.has(processId));
    const secret = randomBytes(4);
    this.routes.set(processId, { secret, route });
    return { processId, secretKey: new Uint8Array(secret) };
  }

  find(key: BackendKey): CancelRoute | undefined {
    const entry = this.routes.get(key.processId);
    if (!entry || entry.secret.length !== key.secretKey.length) return undefined;
    return timingSafeEqual(entry.secret, key.secretKey) ? entry.route : undefined;
  }

  release(key: BackendKey): void {
    this.routes.delete(key.processId);
  }

  get size(): number {
    return this.routes.size;
  }
}
