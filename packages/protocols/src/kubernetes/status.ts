// The API server's error body, `Status` (meta/v1), which kubectl prints as
// `Error from server (Reason): message`. The gateway answers its own refusals with one, and reads
// the reason and message of the API server's to record them.

export type StatusReason = "Unauthorized" | "Forbidden" | "NotFound" | "ServiceUnavailable" | "BadRequest" | "InternalError" | "RequestEntityTooLarge" | "TooManyRequests";

export interface KubeStatus {
  kind: "Status";
  apiVersion: "v1";
  metadata: Record<string, never>;
  status: "Failure";
  message: string;
  reason: StatusReason;
  code: number;
}

const CODES: Record<StatusReason, number> = {
  BadRequest: 400,
  Unauthorized: 401,
  Forbidden: 403,
  NotFound: 404,
  RequestEntityTooLarge: 413,
  TooManyRequests: 429,
  InternalError: 500,
  ServiceUnavailable: 503,
};

export function failureStatus(reason: StatusReason, message: string): KubeStatus {
  return { kind: "Status", apiVersion: "v1", metadata: {}, status: "Failure", message, reason, code: CODES[reason] };
}

/** The reason and message of an API server's `Status` body, if the (JSON) body is one. */
export function readStatus(body: Uint8Array | string): { reason?: string; message?: string; code?: number } | undefined {
  try {
    const parsed = JSON.parse(typeof body === "string" ? body : Buffer.from(body).toString("utf8")) as Record<string, unknown>;
    if (parsed?.kind !== "Status") return undefined;
    return {
      ...(typeof parsed.reason === "string" && parsed.reason !== "" ? { reason: parsed.reason } : {}),
      ...(typeof parsed.message === "string" ? { message: parsed.message } : {}),
      ...(typeof parsed.code === "number" ? { code: parsed.code } : {}),
    };
  } catch {
    return undefined;
  }
}
