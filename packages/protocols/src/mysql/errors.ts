/**
 * The one error family of the MySQL protocol layer.
 *
 * Every failure this layer reports is a `MysqlProtocolError` with a `code` from a closed union.
 * Errors meant for a MySQL client carry their wire form — `errno`, `sqlState` and a
 * `clientMessage` safe to show the peer — so the caller can answer with an ERR packet
 * (`errPacketFor`) and close. `message`, `context` and `cause` are for the operator's log.
 */
import { ServerError } from "./constants.js";

export const MysqlErrorCode = {
  /** Bytes that are not valid MySQL protocol at this point (truncated field, wrong packet kind). */
  PROTOCOL_VIOLATION: "PROTOCOL_VIOLATION",
  /** A logical packet above the maximum packet size; rejected before its payload is buffered. */
  PACKET_TOO_LARGE: "PACKET_TOO_LARGE",
  /** A sequence id other than the one expected. */
  PACKETS_OUT_OF_ORDER: "PACKETS_OUT_OF_ORDER",
  /** The peer lacks a capability we require (CLIENT_PROTOCOL_41, CLIENT_PLUGIN_AUTH...). */
  UNSUPPORTED_CAPABILITY: "UNSUPPORTED_CAPABILITY",
  /** An authentication plugin we do not implement or were told not to allow. */
  UNSUPPORTED_AUTH: "UNSUPPORTED_AUTH",
  /** Authentication could not be completed (wrong password, no password). */
  AUTH_FAILED: "AUTH_FAILED",
  /** TLS is required and the peer did not offer or accept it. */
  TLS_REQUIRED: "TLS_REQUIRED",
  /** The server answered with an ERR packet; `serverError` holds it. */
  SERVER_ERROR: "SERVER_ERROR",
  /** A method of a state machine was called in a state where it makes no sense (a caller bug). */
  INVALID_STATE: "INVALID_STATE",
} as const;
export type MysqlErrorCode = (typeof MysqlErrorCode)[keyof typeof MysqlErrorCode];

/** The fields of an ERR_Packet. */
export interface ServerErrorFields {
  readonly errno: number;
  /** Five characters; "HY000" when the packet had no SQLSTATE marker (pre-4.1). */
  readonly sqlState: string;
  readonly message: string;
}

/** Default wire form per code (the numbers and texts a MySQL server uses for the same fault). */
const WIRE_DEFAULTS: Record<MysqlErrorCode, ServerErrorFields> = {
  PROTOCOL_VIOLATION: { ...ServerError.ER_HANDSHAKE_ERROR, message: "Bad handshake" },
  PACKET_TOO_LARGE: { ...ServerError.ER_NET_PACKET_TOO_LARGE, message: "Got a packet bigger than 'max_allowed_packet' bytes" },
  PACKETS_OUT_OF_ORDER: { ...ServerError.ER_NET_PACKETS_OUT_OF_ORDER, message: "Got packets out of order" },
  UNSUPPORTED_CAPABILITY: { ...ServerError.ER_NOT_SUPPORTED_AUTH_MODE, message: "Client does not support the protocol requested by server; consider upgrading MySQL client" },
  UNSUPPORTED_AUTH: { ...ServerError.ER_NOT_SUPPORTED_AUTH_MODE, message: "Client does not support authentication protocol requested by server; consider upgrading MySQL client" },
  AUTH_FAILED: { ...ServerError.ER_ACCESS_DENIED_ERROR, message: "Access denied" },
  TLS_REQUIRED: { ...ServerError.ER_ACCESS_DENIED_ERROR, message: "Connections using insecure transport are prohibited" },
  SERVER_ERROR: { ...ServerError.ER_UNKNOWN_ERROR, message: "the server refused the connection" },
  INVALID_STATE: { ...ServerError.ER_UNKNOWN_ERROR, message: "internal error" },
};

export interface MysqlProtocolErrorOptions {
  readonly cause?: unknown;
  readonly errno?: number;
  readonly sqlState?: string;
  /** A message safe to send the peer; defaults per code. */
  readonly clientMessage?: string;
  readonly context?: Readonly<Record<string, unknown>>;
  /** For `SERVER_ERROR`: the server's ERR packet (its wire form becomes this error's). */
  readonly serverError?: ServerErrorFields;
}

export class MysqlProtocolError extends Error {
  override readonly name = "MysqlProtocolError";
  readonly code: MysqlErrorCode;
  readonly errno: number;
  readonly sqlState: string;
  readonly clientMessage: string;
  readonly context: Readonly<Record<string, unknown>>;
  readonly serverError: ServerErrorFields | undefined;

  constructor(code: MysqlErrorCode, message: string, options: MysqlProtocolErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    const defaults = WIRE_DEFAULTS[code];
    this.errno = options.errno ?? options.serverError?.errno ?? defaults.errno;
    this.sqlState = options.sqlState ?? options.serverError?.sqlState ?? defaults.sqlState;
    this.clientMessage = options.clientMessage ?? options.serverError?.message ?? defaults.message;
    this.context = options.context ?? {};
    this.serverError = options.serverError;
  }

  /** The ERR packet fields to send a client for this error. */
  get wire(): ServerErrorFields {
    return { errno: this.errno, sqlState: this.sqlState, message: this.clientMessage };
  }
}

export function isMysqlProtocolError(value: unknown): value is MysqlProtocolError {
  return value instanceof MysqlProtocolError;
}

/** Shorthand for the most common throw in the parsers. */
export function violation(message: string, context?: Readonly<Record<string, unknown>>): MysqlProtocolError {
  return new MysqlProtocolError("PROTOCOL_VIOLATION", message, context === undefined ? {} : { context });
}
