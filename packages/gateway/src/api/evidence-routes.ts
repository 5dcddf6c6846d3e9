import type { IncomingMessage, ServerResponse } from "node:http";
import type { Checkpoint, Store } from "@gatehouse/store";
import type { ChainHead } from "../evidence/checkpoints.js";
import { applyRetention, type SignRetention } from "../evidence/retention.js";
import { ApiError, sendJson } from "./json.js";

// The evidence routes of the admin API:
//   GET  /api/v1/checkpoints?after=GATEWAY:SEQ&limit=N   the stored checkpoints, in (gateway, seq)
//        order, and where this gateway's chain stands (`head`), so a verifier sees a cut tail
//   POST /api/v1/checkpoints/retention {cutoffUs, horizonUs}   sign a retention cut (for
//        `gatehouse retention --store-url`, which then drops as the store's owner)
//   POST /api/v1/retention {cutoffUs, dryRun}   sign and apply retention here (the embedded
//        store, or a store this gateway connects to as its owner)

export interface EvidenceApi {
  /**
   * Where this gateway's chain stands, once everything journaled up to it is in the store (so a
   * verifier reading the store next finds it all); undefined when the store has not caught up
   * within a few seconds.
   */
  shippedHead(): Promise<(ChainHead & { gateway: string }) | undefined>;
  /** recording.minRetentionDays, as configured now. */
  minRetentionDays(): number;
  signRetention: SignRetention;
}

export async function evidenceRoute(
  request: IncomingMessage,
  response: ServerResponse,
  url: URL,
  store: Store,
  evidence: EvidenceApi,
  readJson: (request: IncomingMessage) => Promise<Record<string, unknown>>,
): Promise<void> {
  const method = request.method ?? "GET";
  if (url.pathname === "/api/v1/checkpoints" && method === "GET") {
    const limit = Math.min(Number(url.searchParams.get("limit") ?? 500) || 500, 1000);
    const after = parseAfter(url.searchParams.get("after"));
    // The head first, the store after: everything up to the head is then in what is read.
    const head = after === undefined ? ((await evidence.shippedHead()) ?? null) : null;
    const checkpoints: Checkpoint[] = await storeCall(() => store.checkpoints.scan(after === undefined ? { limit } : { after, limit }));
    return sendJson(response, 200, { checkpoints, head });
  }
  if (url.pathname === "/api/v1/checkpoints/retention" && method === "POST") {
    const body = await readJson(request);
    const cutoffUs = time(body, "cutoffUs");
    const horizonUs = time(body, "horizonUs");
    if (horizonUs > cutoffUs) throw new ApiError("bad_request", "horizonUs: must not be after cutoffUs");
    checkCutoff(cutoffUs, evidence.minRetentionDays());
    return sendJson(response, 201, { checkpoint: await storeCall(() => evidence.signRetention(cutoffUs, horizonUs)) });
  }
  if (url.pathname === "/api/v1/retention" && method === "POST") {
    const body = await readJson(request);
    const cutoffUs = time(body, "cutoffUs");
    checkCutoff(cutoffUs, evidence.minRetentionDays());
    const result = await storeCall(() => applyRetention(store, evidence.signRetention, cutoffUs, body["dryRun"] === true));
    return sendJson(response, 200, result);
  }
  throw new ApiError("method_not_allowed", `${method} is not supported on ${url.pathname}`);
}

/**
 * Whoever holds the admin token could otherwise have the gateway sign away yesterday's sessions,
 * and the store's owner delete them as "retained": a cut keeps at least recording.minRetentionDays.
 */
function checkCutoff(cutoffUs: number, minDays: number): void {
  const latest = Date.now() * 1000 - minDays * 86_400_000_000;
  if (cutoffUs > latest) {
    throw new ApiError("bad_request", `cutoffUs: the gateway keeps at least recording.minRetentionDays (${minDays}) days; the cut may be no later than ${new Date(latest / 1000).toISOString()}`);
  }
}

function parseAfter(text: string | null): { gateway: string; seq: number } | undefined {
  if (text === null) return undefined;
  const match = /^([0-9a-f]{16}):(\d+)$/.exec(text);
  if (!match) throw new ApiError("bad_request", `after: expected GATEWAY:SEQ, got "${text}"`);
  return { gateway: match[1]!, seq: Number(match[2]) };
}

function time(body: Record<string, unknown>, key: string): number {
  const value = body[key];
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) throw new ApiError("bad_request", `${key}: expected µs since the epoch`);
  return value;
}

async function storeCall<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (cause) {
    if (cause instanceof ApiError) throw cause;
    throw new ApiError("store_unavailable", `the store could not answer: ${(cause as Error).message}`);
  }
}
