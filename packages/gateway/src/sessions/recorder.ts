import { randomUUID } from "node:crypto";
import { TunnelError } from "@gatehouse/proto";
import type { Checkpoint, NewSession, SessionEvent } from "@gatehouse/store";
import type { Clock } from "../clock.js";
import { GatewayError, type RecordingProblem } from "../errors.js";
import { canonicalEvent } from "../evidence/canonical.js";
import { chainHash, genesisHash } from "../evidence/chain.js";
import type { CheckpointChain } from "../evidence/checkpoints.js";
import { signSeal, type SigningKey } from "../evidence/signing.js";
import { escapeText, needsEscape, storableDraft } from "../evidence/storable.js";
import { eventPayload, type EventDraft, type SessionState } from "../journal/entries.js";
import type { Journal } from "../journal/journal.js";
import type { Logger } from "../logger.js";
import type { EventKind } from "./event-kinds.js";
import type { RelayResult } from "./relay.js";
import { streamStart, type StreamSummary } from "../evidence/stream-chain.js";
import type { StreamState } from "../journal/entries.js";
import { StreamRecorder, type StreamHost, type StreamMeta } from "./stream-recorder.js";
import type { ProtocolMetrics, SessionMetrics } from "../metrics/session-metrics.js";

export type SessionMeta = Omit<NewSession, "id" | "startedUs">;
/** An event as a listener records it: its kind one of the closed list (event-kinds.ts). */
export type EventInput = Omit<SessionEvent, "sessionId" | "seq" | "timeUs" | "prevHash" | "hash" | "kind"> & { kind: EventKind; timeUs?: number };
/** An event as read back from the journal (recovery): its kind as it was written. */
type JournaledInput = Omit<EventInput, "kind"> & { kind: string };

/**
 * How a session's relay ended, as every listener knows it: the relay's result plus what only the
 * listener can tell (a stopping gateway, a client that said goodbye in its protocol).
 */
export interface RelayEnd extends Pick<RelayResult, "bytesUp" | "bytesDown" | "error" | "violation" | "endedBy"> {
  /** The gateway is stopping and ended the session. */
  shutdown: boolean;
  /** The client said goodbye in its protocol (Postgres Terminate...): it ended the session, whichever socket closed first. */
  clientSaidGoodbye?: boolean;
}

/**
 * strict: a session starts, and a command is relayed, only once its record is durable in the
 * journal; when the journal is full or unwritable they are refused with the protocol's error.
 * best-effort: relay first, record as soon as possible; what cannot be recorded is counted and
 * reported by a `recording_degraded` event.
 */
export type RecordingMode = "strict" | "best-effort";

export interface RecorderOptions {
  journal: Journal;
  signingKey: SigningKey;
  /** The gateway's checkpoint chain: every open and seal is signed into it too. */
  checkpoints: CheckpointChain;
  mode: RecordingMode;
  clock: Clock;
  logger: Logger;
  /** Sessions started and ended, commands and their added latency (metrics/). Left out: nothing is counted. */
  metrics?: SessionMetrics;
}

/**
 * Every log line about a session names it, who it is and what it reaches, so one grep finds a
 * session's lines and a reader of one line needs no other to know whose it was.
 */
export function sessionLogger(logger: Logger, session: Pick<NewSession, "id" | "identity" | "connection" | "protocol">): Logger {
  return logger.child({ sessionId: session.id, identity: session.identity.name, connection: session.connection, protocol: session.protocol });
}

/**
 * Opens sessions and records their events through the write-ahead journal, chaining every event's
 * hash to the one before and sealing each session with the gateway's key when it closes. The
 * journal's shipper takes the entries on to the store.
 */
export class Recorder {
  /** Sessions opened by this process and not closed yet. */
  private readonly live = new Set<RecordedSession>();
  /** The chain's seq after the last state checkpoint: nothing to say again while it stands. */
  private lastStateSeq = -1;

  constructor(private readonly options: RecorderOptions) {}

