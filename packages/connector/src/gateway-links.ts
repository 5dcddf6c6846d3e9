import { lookup as dnsLookup } from "node:dns/promises";
import { isIP } from "node:net";
import { EventEmitter } from "node:events";
import type { Logger } from "pino";

/** One address a gateway name resolved to. */
export interface ResolvedAddress {
  readonly address: string;
  readonly family: 4 | 6;
}

/** Resolves a host name to every address it has (dns.lookup with `all: true`, as the system resolver answers). */
export type GatewayLookup = (hostname: string) => Promise<readonly ResolvedAddress[]>;

export const systemLookup: GatewayLookup = async (hostname) =>
  (await dnsLookup(hostname, { all: true, order: "ipv4first" })).map((a) => ({ address: a.address, family: a.family === 6 ? 6 : 4 }));

/**
 * One tunnel the connector should hold: a gateway URL and, when its name was resolved, the one address this
 * tunnel dials (TLS servername and Host stay the URL's name). `address` null: the tunnel dials the URL as given.
 */
export interface LinkTarget {
  /** Stable identity of the target: the URL and the address. */
  readonly key: string;
  readonly url: URL;
  readonly address: ResolvedAddress | null;
}

export interface GatewayLinksOptions {
  urls: readonly URL[];
  /** ms between resolutions of each name; 0: no fan-out, one tunnel per URL dialing the name. */
  resolveIntervalMs: number;
  lookup: GatewayLookup;
  logger: Logger;
}

export interface GatewayLinksEvents {
  /** A tunnel to this target should be held from now on. */
  added: [target: LinkTarget];
  /** This target is gone (its address vanished from DNS): drain its tunnel and close it. */
  removed: [target: LinkTarget];
}

/**
 * The set of tunnels the connector holds: one per gateway URL, or, for a URL whose host is a name, one per
 * address the name resolves to, re-resolved every `resolveIntervalMs`. It only decides the set (`added` /
 * `removed` events); the connector dials, drains and closes the tunnels.
 *
 * A name that does not resolve (yet) gets one tunnel dialing the name itself, so its failures are logged like
 * any failed dial; once the name resolves, per-address tunnels replace it. A later lookup that fails or comes
 * back empty keeps the tunnels as they are: a DNS hiccup must not take every link down.
 */
export class GatewayLinks extends EventEmitter<GatewayLinksEvents> {
  readonly #options: GatewayLinksOptions;
  /** Per URL (href): its targets by key. */
  readonly #targets = new Map<string, Map<string, LinkTarget>>();
  #timer: NodeJS.Timeout | null = null;
  #stopped = false;
  #resolving: Promise<void> | null = null;

  constructor(options: GatewayLinksOptions) {
    super();
    this.#options = options;
  }

  /** Every target currently held. */
  get targets(): LinkTarget[] {
    return [...this.#targets.values()].flatMap((m) => [...m.values()]);
  }

  /** Resolves every name once and emits `added` for each target; then re-resolves on the interval. */
  async start(): Promise<void> {
    await this.resolveNow();
    if (this.#stopped || this.#options.resolveIntervalMs === 0 || !this.#options.urls.some(isName)) return;
    this.#timer = setInterval(() => void this.resolveNow(), this.#options.resolveIntervalMs);
    this.#timer.unref();
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }

  /** One round of resolution (the interval calls it; tests may too). Rounds never overlap. */
  resolveNow(): Promise<void> {
    this.#resolving ??= this.#resolveAll().finally(() => (this.#resolving = null));
    return this.#resolving;
  }

  async #resolveAll(): Promise<void> {
    await Promise.all(this.#options.urls.map((url) => this.#resolveOne(url)));
  }

  async #resolveOne(url: URL): Promise<void> {
    const host = hostOf(url);
    let wanted: LinkTarget[] | null;
    if (this.#options.resolveIntervalMs === 0 || !isName(url)) {
      wanted = [target(url, null)];
    } else {
      try {
        const found = await this.#options.lookup(host);
        const unique = new Map(found.map((a) => [a.address, a]));
        wanted = unique.size === 0 ? null : [...unique.values()].map((a) => target(url, a));
        if (wanted === null) this.#options.logger.warn({ gateway: url.href }, "the gateway name resolved to no address; keeping the tunnels as they are");
      } catch (err) {
        wanted = null;
        this.#options.logger.warn({ gateway: url.href, error: (err as Error).message }, "cannot resolve the gateway name; keeping the tunnels as they are");
      }
      // Never resolved yet: dial the name itself, so the failure shows as a failed dial and is retried with backoff.
      if (wanted === null && !this.#targets.has(url.href)) wanted = [target(url, null)];
    }
    if (this.#stopped || wanted === null) return;
    const current = this.#targets.get(url.href) ?? new Map<string, LinkTarget>();
    this.#targets.set(url.href, current);
    const wantedKeys = new Set(wanted.map((t) => t.key));
    const added = wanted.filter((t) => !current.has(t.key));
    const removed = [...current.values()].filter((t) => !wantedKeys.has(t.key));
    if (added.length > 0 || removed.length > 0) {
      const addresses = (ts: LinkTarget[]) => ts.map((t) => t.address?.address ?? host);
      if (current.size > 0 || removed.length > 0) {
        this.#options.logger.info({ gateway: url.href, added: addresses(added), removed: addresses(removed) }, "gateway addresses changed");
      }
    }
    for (const t of added) {
      current.set(t.key, t);
      this.emit("added", t);
    }
    for (const t of removed) {
      current.delete(t.key);
      this.emit("removed", t);
    }
  }
}

function target(url: URL, address: ResolvedAddress | null): LinkTarget {
  return { key: address === null ? url.href : `${url.href}@${address.address}`, url, address };
}

function hostOf(url: URL): string {
  return url.hostname.replace(/^\[(.*)\]$/, "$1");
}

/** A host that needs resolving (not an IP literal). */
function isName(url: URL): boolean {
  return isIP(hostOf(url)) === 0;
}
