import type { SessionEvent, SessionRecord, StreamChunk } from "@gatehouse/store";
import { streamSummaryOf, type StreamSummary } from "../evidence/stream-chain.js";
import { chunkView } from "./views.js";

// A recorded byte stream written out for people and players:
// - asciicast v2 (https://docs.asciinema.org/manual/asciicast/v2/): a header line
//   {"version":2,"width":…,"height":…,"timestamp":…,"env":{"TERM":…}}, then one line per chunk,
//   [seconds since the stream's start, "o" | "i" | "r", text]. stderr is "o" too (a terminal
//   shows both); a resize is "r" with "COLSxROWS". Bytes are decoded as UTF-8 per direction with
//   a streaming decoder, so a character cut between two chunks comes out whole.
// - JSON lines: a header line {"format":"gatehouse-stream-v1","sessionId",…,"summary"}, then each
//   chunk as stored (data in base64, with its hashes), for tools and for checking off-line.

export const STREAM_FORMATS = ["asciicast", "jsonl"] as const;
export type StreamFormat = (typeof STREAM_FORMATS)[number];

/** The session's streams, in id order, from the summaries its events carry. */
export function streamSummaries(events: readonly SessionEvent[]): StreamSummary[] {
  return events.flatMap((e) => streamSummaryOf(e.details) ?? []).sort((a, b) => a.streamId - b.streamId);
}

/** The default terminal when a stream says nothing of its size (no pty, or an exec). */
const DEFAULT_SIZE = { cols: 80, rows: 24 };

export function asciicast(session: SessionRecord, summary: StreamSummary | undefined, chunks: readonly StreamChunk[]): string {
  const firstResize = chunks.find((c) => c.direction === "r");
  const size = summary?.cols && summary.rows ? { cols: summary.cols, rows: summary.rows } : firstResize ? parseSize(firstResize.data) : undefined;
  const startUs = summary?.startedUs ?? chunks[0]?.timeUs ?? session.startedUs;
  const header: Record<string, unknown> = {
    version: 2,
    width: size?.cols ?? DEFAULT_SIZE.cols,
    height: size?.rows ?? DEFAULT_SIZE.rows,
    timestamp: Math.floor(startUs / 1_000_000),
  };
  if (summary?.term) header["env"] = { TERM: summary.term };
  const lines = [JSON.stringify(header)];
  const decoders = { o: new TextDecoder("utf-8"), e: new TextDecoder("utf-8"), i: new TextDecoder("utf-8") };
  for (const c of chunks) {
    const seconds = Math.max(0, Math.round(c.timeUs - startUs)) / 1_000_000;
    if (c.direction === "r") {
      lines.push(JSON.stringify([seconds, "r", Buffer.from(c.data).toString("latin1")]));
      continue;
    }
    const text = decoders[c.direction].decode(c.data, { stream: true });
    if (text !== "") lines.push(JSON.stringify([seconds, c.direction === "i" ? "i" : "o", text]));
  }
  return `${lines.join("\n")}\n`;
}

export function jsonLines(session: SessionRecord, summary: StreamSummary | undefined, streamId: number, chunks: readonly StreamChunk[]): string {
  const header = { format: "gatehouse-stream-v1", sessionId: session.id, streamId, summary: summary ?? null };
  return `${[JSON.stringify(header), ...chunks.map((c) => JSON.stringify(chunkView(c)))].join("\n")}\n`;
}

function parseSize(data: Uint8Array): { cols: number; rows: number } | undefined {
  const match = /^(\d+)x(\d+)$/.exec(Buffer.from(data).toString("latin1"));
  return match ? { cols: Number(match[1]), rows: Number(match[2]) } : undefined;
}
