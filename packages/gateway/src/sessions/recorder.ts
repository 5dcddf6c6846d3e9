import { randomUUID } from "node:crypto";
import type { EventWriter, NewSession, SessionEvent, Store } from "@gatehouse/store";
import type { Clock } from "../clock.js";
import type { Logger } from "../logger.js";

export type SessionMeta = Omit<NewSession, "id" | "startedUs">;
export type EventInput = Omit<SessionEvent, "sessionId" | "seq" | "timeUs"> & { timeUs?: number };

/** Opens sessions in the store and numbers their events. */
export class Recorder {
  constructor(
    private readonly store: Store,
    private readonly writer: EventWriter,
    private readonly clock: Clock,
    private readonly logger: Logger,
  ) {}

  async open(meta: SessionMeta): Promise<RecordedSession> {
    const session: NewSession = { ...meta, id: randomUUID(), startedUs: this.clock() };
    await this.store.sessions.create(session);
    return new RecordedSession(session, this.store, this.writer, this.clock, this.logger.child({ sessionId: session.id }));
  }
}

/**
 * One session's record. Events get gap-free sequence numbers in the order
 * `record` is called, whatever order their writes complete in.
 */
export class RecordedSession {
  private seq = 0;
  private closed = false;
  private readonly pending = new Set<Promise<void>>();

  constructor(
    readonly meta: NewSession,
    private readonly store: Store,
    private readonly writer: EventWriter,
    private readonly clock: Clock,
    readonly logger: Logger,
  ) {}

  get id(): string {
    return this.meta.id;
  }

  /** Resolves once the event is committed to the store; rejects (and logs) if it cannot be. */
  record(input: EventInput): Promise<void> {
    if (this.closed) return Promise.reject(new Error(`session ${this.id} is closed; event ${input.kind} not recorded`));
    const event: SessionEvent = { ...input, sessionId: this.id, seq: ++this.seq, timeUs: input.timeUs ?? this.clock() };
    const write = this.writer.write(event).catch((error: unknown) => {
      this.logger.error({ err: error, seq: event.seq, kind: event.kind }, "event could not be recorded");
      throw error;
    });
    const tracked = write.finally(() => this.pending.delete(tracked)).catch(() => undefined);
    this.pending.add(tracked);
    return write;
  }

  /** Waits for every event written so far, then marks the session ended. Idempotent. */
  async close(endReason: string): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all(this.pending);
    await this.store.sessions.close({ id: this.id, endedUs: this.clock(), endReason });
  }
}
