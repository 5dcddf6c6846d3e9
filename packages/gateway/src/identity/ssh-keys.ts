import { createHash, createPublicKey, randomBytes } from "node:crypto";
import ssh2 from "ssh2";
import { StoreError, type SshKeyRecord, type Store } from "@gatehouse/store";
import type { Clock } from "../clock.js";
import { GatewayError } from "../errors.js";
import { KEY_CACHE_DEFAULTS, KeyCache, type KeyCacheTiming } from "./key-cache.js";
import { KeyUses } from "./key-uses.js";

// SSH public keys registered per identity: what a stock `ssh` client offers at the gateway's SSH
// listener. Registration parses the key with ssh2 and refuses what OpenSSH itself has given up on
// (DSA, RSA under 2048 bits) or what is not a plain public key (a private key, a certificate). A
// login is looked up by the key blob's SHA-256 fingerprint among the identity's live keys, held in
// memory by the same KeyCache as access keys: a store outage costs nothing for identities seen in
// the last 15 minutes, and uses are reported in the background by the same KeyUses.

const ID_PREFIX = "sshk_";

const PRIVATE_KEY_GIVEN = "this is a private key; give its public half (the .pub file), and keep the private key where it was";

/** RSA keys shorter than this are refused (OpenSSH 8.8+ refuses under 1024; NIST wants 2048). */
export const MIN_RSA_BITS = 2048;

/** A public key as given to `keys add-ssh`, parsed and checked. */
export interface ParsedSshPublicKey {
  /** The type named in the key blob: ssh-ed25519, ecdsa-sha2-nistp256/384/521, ssh-rsa. */
  algorithm: string;
  /** The key blob (what the SSH protocol carries in a publickey userauth request). */
  blob: Uint8Array;
  /** The OpenSSH line without its comment: "ssh-ed25519 AAAA…". */
  publicKey: string;
  /** "SHA256:…", as `ssh-keygen -l -E sha256` prints it. */
  fingerprint: string;
  comment: string | null;
}

/** What the SSH listener asks for: the registered key that matched, or null. */
export interface SshKeyMatch {
  id: string;
  fingerprint: string;
}

export type SshKeyCheck =
  | { ok: true; keyId: string; fingerprint: string }
  | { ok: false; reason: "no_key" | "unknown_key" | "expired"; fingerprint: string };

/** "SHA256:" + the unpadded base64 of SHA-256(blob): OpenSSH's fingerprint of a key. */
export function sshFingerprint(blob: Uint8Array): string {
  return `SHA256:${createHash("sha256").update(blob).digest("base64").replace(/=+$/, "")}`;
}

/**
 * Parses one OpenSSH public key (a `.pub` file's line, or RFC 4716 text). Throws SSH_KEY_INVALID
 * with a message meant for the person registering it; the text itself is never echoed, in case it
 * was a private key.
 */
export function parseSshPublicKey(text: string): ParsedSshPublicKey {
  const lines = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== "" && !l.startsWith("#"));
  if (lines.length === 0) throw invalid("no public key given (expected a line such as \"ssh-ed25519 AAAA… comment\")");
  const first = lines[0]!;
  // Judged by the first word before ssh2 sees it: its parser would only say "unsupported".
  const type = first.split(/\s+/)[0]!;
  if (type === "ssh-dss") throw invalid("DSA keys are refused (OpenSSH disabled them in 7.0); use an ed25519 key: ssh-keygen -t ed25519");
  if (type.startsWith("sk-")) throw invalid(`${type} (security key) public keys are not supported yet; use an ed25519 key`);
  if (type.includes("-cert-v01@openssh.com")) throw invalid("SSH certificates are not supported; register the plain public key");
  if (/^-----BEGIN .*PRIVATE KEY-----$/.test(first) || first.startsWith("PuTTY-User-Key-File")) throw invalid(PRIVATE_KEY_GIVEN);
  if (lines.length > 1 && !first.startsWith("---- BEGIN")) throw invalid(`expected one public key, got ${lines.length} lines; register each key on its own`);
  const parsed = ssh2.utils.parseKey(lines.join("\n"));
  if (parsed instanceof Error) {
    throw invalid(first.startsWith("-----BEGIN") ? "this looks like a private key or a PEM file; give the OpenSSH public key (the .pub file)" : `not an OpenSSH public key (${parsed.message})`);
  }
  const key = Array.isArray(parsed) ? (parsed[0] as ssh2.ParsedKey) : parsed;
  if (key.isPrivateKey()) throw invalid(PRIVATE_KEY_GIVEN);
  const algorithm: string = key.type;
  if (algorithm === "ssh-rsa") {
    const bits = createPublicKey(key.getPublicPEM()).asymmetricKeyDetails?.modulusLength ?? 0;
    if (bits < MIN_RSA_BITS) throw invalid(`RSA keys need at least ${MIN_RSA_BITS} bits, this one has ${bits}; make a new one: ssh-keygen -t ed25519`);
  } else if (algorithm !== "ssh-ed25519" && !algorithm.startsWith("ecdsa-sha2-nistp")) {
    throw invalid(`${algorithm} keys are not supported; use ed25519, ecdsa or RSA (2048 bits or more)`);
  }
  const blob = new Uint8Array(key.getPublicSSH());
  return {
    algorithm,
    blob,
    publicKey: `${algorithm} ${Buffer.from(blob).toString("base64")}`,
    fingerprint: sshFingerprint(blob),
    comment: key.comment === "" ? null : key.comment,
  };
}

/**
 * SSH public keys per identity: registration, listing, revocation (through the API), and the
 * lookup the SSH listener makes for each key a client offers.
 */
