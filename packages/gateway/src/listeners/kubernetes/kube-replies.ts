import type { ServerResponse } from "node:http";
import type { Duplex } from "node:stream";
import { failureStatus, type KubeStatus, type StatusReason } from "@gatehouse/protocols/kubernetes";

/** A refusal as kubectl expects it: the status code, and a `Status` body it prints as `Error from server (Reason): message`. */
export interface Refusal {
  reason: StatusReason;
  message: string;
}

export function refusal(reason: StatusReason, message: string): Refusal {
  return { reason, message };
}

function body(refused: Refusal): { status: KubeStatus; text: string } {
  const status = failureStatus(refused.reason, refused.message);
  return { status, text: JSON.stringify(status) };
}

/**
 * Answers a plain request with the refusal. Never throws (the client may be gone). `plainText`: the
 * message alone as text/plain — for discovery paths (/api, /apis), whose errors kubectl does not
 * decode as a Status (it prints "unknown"), but prints a text body as it is.
 */
export function replyRefusal(res: ServerResponse, refused: Refusal, plainText = false): void {
  const { status, text: json } = body(refused);
  if (res.headersSent || res.destroyed) {
    res.destroy();
    return;
  }
  const text = plainText ? refused.message : json;
  const headers: Record<string, string | number> = { "Content-Type": plainText ? "text/plain; charset=utf-8" : "application/json", "Content-Length": Buffer.byteLength(text), "Cache-Control": "no-cache, private" };
  if (status.code === 401) headers["WWW-Authenticate"] = 'Bearer realm="gatehouse"';
  res.writeHead(status.code, headers);
  res.end(text);
}

/** Answers an upgrade request (a raw socket, no ServerResponse) with the refusal, then closes it. */
export function replyRefusalOnSocket(socket: Duplex, refused: Refusal): void {
  const { status, text } = body(refused);
  if (socket.destroyed) return;
  socket.end(
    `HTTP/1.1 ${status.code} ${status.reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(text)}\r\nConnection: close\r\n\r\n${text}`,
  );
}
