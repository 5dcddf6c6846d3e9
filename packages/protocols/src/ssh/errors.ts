/**
 * The one error family of the pure SSH observers (SFTP, legacy scp).
 *
 * An observer that meets bytes it cannot follow must stop the channel: an audit record that
 * silently lost track of which request a reply answers would attribute operations to the wrong
 * paths. The listener closes the channel (and, for a violation on the connection itself, sends
 * SSH_MSG_DISCONNECT with `disconnectReason`) and logs `message`/`context`; `clientMessage` is
 * the only text safe to show the peer (on the channel's stderr).
 */

export const SshErrorCode = {
  /** Bytes that are not valid SFTP v3 at this point (truncated field, unknown type, reply to no request). */
  SFTP_MALFORMED: "SFTP_MALFORMED",
  /** An SFTP packet longer than OpenSSH's limit (256 KiB) plus slack; rejected before it is buffered. */
  SFTP_PACKET_TOO_LARGE: "SFTP_PACKET_TOO_LARGE",
  /** More outstanding requests or open handles than any real client keeps (a memory bound). */
  SFTP_TOO_MANY: "SFTP_TOO_MANY",
  /** Bytes that are not valid legacy scp (rcp) protocol: a bad control line, a too long line. */
  SCP_MALFORMED: "SCP_MALFORMED",
} as const;
export type SshErrorCode = (typeof SshErrorCode)[keyof typeof SshErrorCode];

/** SSH_DISCONNECT_PROTOCOL_ERROR (RFC 4250 §4.2.2). */
export const SSH_DISCONNECT_PROTOCOL_ERROR = 2;

const CLIENT_MESSAGES: Record<SshErrorCode, string> = {
  SFTP_MALFORMED: "gatehouse: malformed SFTP packet, channel closed",
  SFTP_PACKET_TOO_LARGE: "gatehouse: SFTP packet too large, channel closed",
  SFTP_TOO_MANY: "gatehouse: too many outstanding SFTP requests or handles, channel closed",
  SCP_MALFORMED: "gatehouse: malformed scp protocol line, channel closed",
};

export interface SshProtocolErrorOptions {
  readonly cause?: unknown;
  readonly context?: Readonly<Record<string, unknown>>;
}

export class SshProtocolError extends Error {
  override readonly name = "SshProtocolError";
  readonly code: SshErrorCode;
  readonly context: Readonly<Record<string, unknown>>;
  /** The SSH disconnect reason code for this fault, if the listener ends the connection over it. */
  readonly disconnectReason = SSH_DISCONNECT_PROTOCOL_ERROR;

  constructor(code: SshErrorCode, message: string, options: SshProtocolErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.context = options.context ?? {};
  }

  /** A line safe to write on the channel's stderr before closing it. */
  get clientMessage(): string {
    return CLIENT_MESSAGES[this.code];
  }
}

export function isSshProtocolError(value: unknown): value is SshProtocolError {
  return value instanceof SshProtocolError;
}
