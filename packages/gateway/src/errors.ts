/** Every failure the gateway itself raises. `code` is closed so callers can switch on it. */
export type GatewayErrorCode =
  | "CONFIG_UNREADABLE"
  | "CONFIG_INVALID"
  | "DATA_DIR_UNUSABLE"
  | "LISTEN_FAILED"
  | "NO_CONNECTOR"
  | "API_UNREACHABLE"
  | "API_ERROR";

export class GatewayError extends Error {
  override readonly name = "GatewayError";
  constructor(
    readonly code: GatewayErrorCode,
    message: string,
    options?: { cause?: unknown; problems?: string[] },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.problems = options?.problems ?? [];
  }
  /** For CONFIG_INVALID: one line per problem, each starting with the key's path. */
  readonly problems: string[];
}
