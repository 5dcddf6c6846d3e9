import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";

/** A key pair made by the real `ssh-keygen` in `dir`: its files, its .pub line, and ssh-keygen's own SHA256 fingerprint. */
export interface GeneratedKey {
  privatePath: string;
  publicPath: string;
  publicLine: string;
  fingerprint: string;
}

export function sshKeygen(dir: string, name: string, type: "ed25519" | "ecdsa" | "rsa" | "dsa", options: { bits?: number; comment?: string } = {}): GeneratedKey {
  const privatePath = join(dir, name);
  execFileSync("ssh-keygen", ["-q", "-t", type, ...(options.bits ? ["-b", String(options.bits)] : []), "-N", "", "-C", options.comment ?? `${name}@test`, "-f", privatePath], { stdio: "pipe" });
  const publicPath = `${privatePath}.pub`;
  // "256 SHA256:abc… comment (ED25519)"
  const listed = execFileSync("ssh-keygen", ["-l", "-E", "sha256", "-f", publicPath], { encoding: "utf8" });
  return { privatePath, publicPath, publicLine: readFileSync(publicPath, "utf8").trim(), fingerprint: listed.split(" ")[1]! };
}

/** The key blob of a .pub line: what an SSH client sends in its publickey request. */
export function blobOf(publicLine: string): Uint8Array {
  return new Uint8Array(Buffer.from(publicLine.split(/\s+/)[1]!, "base64"));
}
