import { createHash } from "node:crypto";

/**
 * The resource's pinned host key (a connection's `target.hostKey`), as the connector checks it
 * before it sends any credential. No trust on first use: a connection without a pin is refused.
 *
 * Accepted forms (several, one per line, any of them may match — a host with an Ed25519 and an
 * RSA key, or a key being rotated):
 *   [db.internal]:2222 ssh-ed25519 AAAAC3… comment     a known_hosts line (hosts, even hashed `|1|…`, are ignored:
 *   db.internal ssh-rsa AAAAB3…                        the pin belongs to the connection, which names the target)
 *   ssh-ed25519 AAAAC3…                                a public key line (`.pub` file, `ssh-keyscan` without the host)
 *   SHA256:Nh0Me…                                      an OpenSSH fingerprint (`ssh-keygen -l -E sha256 -f key.pub`)
 * Blank lines and `#` comments are skipped. `@cert-authority` and `@revoked` lines are refused:
 * certificates are not supported, and a revocation in a pin list is a mistake to point out.
 */
export interface HostKeyPin {
  /** Pinned key blobs (SSH wire format, what the server sends in KEXDH_REPLY), with their type. */
  readonly keys: readonly PinnedKey[];
  /** Pinned SHA-256 fingerprints, "SHA256:" + unpadded base64, for the `SHA256:` form. */
  readonly fingerprints: readonly string[];
}

export interface PinnedKey {
  /** The key type from the blob itself: "ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256"… */
  readonly type: string;
  readonly blob: Uint8Array;
}

export class HostKeyPinError extends Error {
  override name = "HostKeyPinError";
}

const FINGERPRINT = /^SHA256:([A-Za-z0-9+/]{43})=?$/;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/** Parses a pin; throws HostKeyPinError naming the line that is not a key, a known_hosts line or a fingerprint. */
export function parseHostKeyPin(text: string): HostKeyPin {
  const keys: PinnedKey[] = [];
  const fingerprints: string[] = [];
  const lines = text.split(/\r?\n/);
  lines.forEach((raw, index) => {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) return;
    const where = lines.length > 1 ? `line ${index + 1} of the host key pin` : "the host key pin";
    const fingerprint = FINGERPRINT.exec(line);
    if (fingerprint) {
      fingerprints.push(`SHA256:${fingerprint[1]}`);
      return;
    }
    if (line.startsWith("@")) {
      const marker = line.split(/\s+/, 1)[0];
      throw new HostKeyPinError(`${where}: ${marker} lines are not supported; pin the host's own key`);
    }
    const key = keyInFields(line.split(/\s+/));
    if (key === undefined) {
      throw new HostKeyPinError(
        `${where} is neither a known_hosts line ("host ssh-ed25519 AAAA…"), a public key ("ssh-ed25519 AAAA…") nor a fingerprint ("SHA256:…")`,
      );
    }
    keys.push(key);
  });
  if (keys.length === 0 && fingerprints.length === 0) throw new HostKeyPinError("the host key pin is empty");
  return { keys, fingerprints };
}

/**
 * The key in a known_hosts or public key line: the first field whose next field is base64 of a
 * blob that starts with that field as its SSH string (so a host name can never pass for a key type).
 */
function keyInFields(fields: readonly string[]): PinnedKey | undefined {
  for (let i = 0; i + 1 < fields.length && i < 2; i++) {
    const type = fields[i]!;
    const encoded = fields[i + 1]!;
    if (!BASE64.test(encoded)) continue;
    const blob = new Uint8Array(Buffer.from(encoded, "base64"));
    if (blobKeyType(blob) === type) return { type, blob };
  }
  return undefined;
}

/** The key type a key blob starts with (its first SSH string), or undefined when it does not hold one. */
export function blobKeyType(blob: Uint8Array): string | undefined {
  if (blob.byteLength < 4) return undefined;
  const length = new DataView(blob.buffer, blob.byteOffset, blob.byteLength).getUint32(0);
  if (length === 0 || length > 64 || 4 + length > blob.byteLength) return undefined;
  const type = Buffer.from(blob.buffer, blob.byteOffset + 4, length).toString("latin1");
  return /^[a-z0-9@.-]+$/.test(type) ? type : undefined;
}

/** OpenSSH's SHA-256 fingerprint of a key blob: "SHA256:" + base64 without padding (as `ssh-keygen -l -E sha256` prints). */
export function fingerprint(keyBlob: Uint8Array): string {
  return `SHA256:${createHash("sha256").update(keyBlob).digest("base64").replace(/=+$/, "")}`;
}

/** Whether the key the server presented is one the pin names (by blob or by fingerprint). */
export function matches(pin: HostKeyPin, keyBlob: Uint8Array): boolean {
  if (pin.keys.some((k) => equalBytes(k.blob, keyBlob))) return true;
  return pin.fingerprints.length > 0 && pin.fingerprints.includes(fingerprint(keyBlob));
}

/** The fingerprints a pin names, for messages ("expected SHA256:a or SHA256:b"). */
export function pinnedFingerprints(pin: HostKeyPin): string[] {
  return [...pin.keys.map((k) => fingerprint(k.blob)), ...pin.fingerprints];
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}
