import type { StreamChunk, StreamDirection } from "@gatehouse/store";
import type { Clock } from "../clock.js";
import { GatewayError, type RecordingProblem } from "../errors.js";
import { chunkHash, type StreamSummary } from "../evidence/stream-chain.js";
import { chunkPayload, type StreamState } from "../journal/entries.js";
import type { Journal } from "../journal/journal.js";
import type { RecordingMode } from "./recorder.js";

/** What a listener says about a stream when it opens one (an SSH shell or exec channel, a kubectl exec). */
export interface StreamMeta {
  kind: "shell" | "exec";
  /** The protocol's channel number, for the reader of the record. */
  channel: number;
  /**
   * The session's stream budget in bytes (the configured per-session cap): what all of the
   * session's streams may store together. Past it, output is counted but not stored.
   */
  capBytes: number;
  term?: string;
  cols?: number;
  rows?: number;
}

/** Output written within this many ms of a chunk's first byte joins that chunk. */
export const COALESCE_MS = 5;
/** A chunk is cut at this many bytes, however fast the output comes. */
export const MAX_CHUNK_BYTES = 64 * 1024;

/** What a stream needs from its session: the journal, the mode, the clock, the shared budget. */
export interface StreamHost {
  readonly sessionId: string;
  readonly journal: Journal;
  readonly mode: RecordingMode;
  readonly clock: Clock;
  /** Bytes stored by all of the session's streams so far (shared, mutated here). */
  readonly budget: { stored: number };
  /** Why the session relays nothing more (strict), if it does not. */
  refusal(): GatewayError | undefined;
  /** The stream ended: the session forgets it. */
  ended(stream: StreamRecorder): void;
}

/**
 * Records one byte stream of a session: chunks in their own hash chain, written through the
 * session's journal and shipped to the store's stream_chunks table. The caller puts the summary
 * `end()` returns into the event that ends the stream (`details.stream`), so the session's event
 * chain, and its seal, cover the stream's chain.
 *
 * - Input (client → resource) is never coalesced and always stored, even past the budget: in
 *   strict mode each chunk is durable before the resource sees it, and a client must not be able
 *   to hide what it typed by first flooding the budget with output. It counts against the budget.
 * - Output (stdout `o`, stderr `e`) is coalesced: writes within COALESCE_MS of a chunk's first byte
 *   (up to MAX_CHUNK_BYTES, same direction, nothing else in between) become one chunk, stamped
 *   with its first byte's time — so a chunk's time is never later than its bytes were seen, and at
 *   most COALESCE_MS earlier than the last of them. Past the budget it is counted, not stored.
 * - Resizes (`r`, "COLSxROWS") are always stored.
 */
