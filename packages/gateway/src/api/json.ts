import type { IncomingMessage, ServerResponse } from "node:http";

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

/** The API's bodies are small JSON objects: a larger one is refused before it is buffered. */
const MAX_BODY_BYTES = 64 * 1024;

/** A request's JSON object body; ApiError bad_request for anything else or one over `maxBytes`. */
export async function readJson(request: IncomingMessage, maxBytes = MAX_BODY_BYTES): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBytes) throw new ApiError("bad_request", `request body over ${maxBytes} bytes`);
    chunks.push(chunk);
  }
  try {
    const value: unknown = JSON.parse(Buffer.concat(chunks).toString("utf8") || "{}");
    if (typeof value === "object" && value !== null && !Array.isArray(value)) return value as Record<string, unknown>;
  } catch {
    // reported below
  }
  throw new ApiError("bad_request", "expected a JSON object body");
}
