// Many TunnelStreams over one FrameLink. Each stream has credit-based flow control in each direction
// (a writer sends at most what the reader granted; the reader grants as its consumer drains), the
// streams share the link round-robin (one Data frame per ready stream per turn), small frames of all
// streams are coalesced into one message, and nothing more is pulled from the streams while the
// link holds linkHighWaterMark bytes not yet handed to the OS.
//
// A peer that breaks the protocol (unknown stream, credit exceeded, undecodable or oversized frame)
// gets the link closed; every open stream then errors with LINK_CLOSED, and "close" carries the cause.
import { EventEmitter } from "node:events";

import { Deque } from "./deque.js";
import { failedCodeFromWire, failedCodeToWire, TunnelError, type TunnelErrorCode } from "./errors.js";
import { FrameDecoder } from "./frame-codec.js";
import { Heartbeat } from "./heartbeat.js";
import type { FrameLink } from "./link.js";
import { MessageBuilder } from "./message-builder.js";
import { SlabPool } from "./slab-pool.js";
import {
  Close,
  type IClose,
  type IData,
  type IOpenStream,
  type IPing,
  type IPong,
  type IStreamFailed,
  type IStreamOpened,
  type IWindowUpdate,
  OpenStream,
  type StreamOpened,
} from "./messages.js";
import { MAX_WINDOW, type MuxOptions, type ResolvedMuxOptions, resolveMuxOptions } from "./options.js";
import {
  type CommonFrame,
  connectorCodec,
  encodeConnectorFrame,
  encodeGatewayFrame,
  gatewayCodec,
  type IncomingFrame,
  type RoleCodec,
} from "./role-codec.js";
import { kState, type OpenReply, type StreamHost, StreamPhase, StreamState, TunnelStream } from "./stream.js";

export interface MultiplexerEvents {
  /** Emitted once when the link is gone; `error` is set when the tunnel failed (protocol violation, dead peer). */
  close: [reason: string, error: TunnelError | undefined];
  /** The peer sent Drain: open no new streams here. */
  drain: [];
}

export type OpenRequest = Omit<IOpenStream, "streamId" | "initialWindow">;
export interface OpenResult {
  stream: TunnelStream;
  opened: StreamOpened;
}

type Callback = (err?: Error | null) => void;

interface PendingOpen {
  stream: TunnelStream;
  resolve: (result: OpenResult) => void;
  reject: (error: TunnelError) => void;
  timer: NodeJS.Timeout;
}

/** Connector side: an OpenStream handed to onOpen and not yet answered. */
interface PendingReply {
  /** The gateway gave up on it (Close RESET after its open timeout) or the link closed. */
  cancelled: boolean;
}

/** WebSocket close codes (RFC 6455 §7.4.1; 4000-4999 are ours). */
const CloseCode = {
  Normal: 1000,
  ProtocolError: 1002,
  MessageTooBig: 1009,
  InternalError: 1011,
  DeadPeer: 4000,
} as const;

const EMPTY = new Uint8Array(0);
/** Outgoing message memory is carved from slabs this big (see slab-pool.ts). */
const SLAB_BYTES = 1024 * 1024;
const MAX_STREAM_ID = 0xffff_ffff;

export class Multiplexer extends EventEmitter<MultiplexerEvents> {
  readonly #link: FrameLink;
  readonly #options: ResolvedMuxOptions;
  readonly #codec: RoleCodec;
  readonly #decoder: FrameDecoder<IncomingFrame>;
  readonly #builder: MessageBuilder;
  readonly #pool: SlabPool;
  readonly #heartbeat: Heartbeat;
  /** Credit is granted back in batches of at least this many consumed bytes. */
  readonly #creditBatch: number;
  readonly #host: StreamHost;

