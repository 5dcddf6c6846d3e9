import { createHash, sign, verify } from "node:crypto";
import type { Checkpoint } from "@gatehouse/store";
import { canonicalJson } from "./canonical.js";
import { chainHash } from "./chain.js";
import type { PublicKey, SigningKey } from "./signing.js";

// The gateway's checkpoint chain (docs/evidence.md, "Checkpoints"): its own signed, hash-chained
// log of what it did to the record — each session it opened and sealed, each retention cut, and
// from time to time which sessions it still had live. The store's owner can delete a session, or
// un-seal one, without breaking that session's own chain; they cannot do it without contradicting
// this one (or cutting it, which an exported copy shows).
//
//   checkpoint(c) = JCS([ "gatehouse-checkpoint-v1", gateway, seq, timeUs, kind, sessionId, details ])
//   start(g)      = SHA-256( JCS([ "gatehouse-checkpoints-v1", g ]) )   prev_hash of seq 1
//   hash(c)       = SHA-256( prev_hash ‖ checkpoint(c) )                 as events are chained
//   signature(c)  = ed25519:<key id>:<base64 Ed25519 signature of the UTF-8 hex of hash(c)>
//
// `gateway` is the signing key's id: one chain per key, so gateways sharing a store each keep
// their own, and a verifier holding their public keys checks them all.

export const CHECKPOINT_TAG = "gatehouse-checkpoint-v1";
const CHAIN_TAG = "gatehouse-checkpoints-v1";
const SIGNATURE_PREFIX = "ed25519";

/**
 * open: a session began (details: genesis, startedUs). seal: it ended and was sealed (eventCount,
 * finalHash, endedUs, endReason). retention: `gatehouse retention` removes ended sessions started
 * before horizonUs (and ended by this checkpoint's time). state: the sessions the gateway has live.
 */
export const CHECKPOINT_KINDS = ["open", "seal", "retention", "state"] as const;
export type CheckpointKind = (typeof CHECKPOINT_KINDS)[number];

export interface OpenDetails {
  genesis: string;
  startedUs: number;
}
export interface SealDetails {
  eventCount: number;
  finalHash: string;
  endedUs: number;
  endReason: string;
}
export interface RetentionDetails {
  cutoffUs: number;
  horizonUs: number;
}
export interface StateDetails {
  live: string[];
}

/** The hash a gateway's chain starts from. */
export function chainStart(gateway: string): string {
  return createHash("sha256").update(canonicalJson([CHAIN_TAG, gateway]), "utf8").digest("hex");
}

/** The canonical encoding of a checkpoint (without its hashes and signature). */
export function canonicalCheckpoint(c: Omit<Checkpoint, "prevHash" | "hash" | "signature">): string {
  return canonicalJson([CHECKPOINT_TAG, c.gateway, c.seq, c.timeUs, c.kind, c.sessionId, c.details]);
}

export function checkpointHash(c: Omit<Checkpoint, "hash" | "signature">): string {
  return chainHash(c.prevHash, canonicalCheckpoint(c));
}

export type CheckpointCheck = "ok" | "edited" | "bad_signature" | "unknown_key";

/** Checks one checkpoint on its own: its hash over its content, and its signature by its gateway's key. */
export function checkCheckpoint(c: Checkpoint, keys: readonly PublicKey[]): CheckpointCheck {
  if (checkpointHash(c) !== c.hash) return "edited";
  const parts = c.signature.split(":");
  if (parts.length !== 3 || parts[0] !== SIGNATURE_PREFIX || parts[1] !== c.gateway) return "bad_signature";
  const key = keys.find((k) => k.keyId === c.gateway);
  if (!key) return "unknown_key";
  const signature = Buffer.from(parts[2]!, "base64");
  return signature.length === 64 && verify(null, Buffer.from(c.hash, "utf8"), key.key, signature) ? "ok" : "bad_signature";
}

/** Where a chain stands: its last seq and hash (seq 0 and the start hash when empty). */
export interface ChainHead {
  seq: number;
  hash: string;
}

/**
 * Makes the next links of one gateway's chain. `next` only builds and signs a checkpoint; the
 * caller journals it and then calls `advance`, so a checkpoint the journal refused leaves no gap.
 */
export class CheckpointChain {
  private current: ChainHead;

  constructor(
    private readonly key: SigningKey,
    head: ChainHead | undefined,
  ) {
    this.current = head ?? { seq: 0, hash: chainStart(key.keyId) };
  }

  get gateway(): string {
    return this.key.keyId;
  }

  get head(): ChainHead {
    return { ...this.current };
  }

  next(kind: CheckpointKind, sessionId: string | null, details: OpenDetails | SealDetails | RetentionDetails | StateDetails, timeUs: number): Checkpoint {
    const unsigned = { gateway: this.key.keyId, seq: this.current.seq + 1, timeUs, kind, sessionId, details: { ...details } as Record<string, unknown>, prevHash: this.current.hash };
    const hash = checkpointHash(unsigned);
    const signature = `${SIGNATURE_PREFIX}:${this.key.keyId}:${sign(null, Buffer.from(hash, "utf8"), this.key.privateKey).toString("base64")}`;
    return { ...unsigned, hash, signature };
  }

  /** `c` (made by next()) is in the journal: the chain goes on from it. */
  advance(c: Checkpoint): void {
    if (c.seq !== this.current.seq + 1 || c.prevHash !== this.current.hash) throw new Error(`checkpoint ${c.seq} does not follow ${this.current.seq}`);
    this.current = { seq: c.seq, hash: c.hash };
  }
}
