import { createHash, hash } from "node:crypto";
import type { NewSession, SessionEvent } from "@gatehouse/store";
import { canonicalEvent, canonicalHeader } from "./canonical.js";

// The per-session hash chain (docs/evidence.md):
//   genesis  = SHA-256(header(session))
//   hash(e)  = SHA-256(prev_hash ‖ event(e))      prev_hash: the previous event's hash, or the genesis
// where ‖ is concatenation of the 32 bytes of prev_hash and the UTF-8 bytes of the canonical
// encoding (canonical.ts). Hashes are stored as 64 lower-case hex digits.

/** The chain's starting point: the hash of the session's header. */
export function genesisHash(session: NewSession): string {
  return createHash("sha256").update(canonicalHeader(session), "utf8").digest("hex");
}

/** The hash of `event` chained after `prevHash`. */
export function eventHash(prevHash: string, event: SessionEvent): string {
  return chainHash(prevHash, canonicalEvent(event));
}

/** The hash of an event already canonically encoded (`canonical`), chained after `prevHash`. */
export function chainHash(prevHash: string, canonical: string): string {
  // One buffer and a one-shot hash: a third cheaper than a Hash object fed twice, per event.
  const input = Buffer.allocUnsafe(32 + Buffer.byteLength(canonical));
  input.write(prevHash, 0, "hex");
  input.write(canonical, 32, "utf8");
  return hash("sha256", input, "hex");
}

export const HASH_PATTERN = /^[0-9a-f]{64}$/;