  /** Streams that have a direction still open (and, gateway side, streams being opened). */
  readonly #streams = new Map<number, TunnelStream>();
  readonly #opening = new Map<number, PendingOpen>();
  readonly #replies = new Map<number, PendingReply>();
  /** Round-robin list of streams with something to send. */
  readonly #ready = new Deque<TunnelStream>();
  /** Streams owing the peer a WindowUpdate. */
  readonly #creditDue = new Set<TunnelStream>();
  /** Encoded control frames, sent ahead of Data. */
  readonly #control: Uint8Array[] = [];
  #controlHead = 0;

  #nextStreamId = 1;
  /** Highest stream id opened on this link: frames for lower ids no longer live are late, not bogus. */
  #highestStreamId = 0;
  /** Bytes given to link.send whose callback has not run yet. */
  #inflightBytes = 0;
  #pumpScheduled = false;
  #closed = false;
  #draining = false;
  #drainSent = false;
  #pingNonce = 0;
  /** The last ping sent (its nonce and when), until its pong comes back. */
  #pingInFlight: { nonce: number; sentAt: number } | undefined;
  #roundTripMs: number | undefined;

  constructor(link: FrameLink, options: MuxOptions) {
    super();
    this.#link = link;
    this.#options = resolveMuxOptions(options);
    const gateway = this.#options.role === "gateway";
    this.#codec = gateway ? gatewayCodec : connectorCodec;
    this.#decoder = new FrameDecoder(this.#codec.decode, this.#options.maxFrameBytes);
    this.#pool = new SlabPool(SLAB_BYTES);
    this.#builder = new MessageBuilder(this.#codec.dataField, this.#pool);
    // A quarter window: few WindowUpdates, yet the writer never waits on a full round trip.
    this.#creditBatch = Math.max(1, Math.floor(this.#options.initialWindow / 4));
    this.#host = {
      wake: (stream) => this.#wake(stream),
      consumed: (stream) => this.#consumed(stream),
      destroyed: (stream, error) => this.#destroyed(stream, error),
    };
    this.#heartbeat = new Heartbeat({
      pingIntervalMs: this.#options.pingIntervalMs,
      deadAfterMs: this.#options.deadAfterMs,
      now: this.#options.now,
      onPing: () => {
        this.#pool.trim();
        this.#pingInFlight = { nonce: ++this.#pingNonce, sentAt: this.#options.now() };
        this.#sendControl(this.#codec.encode({ ping: { nonce: this.#pingNonce } }));
      },
      onDead: (silentMs) =>
        this.#fail(new TunnelError("LINK_CLOSED", `no frame from the peer for ${Math.round(silentMs)} ms`)),
    });
    link.onMessage((data) => this.#onMessage(data));
    link.onClose((code, reason) => this.#onLinkClose(code, reason));
  }

  /** True once the peer sent Drain. */
  get draining(): boolean {
    return this.#draining;
  }

  /**
   * Milliseconds from our last answered ping to its pong: the link's round trip, including the
   * peer's event loop and any frames queued ahead of the pong. Undefined until a first pong.
   */
  get roundTripMs(): number | undefined {
    return this.#roundTripMs;
  }

  /** Streams with a direction still open, including (gateway side) those being opened. */
  get streamCount(): number {
    return this.#streams.size;
  }

  /** True once the link is gone (closed here, by the peer, or for a protocol violation). */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Gateway role: opens a stream. Resolves once the connector answered StreamOpened; rejects with a
   * TunnelError (StreamFailed's code and message, OPEN_TIMEOUT, LINK_CLOSED, DRAINING).
   */
  open(request: OpenRequest): Promise<OpenResult> {
    if (this.#options.role !== "gateway") {
      return Promise.reject(new TunnelError("INTERNAL", "only the gateway opens streams"));
    }
    if (this.#closed) return Promise.reject(new TunnelError("LINK_CLOSED", "tunnel link is closed"));
    if (this.#draining) return Promise.reject(new TunnelError("DRAINING", "connector is draining"));
    if (this.#nextStreamId > MAX_STREAM_ID) {
      return Promise.reject(new TunnelError("INTERNAL", "stream ids exhausted on this link; reconnect"));
    }
    const id = this.#nextStreamId;
    const open = new OpenStream({ ...request, streamId: id, initialWindow: this.#options.initialWindow });
    const frame = encodeGatewayFrame({ open });
    // The connector would close the whole link over it (assuming it keeps the same limit as we do).
    if (frame.length > this.#options.maxFrameBytes) {
      return Promise.reject(
        new TunnelError("INTERNAL", `OpenStream of ${frame.length} bytes exceeds maxFrameBytes (${this.#options.maxFrameBytes})`),
      );
    }
    this.#nextStreamId += 2;
    this.#highestStreamId = id;
    const state = new StreamState(this.#host, StreamPhase.Opening, 0, this.#options.initialWindow);
    const stream = new TunnelStream(id, open, state, this.#options.maxDataPayload);
    this.#streams.set(id, stream);
    this.#sendControl(frame);
    return new Promise<OpenResult>((resolve, reject) => {
      const timer = setTimeout(() => this.#openTimedOut(id), this.#options.openTimeoutMs);
      timer.unref();
      this.#opening.set(id, { stream, resolve, reject, timer });
    });
  }

  /** Connector role: sends Drain; the gateway opens no new streams here, and new OpenStreams get DRAINING. */
  drain(): void {
    if (this.#options.role !== "connector") throw new TunnelError("INTERNAL", "only the connector drains");
    if (this.#closed || this.#drainSent) return;
    this.#drainSent = true;
    this.#sendControl(encodeConnectorFrame({ drain: {} }));
  }

  /** Closes the link and errors every open stream with LINK_CLOSED. */
  close(reason = "closed"): void {
    this.#shutdown(CloseCode.Normal, reason, undefined, false);
  }

  // ---------------------------------------------------------------- receiving

  #onMessage(data: Uint8Array): void {
    if (this.#closed) return;
    this.#heartbeat.touch();
    try {
      this.#decoder.push(data);
      for (let frame = this.#decoder.next(); frame !== undefined && !this.#closed; frame = this.#decoder.next()) {
        this.#dispatch(frame);
      }
    } catch (err) {
      this.#fail(
        err instanceof TunnelError ? err : new TunnelError("INTERNAL", "failed to handle a tunnel message", { cause: err }),
      );
    }
  }

  #dispatch(frame: IncomingFrame): void {
    switch (frame.frame) {
      case "data":
        return this.#onData(frame.data);
      case "windowUpdate":
        return this.#onWindowUpdate(frame.windowUpdate);
      case "close":
        return this.#onClose(frame.close);
      case "ping":
        return this.#onPing(frame.ping);
      case "pong":
        return this.#onPong(frame.pong); // Its arrival already fed the heartbeat.
      case "open":
        return this.#onOpen(frame.open as OpenStream);
      case "opened":
        return this.#onOpened(frame.opened as StreamOpened);
      case "failed":
        return this.#onFailed(frame.failed);
      case "drain":
        return this.#onDrain();
      case undefined:
        return; // A frame kind from a newer peer (or an empty frame): ignored, as protobuf intends.
      default:
        return assertNever(frame);
    }
  }

  #onData({ streamId, payload }: IData): void {
    const id = streamId ?? 0;
    const bytes = payload ?? EMPTY;
    const stream = this.#streams.get(id);
    if (!stream) {
      if (this.#isPast(id)) return; // In flight when we reset or finished the stream.
      throw violation("BAD_FRAME", `data for unknown stream ${id}`, id);
    }
    const state = stream[kState];
    if (state.phase !== StreamPhase.Open) throw violation("BAD_FRAME", `data before stream ${id} was opened`, id);
    if (state.remoteEnded) throw violation("BAD_FRAME", `data after the end of stream ${id}`, id);
    if (bytes.length > state.recvAllowance) {
      throw violation(
        "FLOW_CONTROL_VIOLATION",
        `stream ${id}: ${bytes.length} bytes sent with ${state.recvAllowance} bytes of credit`,
        id,
      );
    }
    if (bytes.length === 0) return;
    state.recvAllowance -= bytes.length;
    state.received += bytes.length;
    stream.push(unpinned(bytes));
    this.#consumed(stream);
  }

  #onWindowUpdate({ streamId, credit }: IWindowUpdate): void {
    const stream = this.#streams.get(streamId ?? 0);
    if (!stream) return; // The stream finished or was reset; its credit no longer matters.
    const state = stream[kState];
    state.sendCredit += credit ?? 0;
    if (state.sendCredit > MAX_WINDOW) {
      throw violation("FLOW_CONTROL_VIOLATION", `stream ${stream.id}: credit grew past ${MAX_WINDOW}`, stream.id);
    }
    this.#wake(stream);
  }

  #onClose({ streamId, kind, message }: IClose): void {
    const id = streamId ?? 0;
    const pending = this.#opening.get(id);
    if (pending) {
      this.#settleOpen(id, pending);
      pending.reject(new TunnelError("STREAM_RESET", message || `stream ${id} reset before it opened`, { streamId: id }));
      return;
    }
    const reply = this.#replies.get(id);
    if (reply) {
      // The gateway gave up waiting (open timeout); accept() will hand back a reset stream.
      reply.cancelled = true;
      this.#replies.delete(id);
      return;
    }
    const stream = this.#streams.get(id);
    if (!stream) return;
    const state = stream[kState];
    if (kind === Close.Kind.END) {
      if (state.remoteEnded) return;
      state.remoteEnded = true;
      state.creditDue = 0;
      this.#creditDue.delete(stream);
      stream.push(null);
      if (state.endSent) this.#detach(stream);
      return;
    }
    this.#detach(stream);
    const fallback = kind === Close.Kind.ERROR ? "stream failed at the peer" : "stream reset by the peer";
    stream.destroy(new TunnelError("STREAM_RESET", message || fallback, { streamId: id }));
  }

  #onPing({ nonce }: IPing): void {
    this.#sendControl(this.#codec.encode({ pong: { nonce } }));
  }

  /** The answer to our last ping: the link's round trip (a pong for an older ping is ignored). */
  #onPong({ nonce }: IPong): void {
    const inFlight = this.#pingInFlight;
    if (inFlight === undefined || Number(nonce) !== inFlight.nonce) return;
    this.#roundTripMs = this.#options.now() - inFlight.sentAt;
    this.#pingInFlight = undefined;
  }

  /** Connector role. */
  #onOpen(open: OpenStream): void {
    const id = open.streamId;
    if (id === 0 || this.#streams.has(id) || this.#replies.has(id)) {
      throw violation("BAD_FRAME", `OpenStream reuses live stream id ${id}`, id);
    }
    if (open.initialWindow === 0) throw violation("BAD_FRAME", `OpenStream ${id} grants no initial window`, id);
    this.#highestStreamId = Math.max(this.#highestStreamId, id);
    if (this.#drainSent) return this.#sendFailed(id, "DRAINING", "connector is draining");
    const onOpen = this.#options.onOpen;
    if (!onOpen) return this.#sendFailed(id, "INTERNAL", "connector accepts no streams");
    const pending: PendingReply = { cancelled: false };
    this.#replies.set(id, pending);
    let answered = false;
    const answer = (): void => {
      if (answered) throw new TunnelError("INTERNAL", `stream ${id} was already accepted or rejected`);
      answered = true;
      this.#replies.delete(id);
    };
    const reply: OpenReply = {
      accept: (info) => {
        answer();
        return this.#accept(open, pending, info);
      },
      reject: (code, message) => {
        answer();
        if (!pending.cancelled && !this.#closed) this.#sendFailed(id, code, message);
      },
    };
    try {
      onOpen(open, reply);
    } catch (cause) {
      if (!answered) reply.reject("INTERNAL", `open handler failed: ${errorMessage(cause)}`);
    }
  }

  #accept(open: OpenStream, pending: PendingReply, info: Parameters<OpenReply["accept"]>[0]): TunnelStream {
    const id = open.streamId;
    const state = new StreamState(this.#host, StreamPhase.Open, open.initialWindow, this.#options.initialWindow);
    const stream = new TunnelStream(id, open, state, this.#options.maxDataPayload);
    if (pending.cancelled || this.#closed) {
      state.host = undefined;
      const error = this.#closed
        ? new TunnelError("LINK_CLOSED", "tunnel link closed before the stream was accepted", { streamId: id })
        : new TunnelError("STREAM_RESET", "the gateway gave up on the stream before it was accepted", { streamId: id });
      stream.destroy(error);
      return stream;
    }
    this.#streams.set(id, stream);
    const opened: IStreamOpened = {
      streamId: id,
      initialWindow: this.#options.initialWindow,
      params: info?.params ?? {},
      handshake: info?.handshake ?? EMPTY,
    };
    this.#sendControl(encodeConnectorFrame({ opened }));
    return stream;
  }

  /** Gateway role. */
  #onOpened(opened: StreamOpened): void {
    const id = opened.streamId;
    const pending = this.#opening.get(id);
    if (!pending) {
      if (!this.#streams.has(id) && this.#isPast(id)) return; // We timed it out and reset it already.
      throw violation("BAD_FRAME", `StreamOpened for stream ${id}, which is not being opened`, id);
    }
    if (opened.initialWindow === 0) throw violation("BAD_FRAME", `StreamOpened ${id} grants no initial window`, id);
    clearTimeout(pending.timer);
    this.#opening.delete(id);
    const state = pending.stream[kState];
    state.phase = StreamPhase.Open;
    state.sendCredit = opened.initialWindow;
    pending.resolve({ stream: pending.stream, opened });
  }

  /** Gateway role. */
  #onFailed({ streamId, code, message }: IStreamFailed): void {
    const id = streamId ?? 0;
    const pending = this.#opening.get(id);
    if (!pending) {
      if (!this.#streams.has(id) && this.#isPast(id)) return;
      throw violation("BAD_FRAME", `StreamFailed for stream ${id}, which is not being opened`, id);
    }
    this.#settleOpen(id, pending);
    const reason = failedCodeFromWire(code);
    pending.reject(new TunnelError(reason, message || `connector refused stream ${id} (${reason})`, { streamId: id }));
  }

  /** Gateway role. */
  #onDrain(): void {
    if (this.#draining) return;
    this.#draining = true;
    this.emit("drain");
  }

  #openTimedOut(id: number): void {
    const pending = this.#opening.get(id);
    if (!pending) return;
    this.#settleOpen(id, pending);
    // Whatever the connector set up for it must go: a late StreamOpened is then ignored as past.
    this.#sendControl(encodeGatewayFrame({ close: { streamId: id, kind: Close.Kind.RESET, message: "open timed out" } }));
    pending.reject(
      new TunnelError("OPEN_TIMEOUT", `no answer to OpenStream ${id} within ${this.#options.openTimeoutMs} ms`, {
        streamId: id,
      }),
    );
  }

  /** Forgets a stream that never opened; nobody outside holds it. */
  #settleOpen(id: number, pending: PendingOpen): void {
    clearTimeout(pending.timer);
    this.#opening.delete(id);
    this.#detach(pending.stream);
    pending.stream.destroy();
  }

  #isPast(id: number): boolean {
    return id > 0 && id <= this.#highestStreamId;
  }

  // ---------------------------------------------------------------- stream host

  #wake(stream: TunnelStream): void {
    const state = stream[kState];
    if (state.scheduled || !state.ready) return;
    state.scheduled = true;
    this.#ready.push(stream);
    this.#schedule();
  }

  /** Grants the peer credit for what the consumer has read since the last grant. */
  #consumed(stream: TunnelStream): void {
    const state = stream[kState];
    if (!state.host || state.remoteEnded) return;
    const consumed = state.received - stream.readableLength;
    const fresh = consumed - state.granted;
    if (fresh < this.#creditBatch) return;
    state.granted = consumed;
    state.creditDue += fresh;
    this.#creditDue.add(stream);
    this.#schedule();
  }

  #destroyed(stream: TunnelStream, error: Error | null): void {
    this.#detach(stream);
    if (this.#closed) return;
    // Finished streams were detached already, so one direction at least is still open: abort it.
    const close: IClose = error
      ? { streamId: stream.id, kind: Close.Kind.ERROR, message: clip(error.message) }
      : { streamId: stream.id, kind: Close.Kind.RESET };
    this.#sendControl(this.#codec.encode({ close }));
  }

  #detach(stream: TunnelStream): void {
    stream[kState].host = undefined;
    this.#streams.delete(stream.id);
    this.#creditDue.delete(stream);
    // The ready list drops it lazily: a detached stream is never ready.
  }

  // ---------------------------------------------------------------- sending

  #sendFailed(streamId: number, code: TunnelErrorCode, message: string): void {
    const failed: IStreamFailed = { streamId, code: failedCodeToWire(code), message: clip(message) };
    this.#sendControl(encodeConnectorFrame({ failed }));
  }

  #sendControl(frame: Uint8Array): void {
    if (this.#closed) return;
    this.#control.push(frame);
    this.#schedule();
  }

  #schedule(): void {
    if (this.#pumpScheduled || this.#closed) return;
    this.#pumpScheduled = true;
    // After the event loop's I/O poll, so the frames of everything that poll delivered (many streams'
    // reads, a burst of credit) leave in one message: one write syscall, and one read and wakeup at the
    // peer, instead of one each. (A microtask ran after every single socket read: at pgbench -c 16 that
    // was one WebSocket message per transaction each way; this is about one per four.)
    setImmediate(() => this.#pump());
  }

  #pump(): void {
    this.#pumpScheduled = false;
    const done: Callback[] = [];
    while (!this.#closed && this.#inflightBytes < this.#options.linkHighWaterMark) {
      const message = this.#buildMessage(done);
      if (message === undefined) break;
      this.#inflightBytes += message.length;
      try {
        this.#link.send(message, (err) => this.#sent(message, err));
      } catch (cause) {
        this.#fail(new TunnelError("LINK_CLOSED", "the link refused a message", { cause }));
        return;
      }
      // The payload bytes are copied into `message`: the writers may go on.
      for (const cb of done) cb();
      done.length = 0;
    }
  }

  #sent(message: Uint8Array, err: Error | null | undefined): void {
    const limit = this.#options.linkHighWaterMark;
    const wasFull = this.#inflightBytes >= limit;
    this.#inflightBytes -= message.length;
    // A failed send means the link is going down; its close event does the rest. (Its buffer is
    // not reused: a failing transport might still read it.)
    if (err) return;
    this.#pool.release(message);
    // Only a pump that stopped at the high-water mark has work waiting for this; waking it after
    // every send would cost an idle event-loop turn per message.
    if (wasFull && this.#inflightBytes < limit) this.#schedule();
  }

  /** Control frames first, then credit, then one Data frame per ready stream in turn. */
  #buildMessage(done: Callback[]): Uint8Array | undefined {
    const builder = this.#builder;
    const max = this.#options.maxMessageBytes;
    const control = this.#control;
    while (this.#controlHead < control.length && builder.size < max) builder.addFrame(control[this.#controlHead++]!);
    if (this.#controlHead > 0 && this.#controlHead === control.length) {
      control.length = 0;
      this.#controlHead = 0;
    }
    if (this.#creditDue.size > 0) this.#addCredit();
    while (builder.size < max) {
      const stream = this.#ready.shift();
      if (stream === undefined) break;
      const state = stream[kState];
      state.scheduled = false;
      if (!state.ready) continue;
      const queued = state.queue.bytes;
      if (queued > 0) {
        const n = Math.min(queued, state.sendCredit, this.#options.maxDataPayload);
        builder.addData(stream.id, state.queue.take(n, done), n);
        state.sendCredit -= n;
        state.sent += n;
      }
      if (state.queue.bytes === 0 && state.endPending) this.#addEnd(stream, done);
      if (state.ready) {
        state.scheduled = true;
        this.#ready.push(stream);
      }
    }
    return builder.isEmpty ? undefined : builder.finish();
  }

  #addCredit(): void {
    const builder = this.#builder;
    for (const stream of this.#creditDue) {
      if (builder.size >= this.#options.maxMessageBytes) break;
      const state = stream[kState];
      builder.addFrame(this.#codec.encode({ windowUpdate: { streamId: stream.id, credit: state.creditDue } }));
      state.recvAllowance += state.creditDue;
      state.creditDue = 0;
      this.#creditDue.delete(stream);
    }
  }

  #addEnd(stream: TunnelStream, done: Callback[]): void {
    const state = stream[kState];
    const end: CommonFrame = { close: { streamId: stream.id, kind: Close.Kind.END } };
    this.#builder.addFrame(this.#codec.encode(end));
    state.endPending = false;
    state.endSent = true;
    if (state.endCallback) done.push(state.endCallback);
    state.endCallback = undefined;
    if (state.remoteEnded) this.#detach(stream);
  }

  // ---------------------------------------------------------------- closing

  #onLinkClose(code: number, reason: string): void {
    this.#shutdown(code, `link closed (${code}${reason ? ` ${reason}` : ""})`, undefined, true);
  }

  #fail(error: TunnelError): void {
    this.#shutdown(closeCodeFor(error.code), `${error.code}: ${error.message}`, error, false);
  }

  #shutdown(code: number, reason: string, error: TunnelError | undefined, linkGone: boolean): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#heartbeat.stop();
    if (!linkGone) this.#link.close(code, reason);
    for (const [id, pending] of this.#opening) {
      this.#settleOpen(id, pending);
      pending.reject(
        new TunnelError("LINK_CLOSED", `tunnel link closed before stream ${id} opened: ${reason}`, {
          cause: error,
          streamId: id,
        }),
      );
    }
    for (const stream of [...this.#streams.values()]) {
      this.#detach(stream);
      stream.destroy(
        new TunnelError("LINK_CLOSED", `tunnel link closed: ${reason}`, { cause: error, streamId: stream.id }),
      );
    }
    for (const reply of this.#replies.values()) reply.cancelled = true;
    this.#replies.clear();
    this.#ready.clear();
    this.#creditDue.clear();
    this.#control.length = 0;
    this.#controlHead = 0;
    process.nextTick(() => this.emit("close", reason, error));
  }
}

/** Longest error message put in a Close or StreamFailed frame; the peer's maxFrameBytes bounds the frame. */
const MAX_MESSAGE_CHARS = 1_024;

function clip(message: string): string {
  return message.length <= MAX_MESSAGE_CHARS ? message : `${message.slice(0, MAX_MESSAGE_CHARS - 1)}…`;
}

/**
 * Payloads are views into the received message. A small one inside a big message would pin the
 * whole message for as long as it waits to be read (a stalled stream could hold a window's worth of
 * messages, not of bytes), so it is copied out; a payload that is most of its buffer stays a view.
 */
function unpinned(payload: Uint8Array): Uint8Array {
  return payload.buffer.byteLength > 2 * payload.length + 4_096 ? Buffer.from(payload) : payload;
}

function violation(code: TunnelErrorCode, message: string, streamId: number): TunnelError {
  return new TunnelError(code, message, { streamId });
}

function closeCodeFor(code: TunnelErrorCode): number {
  switch (code) {
    case "FRAME_TOO_LARGE":
      return CloseCode.MessageTooBig;
    case "BAD_FRAME":
    case "FLOW_CONTROL_VIOLATION":
      return CloseCode.ProtocolError;
    case "LINK_CLOSED":
      return CloseCode.DeadPeer;
    default:
      return CloseCode.InternalError;
  }
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function assertNever(value: never): never {
  throw new TunnelError("INTERNAL", `unhandled frame ${JSON.stringify(value)}`);
}
