// The record's shapes, as the rest of gatehouse sees them. Times are
// microseconds since the Unix epoch (a double holds them exactly until 2255).

/** Who did it. `method` says how the gateway authenticated them. */
export interface Identity {
  name: string;
  issuer?: string | null;
  subject?: string | null;
  groups?: string[];
  method?: "access_key" | "oidc" | "none" | null;
}

export interface NewSession {
  id: string;
  identity: Identity;
  connection: string;
  protocol: string;
  connector?: string | null;
  clientAddress?: string | null;
  clientApplication?: string | null;
  startedUs: number;
}

export interface SessionRecord extends NewSession {
  endedUs: number | null;
  endReason: string | null;
  eventCount: number;
  /** Filled by the evidence work (hash chain and seal); null until then. */
  finalHash: string | null;
  sealSignature: string | null;
}

export type Outcome = "ok" | "error";

export interface SessionEvent {
  sessionId: string;
  /** 1-based, gap-free per session; assigned by the gateway's recorder. */
  seq: number;
  timeUs: number;
  /** connect, disconnect, query, execute, auth_failed, denied, ... */
  kind: string;
  command?: string | null;
  params?: unknown[] | null;
  outcome?: Outcome | null;
  /** Protocol-specific facts: command tag, rows, SQLSTATE, exit status, bytes... */
  details?: Record<string, unknown> | null;
  durationUs?: number | null;
  /** Hash chain, filled by the evidence work; null until then. */
  prevHash?: string | null;
  hash?: string | null;
}

export interface SessionFilter {
  identity?: string;
  connection?: string;
  sinceUs?: number;
  untilUs?: number;
  /** Default 50, at most 1000. */
  limit?: number;
}

export interface SessionClose {
  id: string;
  endedUs: number;
  endReason: string;
  finalHash?: string | null;
  sealSignature?: string | null;
}

/** An access key as stored: only verifiers, never the key itself. */
export interface NewAccessKey {
  id: string;
  identity: string;
  /** Verifiers by scheme (SHA-256, SCRAM-SHA-256, MySQL native...); the gateway computes them. */
  verifiers: Record<string, unknown>;
  createdUs: number;
  expiresUs?: number | null;
}

export interface AccessKeyRecord extends NewAccessKey {
  expiresUs: number | null;
  revokedUs: number | null;
  lastUsedUs: number | null;
}

export interface AccessKeyFilter {
  identity?: string;
  /** Default false: revoked keys are left out. */
  includeRevoked?: boolean;
}

/**
 * An SSH public key registered for an identity (migration 005). `publicKey` is the OpenSSH line
 * without its comment ("ssh-ed25519 AAAA…"); `fingerprint` is "SHA256:" + the unpadded base64 of
 * the key blob's SHA-256, as `ssh-keygen -l -E sha256` prints it. The gateway parses and checks
 * the key; the store only keeps it, one live key per fingerprint.
 */
export interface NewSshKey {
  id: string;
  identity: string;
  /** The key's type as in its blob: ssh-ed25519, ecdsa-sha2-nistp256, ssh-rsa... */
  algorithm: string;
  publicKey: string;
  fingerprint: string;
  comment?: string | null;
  createdUs: number;
  expiresUs?: number | null;
}

export interface SshKeyRecord extends NewSshKey {
  comment: string | null;
  expiresUs: number | null;
  revokedUs: number | null;
  lastUsedUs: number | null;
}

export interface SshKeyFilter {
  identity?: string;
  /** Only the live key with this fingerprint (revoked ones are never "the" key of a fingerprint). */
  fingerprint?: string;
  /** Default false: revoked keys are left out. */
  includeRevoked?: boolean;
}

/**
 * One shipment of the record, applied idempotently in one statement: sessions whose id exists are
 * skipped, events already stored (same session, seq and time) are skipped, and a close of a
 * session that is already closed changes nothing. Applied in that order, so a batch may hold a
 * session, its events and its close together.
 */
export interface RecordBatch {
  sessions?: readonly NewSession[];
  events?: readonly SessionEvent[];
  closes?: readonly SessionClose[];
  /** Applied last; one already stored (same gateway and seq) is skipped. */
  checkpoints?: readonly Checkpoint[];
}

/**
 * One link of a gateway's checkpoint chain (migration 003): a session opened or sealed, a
 * retention cut, or the gateway's live sessions at a moment. Hashed and signed by the gateway;
 * the store only keeps it.
 */
export interface Checkpoint {
  /** Key id of the gateway that signed it: one chain per gateway key. */
  gateway: string;
  /** 1, 2, 3… within the gateway's chain. */
  seq: number;
  timeUs: number;
  /** open, seal, retention, state. */
  kind: string;
  sessionId: string | null;
  details: Record<string, unknown> | null;
  prevHash: string;
  hash: string;
  signature: string;
}

export interface RecordBatchResult {
  /** Sessions created by this call (the rest were stored already). */
  sessions: number;
  /** Events inserted by this call. */
  events: number;
  /** Sessions this call closed. */
  closed: number;
  /** Closes that changed nothing, and why. */
  notClosed: { id: string; status: "already_closed" | "not_found" }[];
  /** Checkpoints inserted by this call. */
  checkpoints: number;
  /** Checkpoints whose (gateway, seq) is stored with another hash: a second chain under one key. */
  checkpointConflicts: { gateway: string; seq: number }[];
}

/** A monthly partition of the events table. */
export interface EventPartition {
  name: string;
  /** Inclusive lower bound of `ts`, µs since the epoch. */
  fromUs: number;
  /** Exclusive upper bound of `ts`, µs since the epoch. */
  toUs: number;
}

export interface RetentionResult {
  /** Partitions dropped (or that would be, for a dry run), oldest first. */
  dropped: EventPartition[];
  /**
   * Ended sessions that started before the newest dropped partition's end, removed with
   * whatever of their events lay in later partitions, so no session is left half-kept.
   */
  sessionsDeleted: number;
  /** Events of those sessions deleted from partitions that were kept. */
  straddlingEventsDeleted: number;
}