  /** Closes every session still open (a gateway stopping), so none is left for the next start to close. */
  closeAll(endReason: string): void {
    for (const session of [...this.live]) void session.close(endReason);
  }

  get mode(): RecordingMode {
    return this.options.mode;
  }

  /** Where sessions and refusals are counted; undefined without metrics. */
  get metrics(): SessionMetrics | undefined {
    return this.options.metrics;
  }

  /** Sessions open now, by protocol (for the sessions-open gauge, read at scrape time). */
  openByProtocol(): Map<string, number> {
    const counts = new Map<string, number>();
    for (const session of this.live) counts.set(session.meta.protocol, (counts.get(session.meta.protocol) ?? 0) + 1);
    return counts;
  }

  /**
   * Starts a session's record. Strict: resolves once it is durable, and rejects with
   * RECORDING_UNAVAILABLE (`error.recording` says why) when the journal takes no new work.
   */
  async open(meta: SessionMeta): Promise<RecordedSession> {
    const { journal, mode, clock } = this.options;
    const session = storableSession({ ...meta, id: randomUUID(), startedUs: clock() });
    const genesis = genesisHash(session);
    if (mode === "strict") {
      const problem = journal.problem();
      if (problem) throw unavailable(problem, "no new session can be recorded");
    }
    // Best-effort: a session's start is always taken (it is small, and without it nothing of the
    // session could be recorded later); its commands are what may be dropped.
    const checkpoint = this.options.checkpoints.next("open", session.id, { genesis, startedUs: session.startedUs }, session.startedUs);
    const lsn = journal.append({ t: "open", session, genesis, checkpoint }, mode === "best-effort", undefined, mode === "strict");
    if (lsn === undefined) throw unavailable(journal.problem() ?? { reason: "journal_full" }, "no new session can be recorded");
    this.options.checkpoints.advance(checkpoint);
    const recorded = new RecordedSession(session, genesis, this.options, sessionLogger(this.options.logger, session), this.live);
    recorded.metrics?.sessionStarted();
    if (mode === "strict") {
      try {
        await journal.whenDurable(lsn);
      } catch (error) {
        // Its start will reach the disk when the journal recovers: end it there too.
        await recorded.close("recording_unavailable");
        throw error;
      }
    }
    return recorded;
  }

  /**
   * Signs which sessions this gateway has live into its checkpoint chain (a `state` checkpoint),
   * unless nothing was opened or sealed since the last one. A session the store shows open, that
   * opened before such a checkpoint and is not in its list, was sealed and had its seal removed.
   * Returns the checkpoint, or undefined when there was nothing new to say.
   */
  checkpointState(): Checkpoint | undefined {
    const { checkpoints, journal, clock } = this.options;
    if (checkpoints.head.seq === this.lastStateSeq) return undefined;
    const live = [...this.live].map((s) => s.id).sort();
    const checkpoint = checkpoints.next("state", null, { live }, clock());
    // Mandatory: small, and it completes what was admitted (it can only make the record stronger).
    journal.append({ t: "signed", checkpoint }, true, undefined, false);
    checkpoints.advance(checkpoint);
    this.lastStateSeq = checkpoint.seq;
    return checkpoint;
  }

  /**
   * Signs a retention cut: ended sessions that started before `horizonUs` and ended by now may be
   * removed from the store (by `gatehouse retention`, as the store's owner). Resolves with the
   * checkpoint and its journal lsn once it is durable.
   */
  async checkpointRetention(cutoffUs: number, horizonUs: number): Promise<{ checkpoint: Checkpoint; lsn: number }> {
    const { checkpoints, journal, clock } = this.options;
    const checkpoint = checkpoints.next("retention", null, { cutoffUs, horizonUs }, clock());
    const lsn = journal.append({ t: "signed", checkpoint }, true, undefined, true)!;
    checkpoints.advance(checkpoint);
    await journal.whenDurable(lsn);
    return { checkpoint, lsn };
  }

