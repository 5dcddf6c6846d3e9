import { randomBytes, timingSafeEqual } from "node:crypto";
import type { AccessKeyRecord, Store } from "@gatehouse/store";
import { formatScramVerifier, parseScramVerifier, scramVerifier, type ScramVerifier } from "@gatehouse/protocols/postgres";
import { nativePasswordVerifier } from "@gatehouse/protocols/mysql";
import type { Clock } from "../clock.js";
import { sha256Hex } from "../data-dir.js";
import { KEY_CACHE_DEFAULTS, KeyCache, type KeyCacheTiming } from "./key-cache.js";
import { KeyUses } from "./key-uses.js";

// Access keys: long random secrets an identity presents as its password.
// The store keeps only verifiers: SHA-256 for cleartext (over TLS), and a
// SCRAM-SHA-256 verifier for plaintext loopback listeners. All keys of one
// identity share one SCRAM salt, so a SCRAM exchange (which must announce a
// salt before it knows which key is used) can check the proof against each.
// Keys made since MySQL came also carry SHA1(SHA1(key)) (`mysqlNative`) for
// mysql_native_password on plaintext loopback; older keys work over TLS only.

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
  /** SHA1(SHA1(key)), hex: what mysql_native_password checks a token against. */
  mysqlNative: string;
}

export type KeyCheck =
  | { ok: true; keyId: string }
  | { ok: false; reason: "no_key" | "wrong_key" | "expired" };

export interface ScramCandidates {
  /** Salt and iterations shared by every candidate (the identity's). */
  verifiers: Array<{ keyId: string; verifier: ScramVerifier }>;
}

/**
 * Checks access keys against each identity's keys as held in memory (KeyCache: refreshed from the
 * store in the background, so a login does not wait on the store for an identity seen before),
 * and reports key uses to the store in the background.
 */
export class AccessKeys {
  private readonly cache: KeyCache;
  private readonly uses: KeyUses;

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    options: {
      /** Keys were checked against the identity's keys as last read, the store not answering. */
      onOutage?: (identity: string, error: unknown) => void;
      timing?: KeyCacheTiming;
    } = {},
  ) {
    this.cache = new KeyCache((identity) => store.accessKeys.list({ identity }), clock, options.timing ?? KEY_CACHE_DEFAULTS, options.onOutage);
    this.uses = new KeyUses(store.accessKeys);
  }

  async create(identity: string, options: { ttlUs?: number } = {}): Promise<CreatedKey> {
    const key = `${KEY_PREFIX}${randomBytes(32).toString("base64url")}`;
    const id = `key_${randomBytes(6).toString("hex")}`;
    const createdUs = this.clock();
    const expiresUs = options.ttlUs === undefined ? null : createdUs + options.ttlUs;
    const salt = (await this.sharedScram(identity))?.salt;
    const verifiers: KeyVerifiers = {
      sha256: sha256Hex(key),
      scram: formatScramVerifier(scramVerifier(key, salt ? { salt } : {})),
      mysqlNative: Buffer.from(nativePasswordVerifier(key)).toString("hex"),
    };
    await this.store.accessKeys.create({ id, identity, verifiers: { ...verifiers }, createdUs, expiresUs });
    this.cache.add({ id, identity, verifiers: { ...verifiers }, createdUs, expiresUs, revokedUs: null, lastUsedUs: null });
    return { id, identity, key, createdUs, expiresUs };
  }

  list(identity?: string): Promise<AccessKeyRecord[]> {
    return this.store.accessKeys.list(identity === undefined ? {} : { identity });
  }

  async revoke(id: string): Promise<boolean> {
    const revoked = await this.store.accessKeys.revoke(id, this.clock());
    this.cache.drop(id);
    return revoked;
  }

  /**
   * Checks a presented key (cleartext over TLS) against the identity's live keys. Throws
   * CREDENTIALS_UNAVAILABLE when the identity's keys are not in memory and the store cannot say.
   */
  async verify(identity: string, presented: string): Promise<KeyCheck> {
    const digest = Buffer.from(sha256Hex(presented), "hex");
    const check = this.match(await this.cache.keys(identity), digest);
    if (check.ok || check.reason === "expired") return check;
    // No match: perhaps a key created since the identity's keys were last read (another replica, the store directly).
    const again = await this.cache.recheck(identity);
    return again ? this.match(again, digest) : check;
  }

  private match(keys: AccessKeyRecord[], digest: Buffer): KeyCheck {
    if (keys.length === 0) return { ok: false, reason: "no_key" };
    const now = this.clock();
    for (const key of keys) {
      const stored = Buffer.from(String((key.verifiers as Partial<KeyVerifiers>).sha256 ?? ""), "hex");
      if (stored.length !== digest.length || !timingSafeEqual(stored, digest)) continue;
      if (key.expiresUs !== null && key.expiresUs <= now) return { ok: false, reason: "expired" };
      this.uses.report(key.id, now);
      return { ok: true, keyId: key.id };
    }
    return { ok: false, reason: "wrong_key" };
  }

  /** The SCRAM verifiers of the identity's live, unexpired keys (empty when it has none); throws as verify does. */
  async scramCandidates(identity: string): Promise<ScramCandidates> {
    const now = this.clock();
    let keys = await this.cache.keys(identity);
    // SCRAM cannot try again after the proof: an identity with no keys in memory is read again first.
    if (keys.length === 0) keys = (await this.cache.recheck(identity)) ?? keys;
    const verifiers = keys
      .filter((k) => k.expiresUs === null || k.expiresUs > now)
      .flatMap((k) => {
        const text = (k.verifiers as Partial<KeyVerifiers>).scram;
        return typeof text === "string" ? [{ keyId: k.id, verifier: parseScramVerifier(text) }] : [];
      });
    return { verifiers };
  }

  /**
   * The mysql_native_password verifiers of the identity's live, unexpired keys, and how many live
   * keys have none (made before MySQL support: usable over TLS only). Throws as verify does.
   */
  async nativeCandidates(identity: string): Promise<{ verifiers: Array<{ keyId: string; verifier: Uint8Array }>; withoutNative: number }> {
    const now = this.clock();
    let keys = await this.cache.keys(identity);
    if (keys.length === 0) keys = (await this.cache.recheck(identity)) ?? keys;
    const live = keys.filter((k) => k.expiresUs === null || k.expiresUs > now);
    const verifiers = live.flatMap((k) => {
      const text = (k.verifiers as Partial<KeyVerifiers>).mysqlNative;
      return typeof text === "string" && /^[0-9a-f]{40}$/.test(text) ? [{ keyId: k.id, verifier: new Uint8Array(Buffer.from(text, "hex")) }] : [];
    });
    return { verifiers, withoutNative: live.length - verifiers.length };
  }

  /** Records a successful use of a key (e.g. after SCRAM picked it). */
  touch(keyId: string): void {
    this.uses.report(keyId, this.clock());
  }

  /** The store says the identity's access keys changed (another gateway): read them again (identity undefined: every identity's). */
  invalidate(identity?: string): void {
    this.cache.invalidate(identity);
  }

  /** Whether the store failed the last read of keys (identities not in memory cannot log in then). */
  get storeFailing(): boolean {
    return this.cache.storeFailing;
  }

  /** Stops the background refresh and sends the key uses not yet reported (waiting at most a second). */
  async close(): Promise<void> {
    this.cache.close();
    await this.uses.close();
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
