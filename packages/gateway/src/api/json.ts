import type { ServerResponse } from "node:http";

/** Closed set of API error codes; the HTTP status follows from the code. */
export type ApiErrorCode = "unauthorized" | "forbidden" | "not_found" | "bad_request" | "method_not_allowed" | "conflict" | "store_unavailable" | "internal";

const STATUS: Record<ApiErrorCode, number> = {
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  bad_request: 400,
  method_not_allowed: 405,
  conflict: 409,
  store_unavailable: 503,
  internal: 500,
};

export class ApiError extends Error {
  constructor(
    readonly code: ApiErrorCode,
    message: string,
  ) {
    super(message);
  }
  get status(): number {
    return STATUS[this.code];
  }
}

export function sendJson(response: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  response.writeHead(status, { "Content-Type": "application/json; charset=utf-8", "Content-Length": Buffer.byteLength(text), "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff" });
  response.end(text);
}

export function sendError(response: ServerResponse, error: ApiError): void {
  const headers = error.code === "unauthorized" ? { "WWW-Authenticate": 'Bearer realm="gatehouse"' } : {};
  for (const [k, v] of Object.entries(headers)) response.setHeader(k, v);
  sendJson(response, error.status, { error: { code: error.code, message: error.message } });
}
