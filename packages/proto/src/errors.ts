import { StreamFailed } from "./messages.js";

/** Why a tunnel operation failed. The first group mirrors `StreamFailed.Code` (what the connector reports). */
export type TunnelErrorCode =
  | "TARGET_NOT_ALLOWED"
  | "TARGET_UNREACHABLE"
  | "AUTH_FAILED"
  | "CREDENTIAL_UNAVAILABLE"
  | "PROTOCOL_UNSUPPORTED"
  | "DRAINING"
  | "PROTOCOL_ERROR"
  | "INTERNAL"
  /** The WebSocket went away (cut, dead heartbeat, closed). */
  | "LINK_CLOSED"
  /** The peer reset or errored the stream (Close RESET / ERROR); the peer's message is kept. */
  | "STREAM_RESET"
  /** No StreamOpened / StreamFailed arrived in time. */
  | "OPEN_TIMEOUT"
  /** The peer broke the tunnel protocol. */
  | "FRAME_TOO_LARGE"
  | "BAD_FRAME"
  | "FLOW_CONTROL_VIOLATION";

/** The one error family of `@gatehouse/proto`. */
export class TunnelError extends Error {
  override readonly name = "TunnelError";
  readonly code: TunnelErrorCode;
  /** The stream the error is about, when there is one. */
  readonly streamId: number | undefined;

  constructor(code: TunnelErrorCode, message: string, options?: { cause?: unknown; streamId?: number }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.streamId = options?.streamId;
  }
}

type FailedCode = StreamFailed.Code;
const Code = StreamFailed.Code;

/** The codes that travel in StreamFailed, and their wire numbers. */
const toWire = {
  TARGET_NOT_ALLOWED: Code.TARGET_NOT_ALLOWED,
  TARGET_UNREACHABLE: Code.TARGET_UNREACHABLE,
  AUTH_FAILED: Code.AUTH_FAILED,
  CREDENTIAL_UNAVAILABLE: Code.CREDENTIAL_UNAVAILABLE,
  PROTOCOL_UNSUPPORTED: Code.PROTOCOL_UNSUPPORTED,
  DRAINING: Code.DRAINING,
  PROTOCOL_ERROR: Code.PROTOCOL_ERROR,
  INTERNAL: Code.INTERNAL,
} as const satisfies Partial<Record<TunnelErrorCode, FailedCode>>;

const fromWire = new Map<number, TunnelErrorCode>(
  Object.entries(toWire).map(([name, wire]) => [wire, name as TunnelErrorCode]),
);

/** A reject code as StreamFailed carries it; codes that only make sense locally travel as INTERNAL. */
export function failedCodeToWire(code: TunnelErrorCode): FailedCode {
  return (toWire as Partial<Record<TunnelErrorCode, FailedCode>>)[code] ?? Code.INTERNAL;
}

/** StreamFailed's code as a TunnelErrorCode; unknown or unspecified numbers become INTERNAL. */
export function failedCodeFromWire(code: number | null | undefined): TunnelErrorCode {
  return fromWire.get(code ?? 0) ?? "INTERNAL";
}
