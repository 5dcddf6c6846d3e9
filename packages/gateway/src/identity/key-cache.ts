import type { AccessKeyRecord } from "@gatehouse/store";
import type { Clock } from "../clock.js";
import { GatewayError } from "../errors.js";

// Each identity's live access keys, held in memory so that a login never waits on the store for
// an identity this gateway has seen: a login reads the copy in memory, and the copy is read again
// from the store in the background (every refresh interval while the identity is in use). Only an
// identity not seen before (or not for a long time) waits for the store, and then for at most a
// short deadline: a store that is down or blackholed costs such a login a clean, quick refusal
// instead of the store driver's connect timeout, and costs every other login nothing.

export interface KeyCacheTiming {
  /** How often the keys of identities in use are read again; a key revoked elsewhere stops working within it. Default 5 s. */
  refreshUs: number;
  /** How long keys last read from the store stand in for it while it cannot be reached. Default 15 min. */
  graceUs: number;
  /** How long an identity may go without a login before its keys are no longer kept (nor refreshed). Default 1 h. */
  keepUnusedUs: number;
  /** How long a login of an identity not in memory waits for the store. Default 2 s. */
  coldReadMs: number;
}

export const KEY_CACHE_DEFAULTS: KeyCacheTiming = {
  refreshUs: 5 * 1_000_000,
  graceUs: 15 * 60 * 1_000_000,
  keepUnusedUs: 60 * 60 * 1_000_000,
  coldReadMs: 2_000,
};

/** A key that matched none is checked against a new read when the copy in memory is older than this (1 s). */
const RECHECK_AFTER_US = 1_000_000;

/** How long a read of an identity's keys may stay unanswered before another is sent (30 s). */
const ABANDON_READ_US = 30 * 1_000_000;

/** What the cache needs of a key: access keys and SSH keys alike. */
export interface CachedKey {
  id: string;
  identity: string;
}

interface Entry<K> {
  keys: K[];
  /** When the read that produced `keys` was sent (what it reflects is at least this recent). */
  readUs: number;
  /** The last login that used this entry. */
  usedUs: number;
  /** The last background read failed: said once per outage, not once per login. */
  failing: boolean;
  /** The number of the read that produced `keys`: a read answering late never replaces a later one. */
  readNo: number;
  /** Another gateway changed the identity's keys (invalidate): the next login waits for a fresh read. */
  stale: boolean;
}

export class KeyCache<K extends CachedKey = AccessKeyRecord> {
  private readonly entries = new Map<string, Entry<K>>();
  /** One read in flight per identity: concurrent logins and the refresh timer share it. */
  private readonly reads = new Map<string, { read: Promise<K[]>; sentUs: number; generation: number }>();
  /** Bumped by invalidate(): a read sent before it may predate the change, so it is not shared after. */
  private generation = 0;
  private readsSent = 0;
  private readonly timer: NodeJS.Timeout;
  /** Keys revoked through this gateway (a read sent before the revocation must not bring them back). */
  private readonly revoked = new Set<string>();
  /** Whether the last read of any identity's keys failed (for /readyz). */
  private lastReadFailed = false;

  constructor(
    private readonly readKeys: (identity: string) => Promise<K[]>,
    private readonly clock: Clock,
    private readonly timing: KeyCacheTiming = KEY_CACHE_DEFAULTS,
    /** A login was served from keys the store could not confirm just now. */
    private readonly onOutage?: (identity: string, error: unknown) => void,
  ) {
    this.timer = setInterval(() => this.refreshDue(), Math.max(100, Math.floor(timing.refreshUs / 1000)));
    this.timer.unref();
  }

  /**
   * The identity's live keys: from memory when read within the grace period (refreshed in the
   * background when older than the refresh interval), otherwise from the store within the cold-read
   * deadline. Throws CREDENTIALS_UNAVAILABLE when the store cannot say in time.
   */
  async keys(identity: string): Promise<K[]> {
    const now = this.clock();
    const entry = this.entries.get(identity);
    if (entry && now - entry.readUs <= this.timing.graceUs) {
      entry.usedUs = now;
      if (entry.stale && entry.failing) {
        // Changed elsewhere, and the store has not answered since: one login waited out the
        // deadline already; the others take the copy in memory at once while it is read again.
        this.refresh(identity);
        return entry.keys;
      }
      if (entry.stale) {
        // Changed elsewhere: read again (a revoked key must stop working now), but a store that
        // cannot answer in time leaves the copy in memory standing, as for any outage.
        try {
          return await this.withinDeadline(this.read(identity));
        } catch (error) {
          this.failed(identity, error);
          return entry.keys;
        }
      }
      if (this.due(entry, now)) this.refresh(identity);
      return entry.keys;
    }
    try {
      const keys = await this.withinDeadline(this.read(identity));
      const fresh = this.entries.get(identity);
      if (fresh) fresh.usedUs = now;
      return keys;
    } catch (error) {
      if (error instanceof GatewayError) throw error;
      throw new GatewayError("CREDENTIALS_UNAVAILABLE", `the store could not be read: ${(error as Error).message}`, { cause: error });
    }
  }

