import type { IncomingMessage, ServerResponse } from "node:http";
import type { TunnelStream } from "@gatehouse/proto";
import { readStatus, relayedResponseHeaders, type KubeRequestInfo } from "@gatehouse/protocols/kubernetes";
import type { GatewayConfig } from "../../config/schema.js";
import type { SessionBroker } from "../../sessions/session-broker.js";
import type { Outcome } from "@gatehouse/store";
import { recordingRefusalReason } from "../listener-steps.js";
import type { KubeSession } from "./kube-client-connection.js";
import { refusal, replyRefusal } from "./kube-replies.js";
import { keepsBody, keptBody, requestDraft, type RequestDraft } from "./request-event.js";
import { BodyKeeper, openRequestStream, readBody, readResponseHead } from "./request-stream.js";

export interface RequestDeps {
  broker: SessionBroker;
  config: () => GatewayConfig;
}

/** Of an error response, this much is read for its Status reason and message. */
const ERROR_BODY_BYTES = 64 * 1024;

/**
 * The command of an API request: journaled before anything reaches the cluster (strict mode:
 * durable first), completed with the outcome by `finish`.
 */
export class RequestRecord {
  private readonly key = {};
  readonly startedUs: number;
  /** For the latency the gateway adds (command-timing.ts): the request is whole here; its stream opens once it is durable. */
  private readonly heldSinceMs = performance.now();

  constructor(
    private readonly kube: KubeSession,
    readonly draft: RequestDraft,
  ) {
    this.startedUs = kube.session.now();
    kube.session.commandStarted(this.key, { ...draft, outcome: null, timeUs: this.startedUs, durationUs: null });
  }

  /** Undefined when the request may go to the cluster; why not otherwise (strict mode: the journal failed). */
  async writeAhead(): Promise<string | undefined> {
    try {
      await this.kube.session.writeAhead();
      this.kube.session.metrics?.addedLatency((performance.now() - this.heldSinceMs) / 1000);
      return undefined;
    } catch (error) {
      return `gatehouse: the gateway cannot record this request (${recordingRefusalReason(error as Error).why}); it was not sent to the cluster`;
    }
  }

  finish(outcome: Outcome, details: Record<string, unknown>, params?: unknown[] | null): Promise<void> {
    const session = this.kube.session;
    return session
      .commandCompleted(this.key, {
        kind: this.draft.kind,
        command: this.draft.command,
        params: params === undefined ? this.draft.params : params,
        outcome,
        timeUs: this.startedUs,
        durationUs: session.now() - this.startedUs,
        details: { ...this.draft.details, ...details },
      })
      .catch(() => undefined);
  }
}

/**
 * One plain (not upgraded) API request: its body streamed to the cluster through the connector,
 * the response streamed back, neither held whole (watches, `logs -f` and large lists flow as they
 * come, at the pace the client reads). A small mutating body (Content-Length within
 * recording.kubernetes.bodyBytes) is read first, so the journaled command holds it before the
 * cluster sees it; a larger one streams and is kept, capped, with the outcome.
 */
