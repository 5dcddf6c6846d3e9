import { randomInt } from "node:crypto";
import type { RecordedSession } from "../../sessions/recorder.js";

/** Thread ids are below this (2^31). */
export const MAX_THREAD_ID = 0x8000_0000;

/** Where a `KILL [QUERY] <id>` naming a gateway thread id must go. */
export interface ThreadRoute {
  readonly session: RecordedSession;
  /** The identity that owns the session: only it may kill there. */
  readonly identity: string;
  /** The resource's real thread id (what the connector's `KILL QUERY` names). */
  readonly serverThreadId: number;
  /** Ends the session at the gateway (`KILL CONNECTION`). */
  readonly end: () => void;
}

/**
 * The connection ids clients see. Each client's greeting carries an id of the gateway's own (the
 * mariadb client's Ctrl-C sends `KILL QUERY <that id>` on a second connection); once the session
 * is open the id maps to it and to the resource's real thread id, so a KILL can reach only a
 * session the gateway knows, and never names a thread of the resource directly.
 *
 * Ids are random in [1, 2^31) (below 2^31 for clients that keep the id in a signed int), never one
 * still in use here: several gateways share one id space, and a KILL may reach any of them. The
 * store's `cancel_routes` keeps two live sessions of different gateways from both publishing one
 * id (listeners/peer-cancels.ts); the odds of a clash are one in 2^31 per pair of live sessions.
 */
export class ThreadIds {
  private readonly routes = new Map<number, ThreadRoute>();

  constructor(private readonly random: () => number = () => randomInt(1, MAX_THREAD_ID)) {}

  /** A fresh id for a client's greeting (not routable until `bind`). */
  next(): number {
    let id: number;
    do id = this.random();
    while (this.routes.has(id));
    return id;
  }

  bind(id: number, route: ThreadRoute): void {
    this.routes.set(id, route);
  }

  find(id: number): ThreadRoute | undefined {
    return this.routes.get(id);
  }

  release(id: number): void {
    this.routes.delete(id);
  }

  get size(): number {
    return this.routes.size;
  }
}