  /**
   * Finishes the sessions a previous run left open (it was killed or crashed): each command it had
   * journaled as started, with no outcome, is recorded as `interrupted`, then the session is closed
   * with end reason `gateway_restart` and sealed. Returns how many sessions were closed.
   */
  finishRecovered(states: readonly SessionState[]): number {
    for (const state of states) {
      const session = RecordedSession.resume(state, this.options, sessionLogger(this.options.logger, state.session));
      for (const { ref, draft } of state.started) {
        session.recordResolved(ref, { ...draft, outcome: null, details: { ...(draft.details ?? {}), status: "interrupted", reason: "gateway_restart" } });
      }
      // Each stream still open gets its summary as far as the journal holds it, so the seal covers it.
      for (const stream of state.streams ?? []) {
        session.recordResolved(undefined, { kind: stream.kind, command: null, outcome: null, details: { stream: recoveredSummary(stream), status: "interrupted", reason: "gateway_restart" } });
      }
      void session.close("gateway_restart");
    }
    return states.length;
  }
}

/**
 * One session's record. Events get gap-free sequence numbers and chained hashes in the order they
 * are recorded, whatever order their writes complete in.
 */
export class RecordedSession {
  private seq = 0;
  private lastHash: string;
  private nextRef = 0;
  private lastStartLsn = 0;
  private closed = false;
  /** Commands journaled as started, by the caller's key for them, awaiting their outcome. */
  private readonly started = new Map<object, number>();
  /** Strict: why this session can no longer relay commands. */
  private refusal: GatewayError | undefined;
  /** Best-effort: commands whose record was dropped, and why. */
  private lost = { count: 0, reason: "" };
  /** Byte streams: the last id given out, the bytes they stored together, those still open. */
  private lastStreamId = 0;
  private readonly streamBudget = { stored: 0 };
  private readonly openStreams = new Set<StreamRecorder>();
  /** Commands journaled as started so far: the relay's timing (command-timing.ts) sees whether a chunk started one. */
  private startedCount = 0;
  /** This session's protocol's cached counters; undefined without metrics. */
  readonly metrics: ProtocolMetrics | undefined;

  constructor(
    readonly meta: NewSession,
    readonly genesis: string,
    private readonly options: RecorderOptions,
    readonly logger: Logger,
    private readonly live?: Set<RecordedSession>,
  ) {
    this.lastHash = genesis;
    this.metrics = options.metrics?.forProtocol(meta.protocol);
    live?.add(this);
  }

  /** A session of a previous run, from the journal's state, to finish it. */
  static resume(state: SessionState, options: RecorderOptions, logger: Logger): RecordedSession {
    const session = new RecordedSession(state.session, state.genesis, options, logger);
    session.seq = state.seq;
    session.lastHash = state.lastHash;
    session.nextRef = Math.max(0, ...state.started.map((s) => s.ref));
    session.lastStreamId = state.lastStreamId ?? 0;
    return session;
  }

  get id(): string {
    return this.meta.id;
  }

  /** Now on the recorder's clock (µs), to stamp an event with when something began. */
  now(): number {
    return this.options.clock();
  }

  /**
   * Write-ahead: journals that the command identified by `key` is about to run (`draft`: what it
   * is, without an outcome). Never throws; in strict mode a refusal is kept for `writeAhead()`.
   */
  commandStarted(key: object, draft: EventDraft & { kind: EventKind }): void {
    if (this.closed || this.refusal) return;
    const { journal, mode } = this.options;
    const ref = this.nextRef + 1;
    let lsn: number | undefined;
    try {
      // The draft as the client's bytes made it: should it become an event after a crash, append()
      // escapes it then, like any other.
      lsn = journal.append({ t: "start", sid: this.id, ref, draft }, false, undefined, mode === "strict");
    } catch (error) {
      // The journal is closed (the gateway is stopping): nothing more is relayed.
      this.refusal = error instanceof GatewayError ? error : new GatewayError("JOURNAL_FAILED", String(error), { cause: error });
      return;
    }
    if (lsn === undefined) {
      if (mode === "strict") this.refusal = unavailable(journal.problem() ?? { reason: "journal_full" }, "the command was not relayed");
      return;
    }
    this.nextRef = ref;
    this.started.set(key, ref);
    this.lastStartLsn = lsn;
    this.startedCount++;
  }

