import { Duplex } from "node:stream";

import type { TunnelErrorCode } from "./errors.js";
import type { OpenStream } from "./messages.js";
import { SendQueue } from "./send-queue.js";

/** Connector role: the answer to one OpenStream. Call exactly one of accept/reject, once. */
export interface OpenReply {
  /** Sends StreamOpened and returns the stream (already errored if the link or the open is gone). */
  accept(info?: { params?: Record<string, string>; handshake?: Uint8Array }): TunnelStream;
  /** Sends StreamFailed; codes StreamFailed cannot carry travel as INTERNAL. */
  reject(code: TunnelErrorCode, message: string): void;
}

/** What a stream needs from the Multiplexer that owns it. */
export interface StreamHost {
  /** The stream may have become ready to send (new bytes, an end). */
  wake(stream: TunnelStream): void;
  /** The stream's consumer may have read bytes; grant credit for them. */
  consumed(stream: TunnelStream): void;
  /** The stream was destroyed locally; tell the peer (RESET, or ERROR with the message). */
  destroyed(stream: TunnelStream, error: Error | null): void;
}

export const StreamPhase = {
  /** Gateway side: OpenStream sent, no answer yet. */
  Opening: "opening",
  Open: "open",
} as const;
export type StreamPhase = (typeof StreamPhase)[keyof typeof StreamPhase];

type Callback = (err?: Error | null) => void;

/** A snapshot of a stream's flow control, for diagnostics and tests. */
export interface TunnelStreamFlow {
  /** Bytes the peer currently lets us send. */
  sendCredit: number;
  /** Bytes written to the stream and held by the mux, not yet framed (beyond Node's writable buffer). */
  queuedBytes: number;
  /** Payload bytes sent, in all. */
  sentBytes: number;
  /** Payload bytes the peer may still send before it needs more credit. */
  receiveAllowance: number;
  /** Payload bytes received, in all. */
  receivedBytes: number;
  /** Received bytes the consumer has not read yet. */
  unreadBytes: number;
}

/** Per-stream state shared with the Multiplexer (not part of the public face). */
export class StreamState {
  /** The owning mux, until the stream is finished, reset or its link is gone. */
  host: StreamHost | undefined;
  phase: StreamPhase;
  // --- sending ---
  /** Bytes the peer allows us to send. */
  sendCredit: number;
  readonly queue = new SendQueue();
  /** end() was called: Close END goes out once the queue is empty. */
  endPending = false;
  endCallback: Callback | undefined;
  endSent = false;
  /** In the mux's round-robin list. */
  scheduled = false;
  /** Payload bytes framed and handed to the link, in all. */
  sent = 0;
  // --- receiving ---
  /** Bytes the peer may still send before it needs more credit. */
  recvAllowance: number;
  /** Payload bytes pushed to the readable side, in all. */
  received = 0;
  /** Of those, bytes consumed and granted back (or about to be). */
  granted = 0;
  /** Credit granted but not yet sent in a WindowUpdate. */
  creditDue = 0;
  remoteEnded = false;

  constructor(host: StreamHost, phase: StreamPhase, sendCredit: number, recvAllowance: number) {
    this.host = host;
    this.phase = phase;
    this.sendCredit = sendCredit;
    this.recvAllowance = recvAllowance;
  }

  /** Has something to put on the wire right now. */
  get ready(): boolean {
    if (this.phase !== StreamPhase.Open || this.host === undefined) return false;
    const bytes = this.queue.bytes;
    return bytes > 0 ? this.sendCredit > 0 : this.endPending && !this.endSent;
  }
}

export const kState = Symbol("gatehouse.tunnel.state");

/**
 * One multiplexed stream, as a Node Duplex. write() sends Data frames within the peer's credit
 * (returning false / holding the callback when it is used up); the readable side grants credit back
 * as the consumer reads. end() sends Close END (half-close); destroy(err) sends Close ERROR (RESET
 * with no err). A stream whose link dies errors with TunnelError LINK_CLOSED; one the peer resets
 * errors with STREAM_RESET carrying the peer's message. Always listen for 'error'.
 */
export class TunnelStream extends Duplex {
  readonly id: number;
  /** The OpenStream that created the stream (as sent by the gateway). */
  readonly open: OpenStream;
  /** @internal */
  readonly [kState]: StreamState;

  /** @internal Streams are made by the Multiplexer. */
  constructor(id: number, open: OpenStream, state: StreamState, writableHighWaterMark: number) {
    super({ allowHalfOpen: true, writableHighWaterMark });
    this.id = id;
    this.open = open;
    this[kState] = state;
  }

  get flow(): TunnelStreamFlow {
    const state = this[kState];
    return {
      sendCredit: state.sendCredit,
      queuedBytes: state.queue.bytes,
      sentBytes: state.sent,
      receiveAllowance: state.recvAllowance,
      receivedBytes: state.received,
      unreadBytes: this.readableLength,
    };
  }

  /** Reads also report consumption, so credit follows what the consumer has actually taken. */
  // Typed as Readable#read is (any), so callers see the same signature as on any Duplex.
  override read(size?: number): ReturnType<Duplex["read"]> {
    const chunk: unknown = super.read(size);
    const host = this[kState].host;
    if (chunk !== null && host) host.consumed(this);
    return chunk;
  }

  override _read(): void {
    this[kState].host?.consumed(this);
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: Callback): void {
    this.#enqueue(chunk, callback);
  }

  override _writev(chunks: { chunk: Buffer }[], callback: Callback): void {
    const last = chunks.length - 1;
    chunks.forEach(({ chunk }, i) => this.#enqueue(chunk, i === last ? callback : undefined));
  }

  override _final(callback: Callback): void {
    const state = this[kState];
    if (!state.host) {
      callback(new Error("tunnel stream is no longer attached to its link"));
      return;
    }
    state.endPending = true;
    state.endCallback = callback;
    state.host.wake(this);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    const state = this[kState];
    const host = state.host;
    state.host = undefined;
    host?.destroyed(this, error);
    const failure = error ?? new Error("tunnel stream destroyed");
    for (const cb of state.queue.clear()) cb(failure);
    state.endCallback?.(failure);
    state.endCallback = undefined;
    callback(error);
  }

  #enqueue(chunk: Buffer, callback: Callback | undefined): void {
    const state = this[kState];
    if (!state.host) {
      callback?.(new Error("tunnel stream is no longer attached to its link"));
      return;
    }
    if (chunk.length === 0 && state.queue.bytes === 0) {
      callback?.();
      return;
    }
    state.queue.push(chunk, callback);
    state.host.wake(this);
  }
}
