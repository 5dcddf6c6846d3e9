import type { Multiplexer } from "@gatehouse/proto";

/** One live tunnel from a connector process. */
export interface ConnectorLink {
  /** Unique per tunnel, for logs (a name may have several replicas). */
  id: string;
  name: string;
  remoteAddress: string;
  connectedUs: number;
  mux: Multiplexer;
  /**
   * The connector process's id (its Gatehouse-Connector-Instance header), when it sent one: a gateway
   * with several workers holds at most one link per process on each worker (tunnel-server.ts).
   */
  instance?: string;
}

/**
 * The connectors currently holding a tunnel, by name. Several processes may
 * share a name (replicas); new streams go round-robin across the live ones
 * that have not asked to drain.
 */
export class ConnectorRegistry {
  private readonly byName = new Map<string, ConnectorLink[]>();
  private readonly cursor = new Map<string, number>();

  add(link: ConnectorLink): void {
    const links = this.byName.get(link.name) ?? [];
    links.push(link);
    this.byName.set(link.name, links);
  }

  remove(link: ConnectorLink): void {
    const links = this.byName.get(link.name)?.filter((l) => l !== link) ?? [];
    if (links.length === 0) this.byName.delete(link.name);
    else this.byName.set(link.name, links);
  }

  /** The next live, non-draining link for `name`, or undefined when there is none. */
  pick(name: string): ConnectorLink | undefined {
    const live = (this.byName.get(name) ?? []).filter((l) => !l.mux.draining);
    if (live.length === 0) return undefined;
    const next = (this.cursor.get(name) ?? 0) % live.length;
    this.cursor.set(name, next + 1);
    return live[next];
  }

  list(): ConnectorLink[] {
    return [...this.byName.values()].flat();
  }

  /** Whether any process of `name` holds a tunnel, draining or not. */
  has(name: string): boolean {
    return (this.byName.get(name)?.length ?? 0) > 0;
  }
}