  /** How many commands this session journaled as started (a count that only grows). */
  get commandsStarted(): number {
    return this.startedCount;
  }

  /**
   * For the relay, after the commands in a chunk were started: undefined when the chunk may go now;
   * a promise that resolves once every started command is durable (strict mode), or rejects with
   * RECORDING_UNAVAILABLE when they cannot be — then the chunk must not reach the resource.
   */
  writeAhead(): Promise<void> | undefined {
    if (this.options.mode !== "strict") return undefined;
    if (this.refusal) return Promise.reject(this.refusal);
    return this.options.journal.whenDurable(this.lastStartLsn);
  }

  /** The command `key` finished: records its event (resolving its write-ahead entry). */
  commandCompleted(key: object, input: EventInput): Promise<void> {
    if (this.closed) return Promise.resolve();
    const ref = this.started.get(key);
    if (ref === undefined) {
      // Never journaled as started. Strict: refused, so it never ran. Best-effort: it ran
      // unrecorded so far; record its outcome if the journal takes it now.
      if (this.options.mode === "strict" || this.closed) return Promise.resolve();
      this.metrics?.command(input.outcome ?? null);
      return this.append(input, undefined, false);
    }
    this.metrics?.command(input.outcome ?? null);
    this.started.delete(key);
    return this.append(input, ref, true);
  }

  /**
   * Records an event that is not a command (connect, disconnect, notification, cancel...). Such
   * events complete a session already admitted, so the journal always takes them. Strict: resolves
   * once the event is durable, and its journal round starts at once rather than within the
   * journal's lazy interval, since callers wait for these (a session's connect is on the path of
   * every new session: 5 ms of it, before). `waited: false`: nobody waits, the event rides with
   * the journal's next round.
   */
  record(input: EventInput, { waited = true }: { waited?: boolean } = {}): Promise<void> {
    if (this.closed) return Promise.reject(new GatewayError("JOURNAL_FAILED", `session ${this.id} is closed; event ${input.kind} not recorded`));
    return this.append(input, undefined, true, waited && this.options.mode === "strict");
  }

  /**
   * The relay is over: records the session's `disconnect` event (bytes each way, who ended it)
   * and closes the record with the end reason derived from how it ended — one derivation for
   * every protocol. Never throws.
   */
  async endRelay(end: RelayEnd): Promise<void> {
    const { error } = end;
    const shutdown = end.shutdown && !end.clientSaidGoodbye;
    const endedBy = shutdown ? "gateway" : end.clientSaidGoodbye && !error ? "client" : end.endedBy;
    const reason = shutdown
      ? "gateway_shutdown"
      : error instanceof GatewayError && error.code === "RECORDING_UNAVAILABLE" && error.recording !== undefined
        ? "recording_unavailable"
        : end.violation
          ? "protocol_violation"
          : error instanceof TunnelError
            ? "connector_lost"
            : error
              ? "error"
              : `${endedBy}_closed`;
    await this.record({
      kind: "disconnect",
      outcome: error ? "error" : "ok",
      details: { bytesUp: end.bytesUp, bytesDown: end.bytesDown, endedBy, ...(error ? { error: error.message } : {}) },
    }).catch(() => undefined);
    await this.close(reason).catch((err: unknown) => this.logger.error({ err }, "could not close the session record"));
    const log = { endReason: reason, endedBy, bytesUp: end.bytesUp, bytesDown: end.bytesDown, events: this.seq, durationMs: Math.round((this.options.clock() - this.meta.startedUs) / 1000) };
    if (error && reason !== "client_closed") this.logger.warn({ ...log, err: error }, "session ended");
    else this.logger.info(log, "session ended");
  }

  /** Records the outcome of a started command by its journal ref (recovery). */
  recordResolved(ref: number | undefined, input: JournaledInput): void {
    void this.append(input, ref, true);
  }

