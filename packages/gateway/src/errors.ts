/** Every failure the gateway itself raises. `code` is closed so callers can switch on it. */
export type GatewayErrorCode =
  | "CONFIG_UNREADABLE"
  | "CONFIG_INVALID"
  | "DATA_DIR_UNUSABLE"
  | "LISTEN_FAILED"
  | "NO_CONNECTOR"
  | "API_UNREACHABLE"
  | "API_ERROR"
  /** The journal cannot be opened or recovered (locked by another gateway, unreadable). */
  | "JOURNAL_FAILED"
  /** Strict recording cannot make a record durable: the journal is full or unwritable (`recording`). */
  | "RECORDING_UNAVAILABLE"
  /** The Ed25519 signing key cannot be read, created or parsed. */
  | "SIGNING_KEY_UNUSABLE"
  /**
   * An access key cannot be checked now: the identity's keys are not in memory (never read, or
   * last read too long ago) and the store did not answer within the cold-read deadline.
   */
  | "CREDENTIALS_UNAVAILABLE"
  /** An SSH public key offered for registration cannot be used: unparseable, private, DSA, RSA under 2048 bits... */
  | "SSH_KEY_INVALID"
  /** An SSH public key offered for registration is already a live key (of this identity or another). */
  | "SSH_KEY_TAKEN"
  /** A client closed its connection (or it failed: `cause`) while the gateway waited for its handshake. */
  | "CLIENT_GONE"
  /** A client's handshake did not finish before its deadline. */
  | "CLIENT_TIMEOUT"
  /** A checkpoint export (verify --checkpoints FILE) cannot be read or is not one. */
  | "CHECKPOINTS_UNREADABLE"
  /** A person's console sign-in at the OIDC provider did not complete (console/oidc-sign-in.ts). */
  | "OIDC_SIGN_IN_FAILED";

/** Why recording is unavailable, for RECORDING_UNAVAILABLE; the protocols map it to their own error. */
export interface RecordingProblem {
  /** full: over recording.journal.maxBytes; unwritable: the disk refused a write or a sync. */
  reason: "journal_full" | "journal_unwritable";
  /** The system error underneath (ENOSPC, EIO...), when there is one. */
  errno?: string;
}

/** System errors that mean the disk (or the user's quota on it) has no room left. */
const DISK_FULL_ERRNOS: ReadonlySet<string> = new Set(["ENOSPC", "EDQUOT"]);

/**
 * Whether recording stopped for want of space — over `recording.journal.maxBytes`, or a disk or
 * quota that refused a write — rather than a disk that failed: protocols answer "disk full" then.
 */
export function isOutOfSpace(problem: RecordingProblem): boolean {
  return problem.reason === "journal_full" || (problem.errno !== undefined && DISK_FULL_ERRNOS.has(problem.errno));
}

export class GatewayError extends Error {
  override readonly name = "GatewayError";
  constructor(
    readonly code: GatewayErrorCode,
    message: string,
    options?: { cause?: unknown; problems?: string[]; recording?: RecordingProblem },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.problems = options?.problems ?? [];
    this.recording = options?.recording;
  }
  /** For CONFIG_INVALID: one line per problem, each starting with the key's path. */
  readonly problems: string[];
  /** For RECORDING_UNAVAILABLE. */
  readonly recording: RecordingProblem | undefined;
}
