import type { RecordedSession } from "../../sessions/recorder.js";

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
 * session the gateway knows, and never names a thread of the resource directly. Ids are issued
 * in order from 1 and skip any still in use when they wrap.
 */
export class ThreadIds {
  private readonly routes = new Map<number, ThreadRoute>();
  private last = 0;

  /** A fresh id for a client's greeting (not routable until `bind`). */
  next(): number {
    do this.last = this.last >= 0xffff_fffe ? 1 : this.last + 1;
    while (this.routes.has(this.last));
    return this.last;
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