  /**
   * Opens a byte stream (an SSH shell or exec, a kubectl exec): its chunks get their own hash
   * chain, starting from one derived from this session's genesis and the stream's id (1, 2, 3…).
   * Strict: throws RECORDING_UNAVAILABLE when the journal takes no new work. The caller ends it
   * with `end()` and records the summary in the event that ends it (`details.stream`); a stream
   * still open when the session closes is summarized then (`status: "unfinished"`).
   */
  openStream(meta: StreamMeta): StreamRecorder {
    const { journal, mode, clock } = this.options;
    if (this.closed) throw new GatewayError("JOURNAL_FAILED", `session ${this.id} is closed; no stream can be opened`);
    if (mode === "strict") {
      if (this.refusal) throw this.refusal;
      const problem = journal.problem();
      if (problem) throw unavailable(problem, "the stream was not opened");
    }
    const streamId = ++this.lastStreamId;
    const stream = new StreamRecorder(this.streamHost(), streamId, { ...meta }, clock(), streamStart(this.genesis, streamId));
    // Mandatory: small, and without it recovery could not end the stream's chain in the record.
    journal.append({ t: "stream", sid: this.id, stream: stream.state }, true, undefined, false);
    this.openStreams.add(stream);
    stream.begin();
    return stream;
  }

  private streamHost(): StreamHost {
    const { journal, mode, clock } = this.options;
    return {
      sessionId: this.id,
      journal,
      mode,
      clock,
      budget: this.streamBudget,
      refusal: () => this.refusal,
      ended: (stream) => this.openStreams.delete(stream),
    };
  }

  /**
   * Ends the record: a `recording_degraded` event first if anything was dropped, then the close,
   * sealed with the gateway's key over the chain's final hash and length. Idempotent. The close
   * is durable in the journal soon after; nothing here waits for the store.
   */
  async close(endReason: string): Promise<void> {
    if (this.closed) return;
    for (const stream of [...this.openStreams]) {
      const summary = stream.end();
      // Journaled now (the append is synchronous); its durability rides with the close's.
      this.append({ kind: stream.meta.kind, command: null, outcome: null, details: { stream: summary, status: "unfinished" } }, undefined, true).catch(() => undefined);
    }
    this.flushLost();
    this.closed = true;
    this.live?.delete(this);
    this.metrics?.sessionEnded(endReason);
    const { clock, journal, signingKey, checkpoints } = this.options;
    const endedUs = clock();
    const fields = { sessionId: this.id, genesis: this.genesis, eventCount: this.seq, finalHash: this.lastHash, endedUs, endReason };
    const sealSignature = signSeal(signingKey, fields);
    const checkpoint = checkpoints.next("seal", this.id, { eventCount: this.seq, finalHash: this.lastHash, endedUs, endReason }, endedUs);
    // Throws when the journal is closed: the next start finds the session open and closes it.
    journal.append({ t: "close", close: { id: this.id, endedUs, endReason, finalHash: this.lastHash, sealSignature, eventCount: this.seq }, checkpoint }, true, undefined, false);
    checkpoints.advance(checkpoint);
  }

  /** `urgent`: somebody waits for it to be durable (journal.append's `urgent`). */
  private append(input: JournaledInput, ref: number | undefined, mandatory: boolean, urgent = false): Promise<void> {
    const { journal, clock, mode } = this.options;
    if (!mandatory && journal.problem()) return this.dropped(journal.problem()!);
    this.flushLost();
    const { event, canonical } = this.chained(input, input.timeUs ?? clock());
    let lsn: number | undefined;
    try {
      lsn = journal.append(ref === undefined ? { t: "event", event } : { t: "event", event, ref }, mandatory, eventPayload(canonical, event, ref), urgent);
    } catch (error) {
      return Promise.reject(error); // the journal is closed: the gateway is stopping
    }
    // Only best-effort gets here (strict never journals a command it did not start).
    if (lsn === undefined) return this.dropped(journal.problem() ?? { reason: "journal_full" });
    this.seq = event.seq;
    this.lastHash = event.hash;
    if (mode !== "strict") return Promise.resolve();
    return journal.whenDurable(lsn) ?? Promise.resolve();
  }

