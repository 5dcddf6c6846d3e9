import { createHash, hash } from "node:crypto";
import type { StreamDirection } from "@gatehouse/store";
import { canonicalJson } from "./canonical.js";

// The hash chain of one byte stream (docs/evidence.md, "Streams"):
//   start(stream)  = SHA-256( JCS(["gatehouse-stream-v1", sessionGenesis, streamId]) )
//   chunk(c)       = JCS(["gatehouse-chunk-v1", sessionId, streamId, seq, timeUs, direction, byteLength]) ‖ data
//   hash(c)        = SHA-256( prev_hash ‖ chunk(c) )        prev_hash of seq 1 is start(stream)
// The data is hashed as the raw bytes that went over the wire (after its length in the JCS
// prefix, so the two parts cannot be shifted into each other), not as escaped text: a binary
// stream costs no encoding before it is hashed, and `verify` hashes the stored bytea as read.
// The stream's end (its chunk count and last hash) is carried by the session's event that ends
// it (`details.stream`), so the session's own chain and seal cover every stream.

export const STREAM_TAG = "gatehouse-stream-v1";
export const CHUNK_TAG = "gatehouse-chunk-v1";

/** Where a stream's chain starts: derived from its session's genesis and its id. */
export function streamStart(sessionGenesis: string, streamId: number): string {
  return createHash("sha256").update(canonicalJson([STREAM_TAG, sessionGenesis, streamId]), "utf8").digest("hex");
}

export interface ChunkFields {
  sessionId: string;
  streamId: number;
  seq: number;
  timeUs: number;
  direction: StreamDirection;
  data: Uint8Array;
}

/** The hash of `chunk` chained after `prevHash`. */
export function chunkHash(prevHash: string, chunk: ChunkFields): string {
  const prefix = canonicalJson([CHUNK_TAG, chunk.sessionId, chunk.streamId, chunk.seq, chunk.timeUs, chunk.direction, chunk.data.byteLength]);
  const prefixBytes = Buffer.byteLength(prefix);
  const input = Buffer.allocUnsafe(32 + prefixBytes + chunk.data.byteLength);
  input.write(prevHash, 0, "hex");
  input.write(prefix, 32, "utf8");
  input.set(chunk.data, 32 + prefixBytes);
  return hash("sha256", input, "hex");
}

/**
 * A stream's summary as its ending event carries it (`details.stream`): what `verify` holds the
 * stored chunks up to, and what an export takes the terminal's size and type from.
 */
export interface StreamSummary {
  streamId: number;
  kind: "shell" | "exec";
  /** The protocol's channel number (SSH), for the reader. */
  channel: number;
  term: string | null;
  cols: number | null;
  rows: number | null;
  startedUs: number;
  /** Chunks stored (in the chain). */
  chunks: number;
  /** Bytes client → resource, and resource → client, all of them (stored or not). */
  bytesIn: number;
  bytesOut: number;
  /** Past the session's stream budget: some output was counted but not stored. */
  truncated: boolean;
  /** Chunks the journal could not take (best-effort, journal full or unwritable): not stored. */
  lost: number;
  /** The last chunk's hash; the stream's start when it has none. */
  hash: string;
}

/** `details.stream` of a stored event, when it is a stream summary. */
export function streamSummaryOf(details: Record<string, unknown> | null | undefined): StreamSummary | undefined {
  const value = details?.["stream"];
  if (value === null || typeof value !== "object") return undefined;
  const s = value as Partial<StreamSummary>;
  if (typeof s.streamId !== "number" || typeof s.chunks !== "number" || typeof s.hash !== "string") return undefined;
  return s as StreamSummary;
}
