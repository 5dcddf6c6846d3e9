import { createHash } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import ssh2 from "ssh2";
import { GatewayError } from "../../errors.js";

/** The SSH listener's host key: what ssh2's server signs with, and what clients pin in known_hosts. */
export interface SshHostKey {
  /** The private key as read (OpenSSH or PEM format), for ssh2's `hostKeys`. */
  readonly privateKey: string;
  /** The public key as an OpenSSH line without comment: "ssh-ed25519 AAAA…" (known_hosts: prefix it with the host). */
  readonly publicLine: string;
  /** OpenSSH's fingerprint of it: "SHA256:…" (base64, no padding), as `ssh-keygen -l` and `ssh` show it. */
  readonly fingerprint: string;
  readonly source: "configured" | "generated" | "data-dir";
  /** The file it came from. */
  readonly path: string;
}

export const GENERATED_HOST_KEY = join("ssh", "ssh_host_ed25519_key");

/**
 * The configured `ssh.hostKey` file, else the Ed25519 key kept at <dataDir>/ssh/ssh_host_ed25519_key
 * (its `.pub` beside it), generated at first start so clients' known_hosts stay valid across restarts.
 */
export function loadSshHostKey(dataDir: string, configured: string | undefined): SshHostKey {
  if (configured !== undefined) return read(configured, "configured", "ssh.hostKey");
  const path = join(dataDir, GENERATED_HOST_KEY);
  if (existsSync(path)) return read(path, "data-dir", path);
  const pair = ssh2.utils.generateKeyPairSync("ed25519", { comment: "gatehouse gateway" });
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  writeFileSync(path, pair.private, { mode: 0o600 });
  chmodSync(path, 0o600);
  writeFileSync(`${path}.pub`, `${pair.public.trim()}\n`, { mode: 0o644 });
  return read(path, "generated", path);
}

function read(path: string, source: SshHostKey["source"], what: string): SshHostKey {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (cause) {
    throw new GatewayError("CONFIG_INVALID", `${what}: cannot read the SSH host key ${path}: ${(cause as Error).message}`, { cause });
  }
  const parsed = ssh2.utils.parseKey(text);
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  if (!key || key instanceof Error) throw new GatewayError("CONFIG_INVALID", `${what}: ${path} is not an SSH private key${key instanceof Error ? ` (${key.message})` : ""}`);
  if (key.getPrivatePEM() === null) throw new GatewayError("CONFIG_INVALID", `${what}: ${path} holds a public key; the host key must be the private one (unencrypted)`);
  const blob = key.getPublicSSH();
  return { privateKey: text, publicLine: `${key.type} ${blob.toString("base64")}`, fingerprint: sshFingerprint(blob), source, path };
}

/** OpenSSH's SHA256 fingerprint of a public key blob. */
export function sshFingerprint(blob: Uint8Array): string {
  return `SHA256:${createHash("sha256").update(blob).digest("base64").replace(/=+$/, "")}`;
}
