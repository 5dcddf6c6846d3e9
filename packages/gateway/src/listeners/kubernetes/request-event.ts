import type { IncomingMessage } from "node:http";
import { commandLine, redactBody, type KubeRequestInfo } from "@gatehouse/protocols/kubernetes";
import type { EventKind } from "../../sessions/event-kinds.js";

/** Longest path kept in an event (a proxy or a long selector can be long; the rest is cut, marked). */
const MAX_PATH_CHARS = 4096;
const MAX_USER_AGENT_CHARS = 256;

/** What an API request's event says before its outcome is known (journaled write-ahead). */
export interface RequestDraft {
  kind: Extract<EventKind, "request" | "exec">;
  command: string;
  params: unknown[] | null;
  details: Record<string, unknown>;
}

export function requestDraft(info: KubeRequestInfo, req: IncomingMessage, path: string, body?: { bytes: Buffer; complete: boolean; maxBytes: number }): RequestDraft {
  const kind = info.verb === "exec" || info.verb === "attach" ? "exec" : "request";
  const details: Record<string, unknown> = {
    method: req.method,
    path: path.length > MAX_PATH_CHARS ? path.slice(0, MAX_PATH_CHARS) : path,
    ...(path.length > MAX_PATH_CHARS ? { pathTruncated: true } : {}),
    verb: info.verb,
  };
  if (info.isResourceRequest) {
    Object.assign(details, {
      apiGroup: info.apiGroup,
      apiVersion: info.apiVersion,
      resource: info.resource,
      ...(info.subresource ? { subresource: info.subresource } : {}),
      ...(info.namespace ? { namespace: info.namespace } : {}),
      ...(info.name ? { name: info.name } : {}),
      ...(info.labelSelector ? { labelSelector: info.labelSelector } : {}),
      ...(info.fieldSelector ? { fieldSelector: info.fieldSelector } : {}),
      ...(info.dryRun ? { dryRun: true } : {}),
      ...(info.container ? { container: info.container } : {}),
      ...(info.follow ? { follow: true } : {}),
    });
  }
  const userAgent = req.headers["user-agent"];
  if (userAgent) details.userAgent = userAgent.slice(0, MAX_USER_AGENT_CHARS);
  let params: unknown[] | null = null;
  if (body && body.bytes.length > 0) {
    const kept = keptBody(info.resource, req, body);
    params = kept.params;
    details.body = kept.body;
  }
  return { kind, command: commandLine(info), params, details };
}

/**
 * As Postgres keeps bound parameters: a request's body, Secrets' values redacted, capped — the
 * event's `params` ([text]) and what `details.body` says about it.
 */
export function keptBody(resource: string, req: IncomingMessage, body: { bytes: Buffer; complete: boolean; maxBytes: number }): { params: unknown[]; body: Record<string, unknown> } {
  const contentType = req.headers["content-type"] ?? null;
  const kept = redactBody(body.bytes, { resource, contentType: contentType ?? "", maxBytes: body.maxBytes, complete: body.complete });
  return {
    params: [kept.text],
    body: { contentType, ...(kept.redacted ? { redacted: true } : {}), ...(kept.truncated || !body.complete ? { truncated: true } : {}), ...(kept.withheld ? { withheld: true } : {}) },
  };
}

/** Whether a request's body belongs in its record (what changes the cluster, not what reads it). */
export function keepsBody(method: string | undefined): boolean {
  return method === "POST" || method === "PUT" || method === "PATCH" || method === "DELETE";
}