  /**
   * The identity's keys read again, when the copy in memory is older than RECHECK_AFTER_US: a
   * presented key that matched none may be one created since (elsewhere). Undefined when the copy
   * is recent or the store cannot say within the cold-read deadline.
   */
  async recheck(identity: string): Promise<K[] | undefined> {
    const entry = this.entries.get(identity);
    if (entry && this.clock() - entry.readUs <= RECHECK_AFTER_US) return undefined;
    return this.withinDeadline(this.read(identity)).catch(() => undefined);
  }

  private async withinDeadline(read: Promise<K[]>): Promise<K[]> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new GatewayError("CREDENTIALS_UNAVAILABLE", `the store did not answer within ${this.timing.coldReadMs} ms`)),
        this.timing.coldReadMs,
      );
    });
    try {
      return await Promise.race([read, deadline]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** A key revoked through this gateway: no login uses it from now on, whatever the store says later. */
  drop(keyId: string): void {
    this.revoked.add(keyId);
    for (const entry of this.entries.values()) entry.keys = entry.keys.filter((k) => k.id !== keyId);
  }

  /**
   * The store says an identity's keys changed (another gateway created or revoked one; `identity`
   * undefined: any identity's, e.g. after notices may have been missed): the keys in memory are
   * read again now, and a login before that read answered waits for it.
   */
  invalidate(identity?: string): void {
    this.generation++;
    for (const [name, entry] of this.entries) {
      if (identity !== undefined && name !== identity) continue;
      entry.stale = true;
      this.refresh(name);
    }
  }

  /** A key created through this gateway: usable at once by an identity already in memory. */
  add(key: K): void {
    const entry = this.entries.get(key.identity);
    if (entry && !entry.keys.some((k) => k.id === key.id)) entry.keys = [...entry.keys, key];
  }

  /** Whether the store failed the last read of keys (it may be down). */
  get storeFailing(): boolean {
    return this.lastReadFailed;
  }

  close(): void {
    clearInterval(this.timer);
  }

  /** Reads again the identities in use whose keys are older than the refresh interval; forgets those long unused. */
  refreshDue(): void {
    const now = this.clock();
    for (const [identity, entry] of this.entries) {
      if (now - entry.usedUs > this.timing.keepUnusedUs) this.entries.delete(identity);
      else if (this.due(entry, now)) this.refresh(identity);
    }
  }

  /** Older than the refresh interval, or read "in the future" (the clock was set back): read again. */
  private due(entry: Entry<K>, now: number): boolean {
    const age = now - entry.readUs;
    return age > this.timing.refreshUs || age < 0;
  }

  private refresh(identity: string): void {
    this.read(identity).catch(() => undefined);
  }

  private read(identity: string): Promise<K[]> {
    const sentUs = this.clock();
    const inFlight = this.reads.get(identity);
    // A read on a connection the network dropped may never settle: past ABANDON_READ_US another
    // read goes out (on another connection, or after the driver noticed) rather than waiting on it.
    // One sent before an invalidation may predate the change: not shared either.
    if (inFlight && inFlight.generation === this.generation && sentUs - inFlight.sentUs <= ABANDON_READ_US) return inFlight.read;
    const readNo = ++this.readsSent;
    const generation = this.generation;
    // A blackholed store never fails a read, it just never answers: past the cold-read deadline
    // the store counts as failing, as it would on an error.
    const watchdog = setTimeout(
      () => this.failed(identity, new GatewayError("CREDENTIALS_UNAVAILABLE", `the store did not answer within ${this.timing.coldReadMs} ms`)),
      this.timing.coldReadMs,
    );
    watchdog.unref();
    const read = this.readKeys(identity)
      .then(
        (fromStore) => {
          const entry = this.entries.get(identity);
          // An abandoned read that answers after a later one: the later one stands.
          if (entry && entry.readNo > readNo) return entry.keys;
          // A revocation through this gateway while the read was out is kept: the read may predate it.
          const keys = fromStore.filter((k) => !this.revoked.has(k.id));
          // Still stale when an invalidation came after this read was sent.
          const stale = entry !== undefined && entry.stale && generation !== this.generation;
          this.entries.set(identity, { keys, readUs: sentUs, usedUs: entry?.usedUs ?? sentUs, failing: false, readNo, stale });
          this.lastReadFailed = false;
          return keys;
        },
        (error: unknown) => {
          this.failed(identity, error);
          throw error;
        },
      )
      .finally(() => {
        clearTimeout(watchdog);
        if (this.reads.get(identity)?.read === read) this.reads.delete(identity);
      });
    this.reads.set(identity, { read, sentUs, generation });
    return read;
  }

  private failed(identity: string, error: unknown): void {
    this.lastReadFailed = true;
    const entry = this.entries.get(identity);
    if (entry && !entry.failing) {
      entry.failing = true;
      this.onOutage?.(identity, error);
    }
  }
}
