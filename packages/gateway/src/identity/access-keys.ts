import { randomBytes, timingSafeEqual } from "node:crypto";
import { StoreError, type AccessKeyRecord, type Store } from "@gatehouse/store";
import { formatScramVerifier, parseScramVerifier, scramVerifier, type ScramVerifier } from "@gatehouse/protocols/postgres";
import type { Clock } from "../clock.js";
import { sha256Hex } from "../data-dir.js";

// Access keys: long random secrets an identity presents as its password.
// The store keeps only verifiers: SHA-256 for cleartext (over TLS), and a
// SCRAM-SHA-256 verifier for plaintext loopback listeners. All keys of one
// identity share one SCRAM salt, so a SCRAM exchange (which must announce a
// salt before it knows which key is used) can check the proof against each.

const KEY_PREFIX = "ghk_";

export interface CreatedKey {
  id: string;
  identity: string;
  /** The secret itself: shown once, never stored. */
  key: string;
  createdUs: number;
  expiresUs: number | null;
}

export interface KeyVerifiers {
  sha256: string;
  scram: string;
}

export type KeyCheck =
  | { ok: true; keyId: string }
  | { ok: false; reason: "no_key" | "wrong_key" | "expired" };

export interface ScramCandidates {
  /** Salt and iterations shared by every candidate (the identity's). */
  verifiers: Array<{ keyId: string; verifier: ScramVerifier }>;
}

/**
 * How long an identity's keys, as last read from the store, stand in for the store while it is
 * unreachable: logins go on through a store outage (the journal keeps their record), and a key
 * revoked elsewhere meanwhile is honoured at most this late. Keys revoked through this gateway
 * are dropped at once.
 */
export const STORE_OUTAGE_KEY_GRACE_US = 15 * 60 * 1_000_000;

export class AccessKeys {
  /** Each identity's live keys as last read from the store, and when. */
  private readonly lastKnown = new Map<string, { keys: AccessKeyRecord[]; readUs: number }>();

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly onOutage?: (identity: string, error: StoreError) => void,
  ) {}

  async create(identity: string, options: { ttlUs?: number } = {}): Promise<CreatedKey> {
    const key = `${KEY_PREFIX}${randomBytes(32).toString("base64url")}`;
    const id = `key_${randomBytes(6).toString("hex")}`;
    const createdUs = this.clock();
    const expiresUs = options.ttlUs === undefined ? null : createdUs + options.ttlUs;
    const salt = (await this.sharedScram(identity))?.salt;
    const verifiers: KeyVerifiers = {
      sha256: sha256Hex(key),
      scram: formatScramVerifier(scramVerifier(key, salt ? { salt } : {})),
    };
    await this.store.accessKeys.create({ id, identity, verifiers: { ...verifiers }, createdUs, expiresUs });
    return { id, identity, key, createdUs, expiresUs };
  }

  list(identity?: string): Promise<AccessKeyRecord[]> {
    return this.store.accessKeys.list(identity === undefined ? {} : { identity });
  }

  async revoke(id: string): Promise<boolean> {
    const revoked = await this.store.accessKeys.revoke(id, this.clock());
    for (const known of this.lastKnown.values()) known.keys = known.keys.filter((k) => k.id !== id);
    return revoked;
  }

  /** Checks a presented key (cleartext over TLS) against the identity's live keys. */
  async verify(identity: string, presented: string): Promise<KeyCheck> {
    const now = this.clock();
    const keys = await this.liveKeys(identity);
    if (keys.length === 0) return { ok: false, reason: "no_key" };
    const digest = Buffer.from(sha256Hex(presented), "hex");
    for (const key of keys) {
      const stored = Buffer.from(String((key.verifiers as Partial<KeyVerifiers>).sha256 ?? ""), "hex");
      if (stored.length !== digest.length || !timingSafeEqual(stored, digest)) continue;
      if (key.expiresUs !== null && key.expiresUs <= now) return { ok: false, reason: "expired" };
      void this.store.accessKeys.touch(key.id, now).catch(() => undefined);
      return { ok: true, keyId: key.id };
    }
    return { ok: false, reason: "wrong_key" };
  }

  /** The SCRAM verifiers of the identity's live, unexpired keys (empty when it has none). */
  async scramCandidates(identity: string): Promise<ScramCandidates> {
    const now = this.clock();
    const keys = await this.liveKeys(identity);
    const verifiers = keys
      .filter((k) => k.expiresUs === null || k.expiresUs > now)
      .flatMap((k) => {
        const text = (k.verifiers as Partial<KeyVerifiers>).scram;
        return typeof text === "string" ? [{ keyId: k.id, verifier: parseScramVerifier(text) }] : [];
      });
    return { verifiers };
  }

  /** Records a successful use of a key (e.g. after SCRAM picked it). */
  touch(keyId: string): void {
    void this.store.accessKeys.touch(keyId, this.clock()).catch(() => undefined);
  }

  /**
   * The identity's live keys from the store; while the store cannot be reached, the ones last read
   * (within STORE_OUTAGE_KEY_GRACE_US). Data errors and a store never read are not papered over.
   */
  private async liveKeys(identity: string): Promise<AccessKeyRecord[]> {
    try {
      const keys = await this.store.accessKeys.list({ identity });
      this.lastKnown.set(identity, { keys, readUs: this.clock() });
      return keys;
    } catch (error) {
      const known = this.lastKnown.get(identity);
      if (!(error instanceof StoreError) || error.code === "INVALID_ARGUMENT" || !known || this.clock() - known.readUs > STORE_OUTAGE_KEY_GRACE_US) throw error;
      this.onOutage?.(identity, error);
      return known.keys;
    }
  }

  private async sharedScram(identity: string): Promise<ScramVerifier | undefined> {
    const keys = await this.store.accessKeys.list({ identity, includeRevoked: true });
    const text = keys.map((k) => (k.verifiers as Partial<KeyVerifiers>).scram).find((v): v is string => typeof v === "string");
    return text ? parseScramVerifier(text) : undefined;
  }
}

/** Parses "30d", "12h", "90m", "3600s" into µs. */
export function parseTtl(text: string): number | undefined {
  const match = /^(\d+)\s*([smhd])$/.exec(text.trim());
  if (!match) return undefined;
  const unit = { s: 1, m: 60, h: 3600, d: 86_400 }[match[2] as "s" | "m" | "h" | "d"];
  return Number(match[1]) * unit * 1_000_000;
}
