/**
 * Every failure the connector raises itself. `code` is closed so callers can switch on it.
 *
 * The stream codes (all but `CONFIG_INVALID`) are the ones a refused OpenStream carries back to the
 * gateway as `StreamFailed.Code`, so a ConnectorError thrown while opening a stream maps onto the
 * wire one to one (see `streamFailureOf`).
 */
export type ConnectorErrorCode =
  /** A flag, variable or config-file key is missing or wrong; `problems` says which. */
  | "CONFIG_INVALID"
  | "TARGET_NOT_ALLOWED"
  | "TARGET_UNREACHABLE"
  | "AUTH_FAILED"
  | "CREDENTIAL_UNAVAILABLE"
  | "PROTOCOL_UNSUPPORTED"
  | "PROTOCOL_ERROR"
  | "DRAINING"
  | "INTERNAL";

/** The codes that may travel to the gateway in a StreamFailed. */
export type StreamFailureCode = Exclude<ConnectorErrorCode, "CONFIG_INVALID">;

export class ConnectorError extends Error {
  override readonly name = "ConnectorError";
  /** For CONFIG_INVALID: one line per problem, each naming the flag, variable or key. */
  readonly problems: readonly string[];

  constructor(
    readonly code: ConnectorErrorCode,
    message: string,
    options?: { cause?: unknown; problems?: readonly string[] },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.problems = options?.problems ?? [];
  }
}

/**
 * The StreamFailed code and message to send the gateway for an error raised while opening a stream.
 * Only ConnectorErrors carry their message across: anything else is a bug or an unexpected state
 * here, logged locally, and the gateway gets a generic INTERNAL so no internal detail leaks.
 */
export function streamFailureOf(err: unknown): { code: StreamFailureCode; message: string } {
  if (err instanceof ConnectorError && err.code !== "CONFIG_INVALID") {
    return { code: err.code, message: err.message };
  }
  return { code: "INTERNAL", message: "internal connector error (see the connector's log)" };
}