export async function serveApiRequest(deps: RequestDeps, kube: KubeSession, req: IncomingMessage, res: ServerResponse, path: string, info: KubeRequestInfo): Promise<void> {
  const cap = deps.config().recording.kubernetes.bodyBytes;
  const declared = Number(req.headers["content-length"]);
  const withBody = keepsBody(req.method);
  let buffered: Buffer | undefined;
  if (withBody && Number.isFinite(declared) && declared <= cap) {
    try {
      buffered = await readBody(req);
    } catch {
      return; // the client left before its request was whole: nothing was sent, nothing ran
    }
  }
  const record = new RequestRecord(kube, requestDraft(info, req, path, buffered ? { bytes: buffered, complete: true, maxBytes: cap } : undefined));
  const refusedByJournal = await record.writeAhead();
  if (refusedByJournal) {
    // The session relays nothing more (strict mode, as every protocol): the client connection
    // closes after this answer, so the client's next request opens a new session, refused or
    // admitted as the journal allows then.
    res.shouldKeepAlive = false;
    replyRefusal(res, refusal("ServiceUnavailable", refusedByJournal));
    await record.finish("error", { httpStatus: 503, message: refusedByJournal });
    return;
  }
  const opened = await openRequestStream(deps.broker, kube, req, path, false);
  if (!opened.ok) {
    const message = `gatehouse: the request could not be sent through the connector: ${opened.message}`;
    replyRefusal(res, refusal("ServiceUnavailable", message));
    await record.finish("error", { httpStatus: 503, message });
    return;
  }
  const stream = opened.stream;
  stream.on("error", () => undefined);

  // The body, to the cluster.
  const kept = withBody && !buffered ? new BodyKeeper(cap) : undefined;
  let bytesIn = 0;
  if (buffered) {
    bytesIn = buffered.length;
    stream.end(buffered);
  } else {
    req.on("data", (chunk: Buffer) => {
      bytesIn += chunk.length;
      kept?.push(chunk);
      if (!stream.write(chunk)) req.pause();
    });
    stream.on("drain", () => req.resume());
    req.once("end", () => stream.end());
  }
  const clientGone = new Promise<void>((resolve) => res.once("close", resolve));
  let endedBy: "client" | "resource" | undefined;
  void clientGone.then(() => {
    if (!res.writableFinished) {
      endedBy ??= "client";
      stream.destroy();
    }
  });

  // The response, to the client.
  let head;
  let rest: Buffer;
  try {
    ({ head, rest } = await readResponseHead(stream));
  } catch (error) {
    const message = `gatehouse: the cluster did not answer: ${(error as Error).message}`;
    if (endedBy !== "client") replyRefusal(res, refusal("ServiceUnavailable", message));
    kube.bytes.up += bytesIn;
    await record.finish("error", { httpStatus: endedBy === "client" ? null : 503, message, bytesIn, ...(endedBy ? { endedBy } : {}) });
    return;
  }
  const bodyParams = kept && kept.total > 0 ? keptBody(info.resource, req, { bytes: kept.bytes(), complete: kept.complete, maxBytes: cap }) : undefined;
  if (bodyParams) record.draft.details.body = bodyParams.body;
  const errorBody = head.status >= 400 ? new BodyKeeper(ERROR_BODY_BYTES) : undefined;
  let bytesOut = 0;
  const delivered = await deliver(stream, res, head.status, head.statusMessage, relayedResponseHeaders(head.headers, false), rest, (chunk) => {
    bytesOut += chunk.length;
    errorBody?.push(chunk);
  });
  if (!delivered.ok) endedBy ??= delivered.endedBy;
  kube.bytes.up += bytesIn;
  kube.bytes.down += bytesOut;
  const status = errorBody ? readStatus(errorBody.bytes()) : undefined;
  await record.finish(
    head.status < 400 ? "ok" : "error",
    {
      httpStatus: head.status,
      ...(status?.reason ? { reason: status.reason } : {}),
      ...(status?.message ? { message: status.message } : {}),
      bytesIn,
      bytesOut,
      ...(endedBy ? { endedBy } : {}),
      ...(delivered.ok ? {} : { error: delivered.message }),
    },
    bodyParams?.params,
  );
}

type Delivery = { ok: true } | { ok: false; endedBy: "client" | "resource"; message: string };

/**
 * Writes the response head, then the stream's bytes as they come, pausing the stream while the
 * client is slow (the tunnel's flow control then holds the API server back). Resolves when the
 * whole body reached the client, or either side ended it first.
 */
export function deliver(stream: TunnelStream, res: ServerResponse, status: number, statusMessage: string, headers: [string, string][], first: Buffer, seen: (chunk: Buffer) => void): Promise<Delivery> {
  return new Promise((resolve) => {
    let settled = false;
    const settle = (result: Delivery) => {
      if (settled) return;
      settled = true;
      resolve(result);
    };
    try {
      res.writeHead(status, statusMessage || undefined, headers.flat());
    } catch (error) {
      stream.destroy();
      res.destroy();
      settle({ ok: false, endedBy: "resource", message: `invalid response head: ${(error as Error).message}` });
      return;
    }
    // Sent at once: a watch's or `logs -f`'s client waits for the head before any event comes.
    res.flushHeaders();
    const write = (chunk: Buffer) => {
      seen(chunk);
      if (!res.write(chunk)) stream.pause();
    };
    res.on("drain", () => stream.resume());
    if (first.length > 0) write(first);
    stream.on("data", write);
    stream.once("end", () => res.end());
    stream.once("error", (error: Error) => {
      res.destroy();
      settle({ ok: false, endedBy: "resource", message: error.message });
    });
    res.once("finish", () => settle({ ok: true }));
    res.once("close", () => {
      if (!res.writableFinished) {
        stream.destroy();
        settle({ ok: false, endedBy: "client", message: "the client closed the connection before the response ended" });
      }
    });
    stream.resume();
  });
}
