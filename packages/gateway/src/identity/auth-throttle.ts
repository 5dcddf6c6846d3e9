import type { LimitsConfig } from "../config/schema.js";

export type AuthThrottleSettings = LimitsConfig["authThrottle"];

/** What to do with an attempt before its credential is checked. */
export type ThrottleVerdict =
  /** Refuse without checking: the address or the claimed identity failed too often lately. */
  | { readonly locked: true; readonly retryAfterMs: number; readonly by: "address" | "identity" }
  /** Check it, after waiting `delayMs` (0 unless recent failures), whatever the outcome. */
  | { readonly locked: false; readonly delayMs: number };

interface Failures {
  count: number;
  lastMs: number;
  lockedUntilMs: number;
}

/** Bounds the memory an attacker claiming ever new names (or addresses) can take; the oldest are forgotten first. */
const MAX_TRACKED = 50_000;

/**
 * Slows down and then stops password guessing, per client address and per
 * claimed identity: after `freeFailures` failures each attempt waits a delay
 * that doubles up to `maxDelayMs`; after `lockoutAfter` failures attempts are
 * refused for `lockoutMs` without checking the key. The delay applies to every
 * attempt, not only to failures, so a client cannot learn a verdict by how soon
 * it comes. A success forgets the failures of its address and identity.
 * Pure bookkeeping on an injected clock (ms); the caller waits.
 */
export class AuthThrottle {
  private readonly failures = new Map<string, Failures>();
  /** For a later /metrics: attempts slowed down, and refused by a lockout. */
  readonly counters = { delayed: 0, lockedOut: 0, lockouts: 0 };

  constructor(
    private readonly settings: () => AuthThrottleSettings,
    private readonly nowMs: () => number,
  ) {}

  verdict(address: string | null, identity: string): ThrottleVerdict {
    const now = this.nowMs();
    const byAddress = this.current(addressKey(address), now);
    const byIdentity = this.current(identityKey(identity), now);
    for (const [entry, by] of [[byAddress, "address"], [byIdentity, "identity"]] as const) {
      if (entry && entry.lockedUntilMs > now) {
        this.counters.lockedOut++;
        return { locked: true, retryAfterMs: entry.lockedUntilMs - now, by };
      }
    }
    const delayMs = Math.max(this.delayAfter(byAddress?.count ?? 0), this.delayAfter(byIdentity?.count ?? 0));
    if (delayMs > 0) this.counters.delayed++;
    return { locked: false, delayMs };
  }

  /** Counts a failed attempt; true when it started a lockout. */
  failed(address: string | null, identity: string): boolean {
    const now = this.nowMs();
    let locked = false;
    for (const key of [addressKey(address), identityKey(identity)]) {
      const entry = this.current(key, now) ?? { count: 0, lastMs: now, lockedUntilMs: 0 };
      entry.count++;
      entry.lastMs = now;
      if (entry.count >= this.settings().lockoutAfter && entry.lockedUntilMs <= now) {
        entry.lockedUntilMs = now + this.settings().lockoutMs;
        this.counters.lockouts++;
        locked = true;
      }
      // Re-inserted: the map's order is the order of last failure, oldest first.
      this.failures.delete(key);
      this.failures.set(key, entry);
    }
    while (this.failures.size > MAX_TRACKED) this.failures.delete(this.failures.keys().next().value!);
    return locked;
  }

  succeeded(address: string | null, identity: string): void {
    this.failures.delete(addressKey(address));
    this.failures.delete(identityKey(identity));
  }

  private current(key: string, now: number): Failures | undefined {
    const entry = this.failures.get(key);
    if (entry && now - entry.lastMs >= this.settings().forgetAfterMs && entry.lockedUntilMs <= now) {
      this.failures.delete(key);
      return undefined;
    }
    return entry;
  }

  private delayAfter(failures: number): number {
    const { freeFailures, delayMs, maxDelayMs } = this.settings();
    if (failures <= freeFailures) return 0;
    return Math.min(maxDelayMs, delayMs * 2 ** Math.min(failures - freeFailures - 1, 30));
  }
}

const addressKey = (address: string | null) => `address:${address ?? ""}`;
// Cut: a claimed name can be as long as a startup packet (10 kB); no identity name comes near 256.
const identityKey = (identity: string) => `identity:${identity.slice(0, 256)}`;
