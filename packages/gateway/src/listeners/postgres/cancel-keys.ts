import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import type { BackendKey } from "@gatehouse/protocols/postgres";
import type { RecordedSession } from "../../sessions/recorder.js";

/** Where a cancel for one client session must go (the broker knows the session's connector link). */
export interface CancelRoute {
  session: RecordedSession;
  /** The real server's key, whose secret never leaves the gateway. */
  serverKey: BackendKey;
}

interface Entry {
  secret: Buffer;
  routeKey: string;
  route: CancelRoute;
}

/**
 * The name of a client key in the store's `cancel_routes` (migration 008): `pg:` and the hex
 * SHA-256 of the BackendKeyData's process id (4 bytes, big endian) and secret. Other gateways
 * find a key they do not know by it; the secret itself never leaves this gateway's memory.
 */
export function cancelRouteKey(key: BackendKey): string {
  const pid = Buffer.alloc(4);
  pid.writeUInt32BE(key.processId >>> 0);
  return `pg:${createHash("sha256").update(pid).update(key.secretKey).digest("hex")}`;
}

/**
 * Each client gets BackendKeyData with the server's real process id and a
 * secret of the gateway's own, so a cancel can only reach the session whose
 * key it names, and the server's secret stays at the gateway.
 *
 * The process id is the server's because it is no secret (`pg_backend_pid()`
 * returns it) and clients rely on it: a NotificationResponse carries the
 * notifying backend's pid, and clients compare it with their own to skip
 * their own notifications. Pids of different servers can coincide, so the
 * secret tells sessions with the same pid apart. Keys live as long as their session.
 */
export class CancelKeys {
  private readonly routes = new Map<number, Entry[]>();
  private readonly byRouteKey = new Map<string, CancelRoute>();
  private count = 0;

  issue(route: CancelRoute): BackendKey {
    const processId = route.serverKey.processId;
    const entries = this.routes.get(processId) ?? [];
    let secret: Buffer;
    do secret = randomBytes(4);
    while (entries.some((e) => e.secret.equals(secret)));
    const key = { processId, secretKey: new Uint8Array(secret) };
    const routeKey = cancelRouteKey(key);
    entries.push({ secret, routeKey, route });
    this.routes.set(processId, entries);
    this.byRouteKey.set(routeKey, route);
    this.count++;
    return key;
  }

  find(key: BackendKey): CancelRoute | undefined {
    const entries = this.routes.get(key.processId);
    if (!entries || key.secretKey.length !== 4) return undefined;
    const given = Buffer.from(key.secretKey);
    let found: CancelRoute | undefined;
    for (const entry of entries) if (timingSafeEqual(entry.secret, given)) found = entry.route;
    return found;
  }

  /** The route of a key another gateway found in the store under this route key (the client's cancel went there). */
  findByRouteKey(routeKey: string): CancelRoute | undefined {
    return this.byRouteKey.get(routeKey);
  }

  release(key: BackendKey): void {
    const entries = this.routes.get(key.processId);
    if (!entries) return;
    const given = Buffer.from(key.secretKey);
    for (const e of entries) if (e.secret.equals(given)) this.byRouteKey.delete(e.routeKey);
    const kept = entries.filter((e) => !e.secret.equals(given));
    this.count -= entries.length - kept.length;
    if (kept.length === 0) this.routes.delete(key.processId);
    else this.routes.set(key.processId, kept);
  }

  get size(): number {
    return this.count;
  }
}
