import type { LimitsConfig } from "../config/schema.js";

/** Refused clients taken through their handshake at once to be told why (see enterRefusalReport). */
const MAX_REFUSALS_REPORTED_AT_ONCE = 32;
/** How long such a client has for it (ms), at most. */
export const REFUSAL_REPORT_DEADLINE_MS = 5_000;

/** Gives back what `enter*` took; calling it again does nothing. */
export type Release = () => void;

export type Admission = { readonly ok: true; readonly release: Release } | { readonly ok: false; readonly limit: LimitName; readonly max: number };

export type LimitName = "maxHandshakes" | "maxHandshakesPerAddress" | "maxSessionsPerIdentity";

/**
 * Counts what clients hold at once: connections still in their handshake (in
 * total and per client address) and open sessions per identity, against
 * `limits.*`. A listener asks before it spends anything on a client and
 * releases when the client moves on or leaves. `counters` is what a later
 * /metrics reads.
 */
export class AdmissionLimits {
  private handshakes = 0;
  private reporting = 0;
  private readonly handshakesByAddress = new Map<string, number>();
  private readonly sessionsByIdentity = new Map<string, number>();
  readonly counters = {
    handshakesRefused: 0,
    handshakesRefusedForAddress: 0,
    sessionsRefusedForIdentity: 0,
  };

  constructor(private readonly limits: () => LimitsConfig) {}

  /** Connections in their handshake now (for logs). */
  get inHandshake(): number {
    return this.handshakes;
  }

  enterHandshake(address: string | null): Admission {
    const { maxHandshakes, maxHandshakesPerAddress } = this.limits();
    const key = address ?? "";
    const fromAddress = this.handshakesByAddress.get(key) ?? 0;
    if (this.handshakes >= maxHandshakes) {
      this.counters.handshakesRefused++;
      return { ok: false, limit: "maxHandshakes", max: maxHandshakes };
    }
    if (fromAddress >= maxHandshakesPerAddress) {
      this.counters.handshakesRefusedForAddress++;
      return { ok: false, limit: "maxHandshakesPerAddress", max: maxHandshakesPerAddress };
    }
    this.handshakes++;
    this.handshakesByAddress.set(key, fromAddress + 1);
    return {
      ok: true,
      release: once(() => {
        this.handshakes--;
        decrement(this.handshakesByAddress, key);
      }),
    };
  }

  /**
   * A client refused at its handshake is told why the way its protocol expects (for Postgres, after
   * TLS and the startup: libpq does not show an error sent before TLS); a few at a time, so a flood
   * costs no more than that. Past these, a refused client gets its error at once.
   */
  enterRefusalReport(): Admission {
    if (this.reporting >= MAX_REFUSALS_REPORTED_AT_ONCE) return { ok: false, limit: "maxHandshakes", max: MAX_REFUSALS_REPORTED_AT_ONCE };
    this.reporting++;
    return { ok: true, release: once(() => this.reporting--) };
  }

  openSession(identity: string): Admission {
    const max = this.limits().maxSessionsPerIdentity;
    const open = this.sessionsByIdentity.get(identity) ?? 0;
    if (max > 0 && open >= max) {
      this.counters.sessionsRefusedForIdentity++;
      return { ok: false, limit: "maxSessionsPerIdentity", max };
    }
    this.sessionsByIdentity.set(identity, open + 1);
    return { ok: true, release: once(() => decrement(this.sessionsByIdentity, identity)) };
  }
}

function decrement(counts: Map<string, number>, key: string): void {
  const left = (counts.get(key) ?? 1) - 1;
  if (left > 0) counts.set(key, left);
  else counts.delete(key);
}

function once(release: () => void): Release {
  let done = false;
  return () => {
    if (!done) {
      done = true;
      release();
    }
  };
}