export class SshKeys {
  private readonly cache: KeyCache<SshKeyRecord>;
  private readonly uses: KeyUses;

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    options: {
      /** Keys were looked up among the identity's keys as last read, the store not answering. */
      onOutage?: (identity: string, error: unknown) => void;
      timing?: KeyCacheTiming;
    } = {},
  ) {
    this.cache = new KeyCache<SshKeyRecord>((identity) => store.sshKeys.list({ identity }), clock, options.timing ?? KEY_CACHE_DEFAULTS, options.onOutage);
    this.uses = new KeyUses(store.sshKeys);
  }

  /**
   * Registers a public key for an identity. SSH_KEY_INVALID when it cannot be used; SSH_KEY_TAKEN
   * when it is already a live key (a key names one identity, or a login could not say whose it is).
   */
  async add(identity: string, text: string, options: { ttlUs?: number } = {}): Promise<SshKeyRecord> {
    const parsed = parseSshPublicKey(text);
    const [holder] = await this.store.sshKeys.list({ fingerprint: parsed.fingerprint });
    if (holder) throw taken(parsed.fingerprint, holder);
    const createdUs = this.clock();
    const record: SshKeyRecord = {
      id: `${ID_PREFIX}${randomBytes(6).toString("hex")}`,
      identity,
      algorithm: parsed.algorithm,
      publicKey: parsed.publicKey,
      fingerprint: parsed.fingerprint,
      comment: parsed.comment,
      createdUs,
      expiresUs: options.ttlUs === undefined ? null : createdUs + options.ttlUs,
      revokedUs: null,
      lastUsedUs: null,
    };
    try {
      await this.store.sshKeys.create(record);
    } catch (error) {
      // Registered at the same moment elsewhere (the unique index on live fingerprints).
      if (error instanceof StoreError && error.code === "CONFLICT") {
        const [winner] = await this.store.sshKeys.list({ fingerprint: parsed.fingerprint }).catch(() => []);
        if (winner) throw taken(parsed.fingerprint, winner);
      }
      throw error;
    }
    this.cache.add(record);
    return record;
  }

  list(identity?: string): Promise<SshKeyRecord[]> {
    return this.store.sshKeys.list(identity === undefined ? {} : { identity });
  }

  /** True when this call revoked the key; from now on no login through this gateway matches it. */
  async revoke(id: string): Promise<boolean> {
    const revoked = await this.store.sshKeys.revoke(id, this.clock());
    this.cache.drop(id);
    return revoked;
  }

  /**
   * The identity's live key with this blob, and why not when none. `algorithm` is the public key
   * algorithm the client named (ssh2 reports "ssh-rsa" for rsa-sha2-256/512 already). Throws
   * CREDENTIALS_UNAVAILABLE when the identity's keys are not in memory and the store cannot say.
   */
  async check(identity: string, algorithm: string, blob: Uint8Array): Promise<SshKeyCheck> {
    const fingerprint = sshFingerprint(blob);
    const wanted = { algorithm: keyType(algorithm), fingerprint, publicKey: Buffer.from(blob).toString("base64") };
    const found = this.match(await this.cache.keys(identity), wanted);
    if (found.ok || found.reason === "expired") return found;
    // No match: perhaps a key registered since the identity's keys were last read (another replica).
    const again = await this.cache.recheck(identity);
    return again ? this.match(again, wanted) : found;
  }

  /** The lookup the SSH listener makes: a live, unexpired key of the identity with this blob, or null. */
  async find(identity: string, algorithm: string, blob: Uint8Array): Promise<SshKeyMatch | null> {
    const found = await this.check(identity, algorithm, blob);
    return found.ok ? { id: found.keyId, fingerprint: found.fingerprint } : null;
  }

  /** The store says the identity's SSH keys changed (another gateway): read them again (identity undefined: every identity's). */
  invalidate(identity?: string): void {
    this.cache.invalidate(identity);
  }

  /** Whether the store failed the last read of keys. */
  get storeFailing(): boolean {
    return this.cache.storeFailing;
  }

  /** Stops the background refresh and sends the key uses not yet reported (waiting at most a second). */
  async close(): Promise<void> {
    this.cache.close();
    await this.uses.close();
  }

  private match(keys: SshKeyRecord[], wanted: { algorithm: string; fingerprint: string; publicKey: string }): SshKeyCheck {
    const { fingerprint } = wanted;
    if (keys.length === 0) return { ok: false, reason: "no_key", fingerprint };
    const key = keys.find((k) => k.fingerprint === fingerprint && k.algorithm === wanted.algorithm && k.publicKey === `${k.algorithm} ${wanted.publicKey}`);
    if (!key) return { ok: false, reason: "unknown_key", fingerprint };
    const now = this.clock();
    if (key.expiresUs !== null && key.expiresUs <= now) return { ok: false, reason: "expired", fingerprint };
    this.uses.report(key.id, now);
    return { ok: true, keyId: key.id, fingerprint };
  }
}

/** The key type for a public key algorithm name: RSA keys sign as rsa-sha2-256/512 (RFC 8332). */
function keyType(algorithm: string): string {
  return algorithm === "rsa-sha2-256" || algorithm === "rsa-sha2-512" ? "ssh-rsa" : algorithm;
}

function invalid(message: string): GatewayError {
  return new GatewayError("SSH_KEY_INVALID", message);
}

function taken(fingerprint: string, holder: SshKeyRecord): GatewayError {
  return new GatewayError("SSH_KEY_TAKEN", `the key ${fingerprint} is already registered for identity ${holder.identity} (${holder.id}); a key can belong to one identity only — revoke it there first`);
}
