// The record's shapes, as the rest of gatehouse sees them. Times are
// microseconds since the Unix epoch (a double holds them exactly until 2255).

/** Who did it. `method` says how the gateway authenticated them. */
export interface Identity {
  name: string;
  issuer?: string | null;
  subject?: string | null;
  groups?: string[];
  method?: "access_key" | "oidc" | "ssh_key" | "none" | null;
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

/**
 * What a search asks of one event's outcome. `denied` is a refused attempt: an event of kind
 * `denied` (policy) or `auth_failed` (authentication), whatever its `outcome`; `error` is a failed
 * command or connection that was not such a refusal; `ok` is `outcome = ok`. The three never overlap.
 */
export type SearchOutcome = "ok" | "error" | "denied";

/**
 * Conditions on one event, all of which must hold: what `events.search` matches, and what a
 * session listed by `sessions.list` must have at least one event of.
 */
export interface EventMatch {
  /** Any of these kinds. */
  kinds?: readonly string[];
  outcome?: SearchOutcome;
  /** The command contains any of these, ignoring case (a substring, not a pattern). */
  text?: readonly string[];
  /** `details.sqlstate` (Postgres and MySQL errors), e.g. "42P01". */
  sqlstate?: string;
  /** `details.exitStatus` (SSH) or `details.exitCode` (kubectl exec). */
  exitStatus?: number;
  /** `details.httpStatus` (Kubernetes requests). */
  httpStatus?: number;
}

/** A position in the newest-first order of events: the last event of a page. */
export interface EventCursor {
  timeUs: number;
  sessionId: string;
  seq: number;
}

export interface EventFilter extends EventMatch {
  identity?: string;
  connection?: string;
  protocol?: string;
  /** The event's time: `sinceUs` inclusive, `untilUs` exclusive. */
  sinceUs?: number;
  untilUs?: number;
  /** Default 50, at most 1000. */
  limit?: number;
  /** Only events after this one in the order (older, or the same µs and lower session id, seq). */
  after?: EventCursor;
}

/** An event found by a search, with its session's identity, connection and protocol. */
export interface FoundEvent extends SessionEvent {
  identity: string;
  connection: string;
  protocol: string;
}

export interface EventPage {
  /** Newest first by (time, session id, seq). */
  events: FoundEvent[];
  /** Where the next page starts; null when this page holds the last match. */
  next: EventCursor | null;
}

/** A position in the newest-first order of sessions: the last session of a page. */
export interface SessionCursor {
  startedUs: number;
  id: string;
}

export interface SessionFilter extends EventMatch {
  identity?: string;
  connection?: string;
  protocol?: string;
  /** The session's start: `sinceUs` inclusive, `untilUs` exclusive. */
  sinceUs?: number;
  untilUs?: number;
  /** Default 50, at most 1000. */
  limit?: number;
  /** Only sessions after this one in the order (started earlier, or at the same µs with a lower id). */
  after?: SessionCursor;
}

export interface SessionPage {
  /** Newest first by (start, id). */
  sessions: SessionRecord[];
  next: SessionCursor | null;
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
  /** Stream chunks (migration 004); one already stored (same session, stream and seq) is skipped. */
  chunks?: readonly StreamChunk[];
}

/**
 * Which way a stream chunk went: `i` client → resource, `o` the resource's output (stdout), `e`
 * its stderr, `r` a terminal resize (data: "COLSxROWS" in ASCII).
 */
export type StreamDirection = "i" | "o" | "e" | "r";

/** One chunk of an interactive byte stream (an SSH shell, a kubectl exec), chained per stream. */
export interface StreamChunk {
  sessionId: string;
  /** 1, 2, 3… within the session. */
  streamId: number;
  /** 1, 2, 3… within the stream, gap-free. */
  seq: number;
  /** When its first byte was seen. */
  timeUs: number;
  direction: StreamDirection;
  data: Uint8Array;
  prevHash: string;
  hash: string;
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
  /** Stream chunks inserted by this call. */
  chunks: number;
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

/**
 * A gateway's seal (signing) public key, registered by the gateway at start (migration 007).
 * Retired: its gateway no longer seals with it (it made a new key at its next start); seals made
 * with it still verify — retired is not revoked.
 */
export interface GatewayKeyRecord {
  /** First 16 hex digits of SHA-256 over the raw 32-byte Ed25519 public key (derived by the store). */
  keyId: string;
  /** SubjectPublicKeyInfo PEM. */
  publicKeyPem: string;
  /** The name the gateway gave at registration (its host name). */
  gateway: string;
  createdUs: number;
  retiredUs: number | null;
}

/** What a gateway's registration found: its key's row, new or already there. */
export interface GatewayKeyRegistration {
  keyId: string;
  /** False when the key was registered before (a restart). */
  inserted: boolean;
  retiredUs: number | null;
}

/** An identity's settings kept in the store (migration 007), shared by every gateway of the store. */
export interface IdentitySettings {
  identity: string;
  disabled: boolean;
  updatedUs: number;
}

/**
 * A change another gateway (or this one) made to what logins depend on: access keys, SSH keys,
 * identity settings, or gateway keys (`table`), delivered by Postgres NOTIFY when it committed.
 */
export interface StoreChange {
  table: string;
  /** The identity whose keys or settings changed; null for gateway keys. */
  identity: string | null;
  /** The change counter's value taken by this change (`changes.version()` reads the latest). */
  version: number;
}
