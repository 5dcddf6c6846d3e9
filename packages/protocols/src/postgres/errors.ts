/**
 * The one error family of the Postgres protocol layer.
 *
 * Every failure this layer reports is a `PostgresProtocolError` with a `code` from a closed
 * union. Errors that are meant to reach a Postgres client carry their wire form: `sqlState`
 * and `clientMessage` (a message that is safe to show the peer — never internal detail), so
 * the caller can answer with `errorResponse(...)` and close. Anything else (`message`,
 * `context`, `cause`) is for the operator's log.
 */

export const PostgresErrorCode = {
  /** Bytes that are not valid Postgres protocol at this point (bad length, unknown type, truncated field). */
  PROTOCOL_VIOLATION: "PROTOCOL_VIOLATION",
  /** A declared message length above the configured maximum; rejected before any buffering. */
  MESSAGE_TOO_LARGE: "MESSAGE_TOO_LARGE",
  /** A StartupMessage with a protocol major version other than 3. */
  UNSUPPORTED_PROTOCOL: "UNSUPPORTED_PROTOCOL",
  /** The server asked for an authentication method we do not implement or were told not to allow. */
  UNSUPPORTED_AUTH: "UNSUPPORTED_AUTH",
  /** Authentication could not be completed (e.g. the server's SCRAM signature did not verify, no password). */
  AUTH_FAILED: "AUTH_FAILED",
  /** TLS was required but the server answered the SSLRequest with 'N'. */
  TLS_REQUIRED: "TLS_REQUIRED",
  /** The server sent an ErrorResponse during startup; `serverError` holds its fields. */
  SERVER_ERROR: "SERVER_ERROR",
  /** A method of a state machine was called in a state where it makes no sense (a caller bug). */
  INVALID_STATE: "INVALID_STATE",
  /** A bounded piece of per-session state (pending commands) overflowed. */
  LIMIT_EXCEEDED: "LIMIT_EXCEEDED",
} as const;
export type PostgresErrorCode = (typeof PostgresErrorCode)[keyof typeof PostgresErrorCode];

/** The fields of an ErrorResponse/NoticeResponse, named after the spec's field types. */
export interface ErrorFields {
  /** `S`: ERROR, FATAL, PANIC (errors) or WARNING, NOTICE, DEBUG, INFO, LOG (notices); may be localized. */
  readonly severity: string;
  /** `V`: the severity, never localized (servers 9.6+). */
  readonly severityNonLocalized?: string;
  /** `C`: the SQLSTATE code. */
  readonly code: string;
  /** `M`: the primary human-readable message. */
  readonly message: string;
  /** `D` */ readonly detail?: string;
  /** `H` */ readonly hint?: string;
  /** `P`: cursor position in the original query string (decimal, 1-based characters). */
  readonly position?: string;
  /** `p` */ readonly internalPosition?: string;
  /** `q` */ readonly internalQuery?: string;
  /** `W` */ readonly where?: string;
  /** `s` */ readonly schema?: string;
  /** `t` */ readonly table?: string;
  /** `c` */ readonly column?: string;
  /** `d` */ readonly dataType?: string;
  /** `n` */ readonly constraint?: string;
  /** `F` */ readonly file?: string;
  /** `L` */ readonly line?: string;
  /** `R` */ readonly routine?: string;
}

/** Default SQLSTATE and client-safe message per code, used when the thrower gives none. */
const WIRE_DEFAULTS: Record<PostgresErrorCode, { sqlState: string; clientMessage: string }> = {
  PROTOCOL_VIOLATION: { sqlState: "08P01", clientMessage: "invalid frontend message" },
  MESSAGE_TOO_LARGE: { sqlState: "08P01", clientMessage: "invalid message length" },
  UNSUPPORTED_PROTOCOL: { sqlState: "0A000", clientMessage: "unsupported frontend protocol" },
  UNSUPPORTED_AUTH: { sqlState: "28000", clientMessage: "authentication method not supported" },
  AUTH_FAILED: { sqlState: "28P01", clientMessage: "authentication failed" },
  TLS_REQUIRED: { sqlState: "08004", clientMessage: "the server refused TLS" },
  SERVER_ERROR: { sqlState: "08006", clientMessage: "the server refused the connection" },
  INVALID_STATE: { sqlState: "XX000", clientMessage: "internal error" },
  LIMIT_EXCEEDED: { sqlState: "54000", clientMessage: "too many pipelined commands" },
};

export interface PostgresProtocolErrorOptions {
  readonly cause?: unknown;
  /** SQLSTATE to send a client; defaults per code. */
  readonly sqlState?: string;
  /** A message safe to send the peer; defaults per code. */
  readonly clientMessage?: string;
  /** Anything an operator needs to act on it (lengths, message type, state). */
  readonly context?: Readonly<Record<string, unknown>>;
  /** For `SERVER_ERROR`: the server's ErrorResponse. */
  readonly serverError?: ErrorFields;
}

export class PostgresProtocolError extends Error {
  override readonly name = "PostgresProtocolError";
  readonly code: PostgresErrorCode;
  readonly sqlState: string;
  readonly clientMessage: string;
  readonly context: Readonly<Record<string, unknown>>;
  readonly serverError: ErrorFields | undefined;

  constructor(code: PostgresErrorCode, message: string, options: PostgresProtocolErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    const defaults = WIRE_DEFAULTS[code];
    this.sqlState = options.sqlState ?? options.serverError?.code ?? defaults.sqlState;
    this.clientMessage = options.clientMessage ?? defaults.clientMessage;
    this.context = options.context ?? {};
    this.serverError = options.serverError;
  }
}

export function isPostgresProtocolError(value: unknown): value is PostgresProtocolError {
  return value instanceof PostgresProtocolError;
}

/** Shorthand for the most common throw in the parsers. */
export function violation(message: string, context?: Readonly<Record<string, unknown>>): PostgresProtocolError {
  return new PostgresProtocolError("PROTOCOL_VIOLATION", message, context === undefined ? {} : { context });
}