export class StreamRecorder {
  private seq = 0;
  private lastHash: string;
  private bytesIn = 0;
  private bytesOut = 0;
  private truncated = false;
  private lost = 0;
  private done = false;
  private pending: { direction: "o" | "e"; parts: Uint8Array[]; bytes: number; timeUs: number } | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly host: StreamHost,
    readonly streamId: number,
    readonly meta: StreamMeta,
    readonly startedUs: number,
    /** The stream's chain start (evidence/stream-chain.ts streamStart). */
    readonly start: string,
  ) {
    this.lastHash = start;
  }

  /** After the journal has the stream's `stream` entry: its first chunk is the terminal's size, when known. */
  begin(): void {
    const { cols, rows } = this.meta;
    if (cols !== undefined && rows !== undefined) this.safeStore("r", sizeBytes(cols, rows), this.startedUs);
  }

  /** The stream as the journal's `stream` entry holds it, for recovery. */
  get state(): StreamState {
    const { meta } = this;
    return {
      streamId: this.streamId,
      kind: meta.kind,
      channel: meta.channel,
      term: meta.term ?? null,
      cols: meta.cols ?? null,
      rows: meta.rows ?? null,
      startedUs: this.startedUs,
      chunks: this.seq,
      lastHash: this.lastHash,
      bytesIn: this.bytesIn,
      bytesOut: this.bytesOut,
    };
  }

  /**
   * Client → resource bytes. Strict: a promise that resolves once the chunk is durable in the
   * journal (one fdatasync shared with whatever else is waiting), and rejects with
   * RECORDING_UNAVAILABLE when it cannot be — then the caller must not forward the bytes (and
   * should end the session). Best-effort: undefined; forward now.
   */
  input(bytes: Uint8Array): Promise<void> | undefined {
    const strict = this.host.mode === "strict";
    if (this.done) return strict ? Promise.reject(new GatewayError("JOURNAL_FAILED", `stream ${this.streamId} has ended; its input is not recorded`)) : undefined;
    const refusal = this.host.refusal();
    if (refusal && strict) return Promise.reject(refusal);
    this.flush();
    this.bytesIn += bytes.byteLength;
    if (bytes.byteLength === 0) return strict ? Promise.resolve() : undefined;
    let lsn: number | undefined;
    try {
      lsn = this.store("i", copy(bytes), this.host.clock(), strict);
    } catch (error) {
      return strict ? Promise.reject(error) : undefined; // the journal is closed: the gateway is stopping
    }
    if (!strict) return undefined;
    if (lsn === undefined) return Promise.reject(unavailable(this.host.journal.problem() ?? { reason: "journal_full" }));
    return this.host.journal.whenDurable(lsn) ?? Promise.resolve();
  }

  /** Resource → client bytes (fd 1: stdout, 2: stderr). Recorded, never awaited. */
  output(bytes: Uint8Array, fd: 1 | 2 = 1): void {
    if (this.done || bytes.byteLength === 0) return;
    this.bytesOut += bytes.byteLength;
    const direction = fd === 2 ? "e" : "o";
    if (this.pending && (this.pending.direction !== direction || this.pending.bytes + bytes.byteLength > MAX_CHUNK_BYTES)) this.flush();
    // Copied: the caller's buffer may be reused once this returns.
    const part = copy(bytes);
    if (!this.pending) {
      this.pending = { direction, parts: [part], bytes: part.byteLength, timeUs: this.host.clock() };
      this.timer = setTimeout(() => this.flush(), COALESCE_MS);
      this.timer.unref();
    } else {
      this.pending.parts.push(part);
      this.pending.bytes += part.byteLength;
    }
  }

  /** The client's terminal changed size. */
  resize(cols: number, rows: number): void {
    if (this.done) return;
    this.flush();
    this.meta.cols ??= cols;
    this.meta.rows ??= rows;
    this.safeStore("r", sizeBytes(cols, rows), this.host.clock());
  }

  /** Ends the stream: what is buffered is recorded, and the summary for the ending event's `details.stream`. */
  end(): StreamSummary {
    if (!this.done) {
      this.flush();
      this.done = true;
      this.host.ended(this);
    }
    return this.summary();
  }

  /** The summary as it stands (for a stream ended by its session's close, or recovery). */
  summary(): StreamSummary {
    const { meta } = this;
    return {
      streamId: this.streamId,
      kind: meta.kind,
      channel: meta.channel,
      term: meta.term ?? null,
      cols: meta.cols ?? null,
      rows: meta.rows ?? null,
      startedUs: this.startedUs,
      chunks: this.seq,
      bytesIn: this.bytesIn,
      bytesOut: this.bytesOut,
      truncated: this.truncated,
      lost: this.lost,
      hash: this.lastHash,
    };
  }

  get ended(): boolean {
    return this.done;
  }

  /** Records the coalesced output, within the budget. */
  private flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const pending = this.pending;
    if (!pending) return;
    this.pending = undefined;
    const room = Math.max(0, this.meta.capBytes - this.host.budget.stored);
    let data = pending.parts.length === 1 ? pending.parts[0]! : Buffer.concat(pending.parts, pending.bytes);
    if (data.byteLength > room) {
      this.truncated = true;
      if (room === 0) return;
      data = data.subarray(0, room);
    }
    this.safeStore(pending.direction, data, pending.timeUs);
  }

  private safeStore(direction: StreamDirection, data: Uint8Array, timeUs: number): void {
    try {
      this.store(direction, data, timeUs, false);
    } catch {
      // The journal is closed (the gateway is stopping): what remains of the stream is not recorded.
    }
  }

  /** Chains and journals one chunk; returns its lsn, or undefined when the journal refused it (counted as lost). */
  private store(direction: StreamDirection, data: Uint8Array, timeUs: number, urgent: boolean): number | undefined {
    const { journal, sessionId } = this.host;
    const seq = this.seq + 1;
    const fields = { sessionId, streamId: this.streamId, seq, timeUs, direction, data };
    const chunk: StreamChunk = { ...fields, prevHash: this.lastHash, hash: chunkHash(this.lastHash, fields) };
    const lsn = journal.append({ t: "chunk", chunk }, false, chunkPayload(chunk), urgent);
    if (lsn === undefined) {
      this.lost++;
      return undefined;
    }
    this.seq = seq;
    this.lastHash = chunk.hash;
    this.host.budget.stored += data.byteLength;
    return lsn;
  }
}

function sizeBytes(cols: number, rows: number): Uint8Array {
  return Buffer.from(`${cols}x${rows}`, "ascii");
}

function copy(bytes: Uint8Array): Uint8Array {
  return Uint8Array.prototype.slice.call(bytes);
}

function unavailable(problem: RecordingProblem): GatewayError {
  const why = problem.reason === "journal_full" ? "the recording journal is full" : `the recording journal cannot be written${problem.errno ? ` (${problem.errno})` : ""}`;
  return new GatewayError("RECORDING_UNAVAILABLE", `${why}; the input was not relayed`, { recording: problem });
}
