import { createHash } from "node:crypto";
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
  return createHash("sha256").update(Buffer.from(prevHash, "hex")).update(canonicalEvent(event), "utf8").digest("hex");
}

export const HASH_PATTERN = /^[0-9a-f]{64}$/;