  /**
   * The next event of the chain (not yet counted in it): its fields escaped where Postgres would
   * refuse them (evidence/storable.ts), its seq, and its hash over the canonical encoding — made
   * once, and again only in the rare case something needed escaping.
   */
  private chained(input: JournaledInput, timeUs: number): { event: SessionEvent & { prevHash: string; hash: string }; canonical: string } {
    let event: SessionEvent = {
      sessionId: this.id,
      seq: this.seq + 1,
      timeUs,
      kind: input.kind,
      command: input.command,
      params: input.params,
      outcome: input.outcome,
      details: input.details,
      durationUs: input.durationUs,
    };
    let canonical = canonicalEvent(event);
    if (MAY_NEED_ESCAPE.test(canonical)) {
      const storable = storableDraft(event);
      if (storable !== event) {
        event = storable;
        canonical = canonicalEvent(event);
      }
    }
    const hash = chainHash(this.lastHash, canonical);
    return { event: Object.assign(event, { prevHash: this.lastHash, hash }), canonical };
  }

  private dropped(problem: RecordingProblem): Promise<void> {
    this.lost.count++;
    this.lost.reason = problem.reason;
    return Promise.resolve();
  }

  /** Best-effort: says how many events were lost and why, as soon as the journal takes it. */
  private flushLost(): void {
    if (this.lost.count === 0 || this.closed) return;
    const { count, reason } = this.lost;
    this.lost = { count: 0, reason: "" };
    const { event, canonical } = this.chained({ kind: "recording_degraded", command: null, outcome: "error", details: { lost: count, reason } }, this.options.clock());
    try {
      this.options.journal.append({ t: "event", event }, true, eventPayload(canonical, event, undefined), false);
    } catch {
      return; // the journal is closed
    }
    this.seq = event.seq;
    this.lastHash = event.hash;
    this.logger.warn({ lost: count, reason }, "events were lost (best-effort recording)");
  }
}

/**
 * Whether a canonical encoding may hold what Postgres refuses (NUL, a lone surrogate), which
 * JSON.stringify writes as \u0000 and \udXXX. A false alarm (the text itself said "\u0000")
 * only costs the exact check.
 */
const MAY_NEED_ESCAPE = /\\u(?:0000|d[89a-f])/;

/** A stream a killed gateway left open, summarized from what its journal holds. */
function recoveredSummary(stream: StreamState): StreamSummary {
  return {
    streamId: stream.streamId,
    kind: stream.kind,
    channel: stream.channel,
    term: stream.term,
    cols: stream.cols,
    rows: stream.rows,
    startedUs: stream.startedUs,
    chunks: stream.chunks,
    bytesIn: stream.bytesIn,
    bytesOut: stream.bytesOut,
    // Unknown: bytes past the budget were never journaled. The counts are the journaled bytes.
    truncated: false,
    lost: 0,
    hash: stream.lastHash,
  };
}

function unavailable(problem: RecordingProblem, what: string): GatewayError {
  const why = problem.reason === "journal_full" ? "the recording journal is full" : `the recording journal cannot be written${problem.errno ? ` (${problem.errno})` : ""}`;
  return new GatewayError("RECORDING_UNAVAILABLE", `${why}; ${what}`, { recording: problem });
}

/** The session's own strings, escaped like events' (evidence/storable.ts) when Postgres would refuse them. */
function storableSession(session: NewSession): NewSession {
  const fix = <T extends string | null | undefined>(text: T): T => (typeof text === "string" && needsEscape(text) ? (escapeText(text) as T) : text);
  const { identity } = session;
  return {
    ...session,
    identity: {
      ...identity,
      name: fix(identity.name),
      issuer: fix(identity.issuer),
      subject: fix(identity.subject),
      ...(identity.groups ? { groups: identity.groups.map(fix) } : {}),
    },
    connection: fix(session.connection),
    clientAddress: fix(session.clientAddress),
    clientApplication: fix(session.clientApplication),
  };
}
